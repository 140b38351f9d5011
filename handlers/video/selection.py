"""Choosing frames: pure functions over per-frame features, with no video in sight.

The path of one choice (``select_diverse_frames``):
    1. set aside distractors: flicker (a sudden jump in brightness) and intrusions (much more
       of the frame differs from the usual scene than the animal alone makes, or a rise over
       the running usual that lasts a second: a hand), with the frames near an intrusion,
       while the running background still holds it;
    2. embed: PCA of the animal's turned silhouette (its pose), plus a lighter PCA of the whole
       frame against the median scene (where it is, what else is in view); each column
       weighted by how coherent it is in time (noise fades), rows smoothed over a few frames;
    3. choose: k-means with half the frames wanted, the frame nearest each centre (the common
       poses), then farthest-point picks (the rare poses, which k-means merges into the
       common ones) up to the count. Rows standing for frames already labeled (``taken``)
       count as chosen: they are fixed k-means centres and farthest points are measured from
       them too, so a second bundle adds the poses the first one missed.
Features come from handlers/features.py; every function here is deterministic.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.ndimage import median_filter, uniform_filter1d
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning

from handlers.video.features import BACKGROUND_EVERY, BACKGROUND_FRAMES, split_features

EMBED_DIMS = 32
"""PCA dimensions of each feature part."""
FIT_ROWS = 3000
"""PCA is fitted on at most this many evenly spaced samples, then applied to all in chunks."""
CHUNK_ROWS = 4096
"""Rows converted to float at once: bounds the memory of choosing, whatever the video's length."""
SCENE_WEIGHT = 0.5
"""Weight of the whole-frame part against the animal part in the embedding."""
COHERENCE_POWER = 3
"""Each embedding column is weighted by its coherence to this power: noise columns fade out."""
SMOOTH_FRAMES = 2
"""Embedded rows are averaged over the samples within this many frames on each side."""
FLICKER_JUMP = 0.08
"""A frame flickers when its log-brightness jumps at least this much (8%) from its neighbours'."""
FLICKER_REACH = 3
"""Samples on each side whose median brightness a frame is compared to."""
SCENE_DIFFERENCE = 20.0
"""Grey levels (at mean brightness 128) a thumbnail pixel must differ from the median scene."""
MIN_INTRUSION_SHARE = 4 / 1024
"""An intrusion changes at least twice the usual share of the frame plus this (4 pixels)."""
LOCAL_SAMPLES = 301
"""Samples in the running median that gives the usual scene change around each sample."""
LOCAL_SPREADS = 6.0
"""A sample is an intrusion when its change exceeds the running usual by this many spreads."""
INTRUSION_MIN_FRAMES = 30
"""A rise over the running usual must last this long (1 s at 30 fps) to be an intrusion: a
still animal's brief rare pose changes as much of the frame as a hand, but for a moment."""
NOVELTY = True
"""Frames already labeled count as covering their poses; False only excludes them (the
choice as it was, kept for the benchmark's comparison)."""
KMEANS_ITERATIONS = 100
"""Lloyd iterations at most, for k-means beside fixed centres (it settles in far fewer)."""
KMEANS_SHARE = 0.5
"""Share of the frames wanted chosen by k-means (the common poses); farthest points the rest."""
INTRUSION_MARGIN_FRAMES = BACKGROUND_EVERY * BACKGROUND_FRAMES // 2
"""Frames set aside on each side of an intrusion: the running background (features.py) holds
an intruder for about half its span after it leaves, and a hand is half in view before it is
seen."""


@dataclass(frozen=True)
class Selection:
    """Frames chosen, and what a person needs to judge the choice without ground truth.

    Attributes:
        frames: chosen frame indices, sorted.
        candidates: samples the choice was made from.
        flicker: frame indices of samples set aside as flicker.
        intrusion: frame indices of samples set aside for an intrusion (a hand) or its margin.
        coverage_mean: mean distance from every candidate to the nearest chosen one, in the
            embedding (scaled so that a sample's mean squared distance from the centre is 1).
        coverage_worst: the largest such distance.
        redundancy: the smallest distance between two chosen frames in the embedding.
    """

    frames: list[int]
    candidates: int
    flicker: list[int]
    intrusion: list[int]
    coverage_mean: float
    coverage_worst: float
    redundancy: float


# ----- distractors ---------------------------------------------------------------------


