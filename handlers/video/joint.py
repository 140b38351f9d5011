"""Choosing one set of frames for several synchronized views: pure functions over arrays.

Every view is embedded on its own (``selection.embed_frames``: coherence-weighted columns,
smoothed in time, so a view that is noise for this recording counts less). The common poses
come from k-means on the embeddings side by side; the rare ones from farthest-point
picks where two moments are as far apart as they are in the view where they differ most, so a
pose only one camera sees counts in full instead of being diluted by the other views' noise.
A frame that is a distractor (flicker, a hand) in any view is set aside in all. Moments
already labeled or queued in any view count as covered, as for one video (``kmeans_beside``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from handlers.video.selection import (
    Selection,
    describe_choice,
    distractor_rows,
    embed_frames,
    kmeans_count,
    nearest_to_centres,
    nearest_to_free_centres,
    usable_rows,
)


@dataclass(frozen=True)
class SyncProblem:
    """Why the views cannot be taken as synchronized; ``message`` names every view's count."""

    message: str


def common_length(counts: dict[str, int], offsets: dict[str, int]) -> int:
    """Frames every view holds, counted from common frame 0 (view frame = common + offset)."""
    return max(0, min(counts[view] - offsets.get(view, 0) for view in counts))


def count_mismatch(counts: dict[str, int], offsets: dict[str, int]) -> SyncProblem | None:
    """A problem when the views' frame counts differ and no offsets were given for them.

    Synchronized cameras record the same number of frames; a view that is shorter was cut, or
    dropped frames, and frame N of it would not show the moment frame N of the others shows.
    With offsets the counts may differ (cameras started apart); the views must then overlap.
    """
    listed = ", ".join(f"{view} {count}" for view, count in counts.items())
    if not offsets and len(set(counts.values())) > 1:
        return SyncProblem(
            f"the views have different numbers of frames ({listed}); synchronized cameras "
            "record the same number. Copy every view again in full, or, if the cameras started "
            'apart, give each view\'s offset in frames in the session sidecar, e.g. {"offsets": '
            '{"side": 3}} (frame 0 of the session is frame 3 of side)'
        )
    if offsets and common_length(counts, offsets) <= 0:
        return SyncProblem(f"with the offsets {offsets} the views ({listed}) share no frame")
    return None


def rate_mismatch(intervals: dict[str, float], tolerance: float = 0.01) -> SyncProblem | None:
    """A problem when the views' frame intervals (ms, from their timestamps) differ by more
    than ``tolerance``: cameras at different rates are not frame-synchronized."""
    known = {view: ms for view, ms in intervals.items() if math.isfinite(ms) and ms > 0}
    if len(known) < 2:
        return None
    low, high = min(known.values()), max(known.values())
    if high <= low * (1 + tolerance):
        return None
    listed = ", ".join(f"{view} {1000 / ms:.2f}" for view, ms in known.items())
    return SyncProblem(
        f"the views run at different frame rates ({listed} frames a second, from their "
        "timestamps); synchronized cameras share one rate"
    )


def median_interval(timestamps: npt.NDArray[np.float64]) -> float:
    """The median time between frames (ms); NaN when the timestamps cannot say."""
    if timestamps.size < 2:
        return math.nan
    steps = np.diff(timestamps)
    steps = steps[np.isfinite(steps) & (steps > 0)]
    return float(np.median(steps)) if steps.size else math.nan


def nearest_rows(
    sampled: npt.NDArray[np.int64], wanted: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """For each wanted frame index, the row of the nearest sampled index (``sampled`` sorted).

    Views whose samples do not line up (long videos sample every k-th frame, and an offset may
    fall between samples) are compared at the nearest sampled frame, at most k/2 away.
    """
    right = np.clip(np.searchsorted(sampled, wanted), 0, sampled.size - 1)
    left = np.clip(right - 1, 0, sampled.size - 1)
    closer_left = np.abs(sampled[left] - wanted) < np.abs(sampled[right] - wanted)
    return np.where(closer_left, left, right).astype(np.int64)


def view_embeddings(
    views: Sequence[npt.NDArray[np.uint8]], indices: npt.NDArray[np.int64]
) -> list[npt.NDArray[np.float32]]:
    """Each view embedded as one video is (``embed_frames``), on a common scale.

    The columns keep their coherence weights: a view whose features are mostly noise for
    this recording (clutter, the animal hidden) shrinks and counts less; scaling every view
    to the same spread instead covered the poses worse on the rendered sessions
    (bench_sessions, development seeds).
    """
    return [embed_frames(features, indices).astype(np.float32) for features in views]


def distance_in_any_view(
    views: Sequence[npt.NDArray[np.float32]], row: int
) -> npt.NDArray[np.float32]:
    """Every row's distance to ``row``: the largest over the views' embeddings."""
    return np.max([np.linalg.norm(view - view[row], axis=1) for view in views], axis=0)


def farthest_in_any_view(
    views: Sequence[npt.NDArray[np.float32]],
    chosen: Sequence[int],
    n: int,
    covered: Sequence[int] = (),
) -> list[int]:
    """Add rows, each the farthest (``distance_in_any_view``) from all chosen so far, up to n.

    ``covered`` rows (frames already labeled) count as chosen when measuring, but are never
    added and do not count towards ``n`` (as ``selection.farthest_point_fill``).
    """
    picked = list(dict.fromkeys(chosen))
    fixed = sorted(set(covered) - set(picked))
    rows = views[0].shape[0]
    if rows == 0:
        return picked
    if not picked and not fixed:
        picked.append(0)
    gap = np.full(rows, np.inf, dtype=np.float32)
    for row in [*picked, *fixed]:
        gap = np.minimum(gap, distance_in_any_view(views, row))
    while len(picked) < min(n, rows - len(fixed)):
        gap[picked] = -1.0
        gap[fixed] = -1.0
        row = int(np.argmax(gap))
        picked.append(row)
        gap = np.minimum(gap, distance_in_any_view(views, row))
    return picked


def joint_distractors(
    views: Sequence[npt.NDArray[np.uint8]], indices: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """(flicker, intrusion) in any view, per row."""
    flicker = np.zeros(indices.size, dtype=bool)
    intrusion = np.zeros(indices.size, dtype=bool)
    for features in views:
        view_flicker, view_intrusion = distractor_rows(features, indices)
        flicker |= view_flicker
        intrusion |= view_intrusion
    return flicker & ~intrusion, intrusion


def select_joint_frames(
    views: Sequence[npt.NDArray[np.uint8]],
    indices: npt.NDArray[np.int64],
    n: int,
    seed: int = 0,
    taken: npt.NDArray[np.bool_] | None = None,
) -> Selection:
    """Choose up to ``n`` common frames from every view's features together.

    Args:
        views: per view, one feature row per common frame in ``indices`` (same rows in all).
        indices: the common frame index of each row, increasing.
        n: how many frames to choose.
        seed: fixes k-means, so the same input gives the same frames.
        taken: rows standing for moments already labeled or queued in some view: never
            chosen, and counted as covering their poses in every view (fixed k-means centres,
            and farthest points are measured from them), so a session's second bundle adds
            what the first one missed, as for one video.
    """
    if taken is None:
        taken = np.zeros(indices.size, dtype=bool)
    if int((~taken).sum()) == 0:
        return Selection([], 0, [], [], math.inf, math.inf, 0.0)
    flicker, intrusion = joint_distractors(views, indices)
    usable = usable_rows(flicker, intrusion, n, taken)
    rows = np.flatnonzero(usable)
    embeddings = view_embeddings([features[rows] for features in views], indices[rows])
    embedding = np.hstack(embeddings).astype(np.float32)
    covered = [int(r) for r in np.flatnonzero(taken[rows])]
    if covered:
        common = nearest_to_free_centres(embedding, covered, kmeans_count(n), seed)
    else:
        common = nearest_to_centres(embedding, kmeans_count(n), seed)
    picked = farthest_in_any_view(embeddings, common, n, covered)
    return describe_choice(embedding, picked, indices, usable, flicker, intrusion, taken)