def _chunks(rows: int) -> Iterator[slice]:
    for start in range(0, rows, CHUNK_ROWS):
        yield slice(start, min(start + CHUNK_ROWS, rows))


def brightness_scaled(thumbs: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """Thumbnails as float, each scaled to mean 128: lighting drift and flicker cancel out."""
    data = thumbs.astype(np.float32)
    data *= 128.0 / np.maximum(data.mean(axis=1, keepdims=True), 1.0)
    return data


def flicker_rows(
    levels: npt.NDArray[np.float32], reach: int = FLICKER_REACH, jump: float = FLICKER_JUMP
) -> npt.NDArray[np.bool_]:
    """Rows whose brightness jumps away from the median of their neighbours in time.

    Slow lighting drift moves neighbours together and is not flicker.
    """
    if levels.size < 3:
        return np.zeros(levels.size, dtype=bool)
    log = np.log(np.maximum(levels.astype(np.float64), 1.0))
    padded = np.pad(log, reach, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * reach + 1)
    neighbours = np.median(np.delete(windows, reach, axis=1), axis=1)
    return np.asarray(np.abs(log - neighbours) >= jump)


def median_scene(thumbs: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """The usual scene: the per-pixel median of (up to ~2000 evenly spaced) scaled thumbnails."""
    step = max(1, thumbs.shape[0] // 2000)
    return np.median(brightness_scaled(thumbs[::step]), axis=0).astype(np.float32)


def scene_change(thumbs: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """Share of each thumbnail's pixels that differ from the median scene (brightness-scaled)."""
    scene = median_scene(thumbs)
    share = np.empty(thumbs.shape[0], dtype=np.float32)
    for rows in _chunks(thumbs.shape[0]):
        changed = np.abs(brightness_scaled(thumbs[rows]) - scene) > SCENE_DIFFERENCE
        share[rows] = changed.mean(axis=1)
    return share


def intrusion_rows(change: npt.NDArray[np.float32]) -> npt.NDArray[np.bool_]:
    """Rows where far more of the frame differs from the scene than usual (robust outliers).

    The animal alone changes a small, steady share of the frame; a hand changes much more.
    """
    if change.size == 0:
        return np.zeros(0, dtype=bool)
    usual = float(np.median(change))
    spread = 1.4826 * float(np.median(np.abs(change - usual)))
    limit = max(usual + 8 * spread, 2 * usual + MIN_INTRUSION_SHARE)
    return np.asarray(change > limit)


def runs_at_least(
    flags: npt.NDArray[np.bool_], indices: npt.NDArray[np.int64], frames: int
) -> npt.NDArray[np.bool_]:
    """Flags kept only in runs of consecutive flagged rows spanning at least ``frames`` frames."""
    if not flags.any():
        return flags.copy()
    edges = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    kept = np.zeros_like(flags)
    for start, stop in zip(starts, stops, strict=True):
        if indices[stop - 1] - indices[start] + 1 >= frames:
            kept[start:stop] = True
    return kept


def local_intrusion_rows(
    change: npt.NDArray[np.float32], indices: npt.NDArray[np.int64]
) -> npt.NDArray[np.bool_]:
    """Rows whose change rises well above its running usual level, for at least a second.

    The whole-video median and spread of the change mix the animal's slow swings (two
    animals, a large one, an object moved once) into the limit, which then lies above a hand;
    the rise over a running median, against that rise's own spread, does not.
    """
    if change.size < 3:
        return np.zeros(change.size, dtype=bool)
    usual = median_filter(change, size=min(LOCAL_SAMPLES, change.size), mode="nearest")
    rise = change - usual
    spread = 1.4826 * float(np.median(np.abs(rise)))
    high = rise > max(LOCAL_SPREADS * spread, MIN_INTRUSION_SHARE)
    return runs_at_least(np.asarray(high), indices, INTRUSION_MIN_FRAMES)


def widen(
    flags: npt.NDArray[np.bool_], indices: npt.NDArray[np.int64], margin: int
) -> npt.NDArray[np.bool_]:
    """Flags spread to every row whose frame index is within ``margin`` of a flagged one."""
    flagged = indices[flags]
    if flagged.size == 0:
        return flags.copy()
    position = np.searchsorted(flagged, indices)
    after = np.abs(flagged[np.minimum(position, flagged.size - 1)] - indices)
    before = np.abs(flagged[np.maximum(position - 1, 0)] - indices)
    return np.asarray(np.minimum(after, before) <= margin)


def distractor_rows(
    features: npt.NDArray[np.uint8], indices: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Rows to set aside: (flicker, intrusion with its margin)."""
    thumbs, _ = split_features(features)
    flicker = flicker_rows(thumbs.mean(axis=1, dtype=np.float32))
    change = scene_change(thumbs)
    seen = intrusion_rows(change) | local_intrusion_rows(change, indices)
    intrusion = widen(seen, indices, INTRUSION_MARGIN_FRAMES)
    return flicker & ~intrusion, intrusion


# ----- embedding -----------------------------------------------------------------------


def standardized(rows: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """Rows as float with mean 0 and standard deviation 1 each (contrast does not count)."""
    data = rows.astype(np.float32)
    data -= data.mean(axis=1, keepdims=True)
    data /= np.maximum(data.std(axis=1, keepdims=True), 1e-3)
    return data


def project(
    rows: npt.NDArray[np.uint8],
    prepare: Callable[[npt.NDArray[np.uint8]], npt.NDArray[np.float32]],
    dims: int = EMBED_DIMS,
) -> npt.NDArray[np.float32]:
    """PCA of ``prepare(rows)``, fitted on an even subsample, applied in chunks.

    Scaled so that the mean squared distance of a row from the centre is 1.
    """
    count = rows.shape[0]
    fit = prepare(rows[np.linspace(0, count - 1, min(count, FIT_ROWS)).astype(np.int64)])
    dims = min(dims, fit.shape[0], fit.shape[1])
    if dims < 1 or fit.shape[0] < 2 or float(fit.std()) == 0.0:
        return np.zeros((count, 1), dtype=np.float32)
    pca = PCA(n_components=dims, random_state=0).fit(fit)
    out = np.empty((count, dims), dtype=np.float32)
    for part in _chunks(count):
        out[part] = pca.transform(prepare(rows[part]))
    scale = math.sqrt(float((out.astype(np.float64) ** 2).sum(axis=1).mean()))
    return out / scale if scale > 0 else out


def coherence(embedded: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Per column, the share of its variance that persists from one sample to the next.

    One minus the von Neumann ratio (mean squared step over twice the variance): about 0 for
    a column that is sample-to-sample noise, near 1 for one that changes as slowly as a pose
    is held. A crop that jumps between a still animal's moving limbs, or between two animals,
    is noise of this kind; a real pose, even a rare one held for a few frames, is not.
    """
    if embedded.shape[0] < 3:
        return np.ones(embedded.shape[1], dtype=np.float32)
    step = np.diff(embedded.astype(np.float64), axis=0)
    ratio = (step**2).mean(axis=0) / np.maximum(2 * embedded.var(axis=0, dtype=np.float64), 1e-12)
    return np.clip(1.0 - ratio, 0.0, 1.0).astype(np.float32)


def smoothed_in_time(
    embedded: npt.NDArray[np.float32], indices: npt.NDArray[np.int64], frames: int
) -> npt.NDArray[np.float32]:
    """Each row averaged with the rows within ``frames`` frames of it (at the usual sample step).

    Frame-to-frame jitter of the crop averages out, and farthest points stop chasing it; a
    pose held for a few frames keeps its place. With samples further apart than ``frames``
    (a long video) rows are left as they are.
    """
    if embedded.shape[0] < 3:
        return embedded
    step = max(1, int(np.median(np.diff(indices))))
    reach = frames // step
    if reach < 1:
        return embedded
    return np.asarray(uniform_filter1d(embedded, 2 * reach + 1, axis=0, mode="nearest"))


def embed_frames(
    features: npt.NDArray[np.uint8], indices: npt.NDArray[np.int64] | None = None
) -> npt.NDArray[np.float32]:
    """Each frame as a point whose distances reflect differences in pose.

    The animal's turned silhouette, standardized, carries the pose; the whole frame against
    the median scene, weighted SCENE_WEIGHT, adds where the animal is and what else is seen.
    Each PCA column is weighted by its coherence (cubed), so a part that is noise for this
    recording (the crop of a still animal, of two animals) gives way to the part that is not;
    then rows are smoothed over SMOOTH_FRAMES.
    """
    thumbs, animal = split_features(features)
    pose = project(animal, standardized)
    usual = median_scene(thumbs)
    scene = project(thumbs, lambda rows: brightness_scaled(rows) - usual)
    parts = [
        weight * part * coherence(part) ** COHERENCE_POWER
        for part, weight in ((pose, 1.0), (scene, SCENE_WEIGHT))
    ]
    embedded = np.hstack(parts).astype(np.float32)
    if indices is None:
        indices = np.arange(features.shape[0], dtype=np.int64)
    return smoothed_in_time(embedded, indices, SMOOTH_FRAMES)


# ----- choosing ------------------------------------------------------------------------


def nearest_to_centres(features: npt.NDArray[np.float32], n: int, seed: int = 0) -> list[int]:
    """Rows nearest each of ``n`` k-means centres, one distinct row per non-empty cluster."""
    n = min(n, features.shape[0])
    if n == 0:
        return []
    with warnings.catch_warnings():
        # Many identical frames leave fewer distinct clusters than asked; we top up below.
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = KMeans(n_clusters=n, n_init=2, random_state=seed).fit(features)
    chosen: list[int] = []
    for cluster, centre in enumerate(model.cluster_centers_):
        members = np.flatnonzero(model.labels_ == cluster)
        if members.size:
            distances = np.linalg.norm(features[members] - centre, axis=1)
            chosen.append(int(members[np.argmin(distances)]))
    return list(dict.fromkeys(chosen))


def distance_to_nearest(
    features: npt.NDArray[np.float32], picked: Iterable[int]
) -> npt.NDArray[np.float32]:
    """Each row's distance to the nearest picked row (inf when nothing is picked)."""
    gap = np.full(features.shape[0], np.inf, dtype=np.float32)
    for row in picked:
        gap = np.minimum(gap, np.linalg.norm(features - features[row], axis=1))
    return gap


def farthest_point_fill(
    features: npt.NDArray[np.float32], chosen: Iterable[int], n: int, covered: Iterable[int] = ()
) -> list[int]:
    """Add rows, each the one farthest from all rows chosen so far, until there are ``n``.

    ``covered`` rows (frames already labeled) count as chosen when measuring how far a row
    is, but are never added and do not count towards ``n``.
    """
    picked = list(dict.fromkeys(chosen))
    fixed = sorted(set(covered) - set(picked))
    if features.shape[0] == 0:
        return picked
    if not picked and not fixed:
        picked.append(0)
    gap = distance_to_nearest(features, [*picked, *fixed])
    while len(picked) < min(n, features.shape[0] - len(fixed)):
        gap[picked] = -1.0
        gap[fixed] = -1.0
        row = int(np.argmax(gap))
        picked.append(row)
        gap = np.minimum(gap, np.linalg.norm(features - features[row], axis=1))
    return picked


def pairwise_distances(
    features: npt.NDArray[np.float32], centres: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Distance of each row to each centre, as a rows x centres array (no rows x centres x dims
    intermediate, so memory stays that of the answer)."""
    rows = features.astype(np.float64)
    squared = (rows**2).sum(axis=1)[:, None] - 2 * rows @ centres.T + (centres**2).sum(axis=1)
    return np.sqrt(np.maximum(squared, 0.0))


def kmeans_beside(
    features: npt.NDArray[np.float32], fixed: list[int], k: int, seed: int = 0
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """``k`` k-means centres placed beside the ``fixed`` rows, which act as centres that never move.

    Every row belongs to its nearest centre, fixed or free, and only free centres move to the
    mean of their rows: poses the labeled frames already serve pull no free centre, so the free
    centres settle on the poses still missing. Started k-means++-like from the fixed centres,
    with a fixed seed; two starts, the one with the lower inertia kept.

    Returns:
        the free centres, and each row's free centre (-1 for rows a fixed centre serves).
    """
    count = features.shape[0]
    served = distance_to_nearest(features, fixed).astype(np.float64)
    best: tuple[float, npt.NDArray[np.float32], npt.NDArray[np.int64]] | None = None
    for start in range(2):
        rng = np.random.default_rng(seed + start)
        gap = served.copy()
        picks: list[int] = []
        for _ in range(min(k, count)):
            weight = np.where(np.isfinite(gap), gap, 1.0) ** 2
            if float(weight.sum()) <= 0.0:
                break
            row = int(rng.choice(count, p=weight / weight.sum()))
            picks.append(row)
            gap = np.minimum(gap, np.linalg.norm(features - features[row], axis=1))
        centres = features[picks].astype(np.float64)
        labels = np.full(count, -1, dtype=np.int64)
        for _ in range(KMEANS_ITERATIONS):
            if centres.shape[0] == 0:
                break
            distance = pairwise_distances(features, centres)
            labels = np.where(distance.min(axis=1) < served, distance.argmin(axis=1), -1)
            members = labels[None, :] == np.arange(centres.shape[0])[:, None]
            counts = members.sum(axis=1)[:, None]
            sums = members.astype(np.float64) @ features.astype(np.float64)
            moved = np.where(counts > 0, sums / np.maximum(counts, 1), centres)
            if np.allclose(moved, centres):
                break
            centres = moved
        nearest = served.copy()
        if centres.shape[0]:
            distance = pairwise_distances(features, centres)
            nearest = np.minimum(nearest, distance.min(axis=1))
        inertia = float((nearest**2).sum())
        if best is None or inertia < best[0]:
            best = (inertia, centres.astype(np.float32), labels)
    assert best is not None
    return best[1], best[2]


def nearest_to_free_centres(
    features: npt.NDArray[np.float32], fixed: list[int], n: int, seed: int = 0
) -> list[int]:
    """Rows nearest each of ``n`` k-means centres placed beside ``fixed`` ones (kmeans_beside)."""
    centres, labels = kmeans_beside(features, fixed, n, seed)
    chosen: list[int] = []
    for cluster, centre in enumerate(centres):
        members = np.flatnonzero(labels == cluster)
        if members.size:
            distances = np.linalg.norm(features[members] - centre, axis=1)
            chosen.append(int(members[np.argmin(distances)]))
    return list(dict.fromkeys(chosen))


def kmeans_count(n: int) -> int:
    """How many of ``n`` frames k-means chooses: ``KMEANS_SHARE`` of them, rounded up."""
    return math.ceil(n * KMEANS_SHARE)


def choose_diverse_rows(
    features: npt.NDArray[np.float32], n: int, seed: int = 0, taken: Iterable[int] = ()
) -> list[int]:
    """``min(n, rows)`` distinct rows: k-means for half (common poses), farthest points after.

    k-means alone spends its centres where frames are dense and merges a pose seen for a
    moment into its neighbour; farthest points alone chase oddities. Half and half covers the
    common poses well and still reaches the rare ones (a third or a quarter lost in some
    family: README, Frame diversity). ``taken`` rows (frames already
    labeled) are never chosen but count as chosen: fixed k-means centres, and points
    farthest from them as well, so what they cover is not chosen again.
    """
    fixed = sorted(set(taken))
    if not fixed:
        rows = nearest_to_centres(features, kmeans_count(n), seed)
        return farthest_point_fill(features, rows, n)
    rows = nearest_to_free_centres(features, fixed, kmeans_count(n), seed)
    return farthest_point_fill(features, rows, n, covered=fixed)


def choose_diverse_frames(
    features: npt.NDArray[np.float32],
    indices: npt.NDArray[np.int64],
    n: int,
    seed: int = 0,
) -> list[int]:
    """The frame indices of ``choose_diverse_rows``, sorted."""
    return sorted(int(indices[row]) for row in choose_diverse_rows(features, n, seed))


def spread_measures(
    features: npt.NDArray[np.float32], rows: list[int], covered: Iterable[int] = ()
) -> tuple[float, float, float]:
    """Coverage mean, coverage worst and redundancy of chosen ``rows`` in ``features``.

    Coverage counts the ``covered`` rows (frames already labeled) as chosen: it is how well
    everything labeled after this choice serves the video. Redundancy is among ``rows``.
    """
    if not rows or features.shape[0] == 0:
        return math.inf, math.inf, 0.0
    gap = distance_to_nearest(features, [*rows, *covered])
    chosen = features[rows]
    redundancy = math.inf
    for i in range(len(rows) - 1):
        nearest = np.linalg.norm(chosen[i + 1 :] - chosen[i], axis=1).min()
        redundancy = min(redundancy, float(nearest))
    redundancy = redundancy if len(rows) > 1 else 0.0
    return float(gap.mean()), float(gap.max()), redundancy


def rows_standing_for(indices: npt.NDArray[np.int64], frames: Iterable[int]) -> list[int]:
    """The row of each frame in ``frames``, or the row of the nearest sampled frame.

    A long video keeps every k-th frame as a sample; a labeled frame between two samples is
    then represented by the nearer one, whose pose is at most k/2 frames of motion away.
    """
    wanted = np.fromiter(frames, dtype=np.int64)
    if wanted.size == 0 or indices.size == 0:
        return []
    after = np.minimum(np.searchsorted(indices, wanted), indices.size - 1)
    before = np.maximum(after - 1, 0)
    nearer = np.abs(indices[before] - wanted) <= np.abs(indices[after] - wanted)
    return sorted({int(r) for r in np.where(nearer, before, after)})


def select_diverse_frames(
    features: npt.NDArray[np.uint8],
    indices: npt.NDArray[np.int64],
    n: int,
    seed: int = 0,
    taken: npt.NDArray[np.bool_] | None = None,
) -> Selection:
    """Choose up to ``n`` frames of diverse poses from feature rows (see the module docstring).

    Distractors are set aside only while enough other samples remain to choose ``n`` from.

    Args:
        features: one row per sampled frame, as handlers.features.FrameReducer makes them.
        indices: the frame index of each row, increasing.
        n: how many frames to choose.
        seed: fixes k-means, so the same input gives the same frames.
        taken: rows standing for frames already labeled: never chosen, and (with NOVELTY)
            counted as covering their poses, so the choice adds what they miss.
    """
    if taken is None or not NOVELTY:
        keep = np.ones(features.shape[0], dtype=bool) if taken is None else ~taken
        features, indices, taken = features[keep], indices[keep], np.zeros(int(keep.sum()), bool)
    if int((~taken).sum()) == 0:
        # A narrow window of a long video may hold no sample; the caller spreads frames evenly.
        return Selection([], 0, [], [], math.inf, math.inf, 0.0)
    flicker, intrusion = distractor_rows(features, indices)
    usable = usable_rows(flicker, intrusion, n, taken)
    rows = np.flatnonzero(usable)
    embedding = embed_frames(features[rows], indices[rows])
    covered = [int(r) for r in np.flatnonzero(taken[rows])]
    picked = choose_diverse_rows(embedding, n, seed, covered)
    return describe_choice(embedding, picked, indices, usable, flicker, intrusion, taken)


def usable_rows(
    flicker: npt.NDArray[np.bool_],
    intrusion: npt.NDArray[np.bool_],
    n: int,
    taken: npt.NDArray[np.bool_] | None = None,
) -> npt.NDArray[np.bool_]:
    """Rows to choose from (and, when ``taken``, the labeled ones among them): distractors set
    aside only while ``n`` free others remain (a video that is mostly flicker still gets its
    ``n`` frames)."""
    free = np.ones_like(flicker) if taken is None else ~taken
    usable = ~(flicker | intrusion)
    if int((usable & free).sum()) < n:
        usable = ~flicker if int((~flicker & free).sum()) >= n else np.ones_like(usable)
    return usable


def describe_choice(
    embedding: npt.NDArray[np.float32],
    picked: list[int],
    indices: npt.NDArray[np.int64],
    usable: npt.NDArray[np.bool_],
    flicker: npt.NDArray[np.bool_],
    intrusion: npt.NDArray[np.bool_],
    taken: npt.NDArray[np.bool_] | None = None,
) -> Selection:
    """The ``Selection`` of rows ``picked`` out of the usable rows' ``embedding``; labeled
    rows (``taken``) count as covering their poses but are no candidates."""
    taken = np.zeros_like(usable) if taken is None else taken
    rows = np.flatnonzero(usable)
    covered = [int(r) for r in np.flatnonzero(taken[rows])]
    mean, worst, redundancy = spread_measures(embedding, picked, covered)
    return Selection(
        frames=sorted(int(indices[rows[row]]) for row in picked),
        candidates=int(rows.size) - len(covered),
        flicker=[int(i) for i in indices[flicker & ~usable & ~taken]],
        intrusion=[int(i) for i in indices[intrusion & ~usable & ~taken]],
        coverage_mean=mean,
        coverage_worst=worst,
        redundancy=redundancy,
    )


def spread_fill(
    chosen: Iterable[int], start: int, stop: int, n: int, exclude: frozenset[int]
) -> list[int]:
    """Top up ``chosen`` with frames evenly spaced over [start, stop) until there are ``n``."""
    picked = set(chosen)
    free = [i for i in range(start, stop) if i not in picked and i not in exclude]
    need = n - len(picked)
    if need > 0 and free:
        positions = np.linspace(0, len(free) - 1, num=min(need, len(free)))
        picked.update(free[round(p)] for p in positions)
    return sorted(picked)
