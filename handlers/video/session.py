"""The session handler: several synchronized views of one recording, one choice of frames.

Every view is scanned once; the views are checked for sync (same frame count, or the offsets
the session sidecar gives; the same frame rate where timestamps say); the frames are chosen
from all views' features together (``joint.py``); and the same moments are exported from
every view with the exact-frame exporter, into ``<staging>/<session>_<view>/``. Frame numbers
written are each view's own (common frame + the view's offset), and ``session.json`` in every
view folder records the mapping.

With ``fixed_frames`` (a view arriving after its session was done) nothing is chosen: the
session's frames are exported from the new view, after the same sync check against the
frame counts the session recorded.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from threadpoolctl import threadpool_limits

import handlers.video.features as features
import handlers.video.joint as joint
import handlers.video.report as report
import handlers.video.selection as selection
from handlers import bundle, frames
from handlers.options import FrameRange, frame_window
from handlers.outcome import HandlerResult, IncompleteInput, InputError, Progress

METHOD = (
    "every view embedded as for one video (turned silhouette plus the frame against the median "
    "scene, coherence-weighted, smoothed in time); distractors in any view set aside; frames "
    "already labeled or queued in any view count as covered; k-means on the views side by "
    "side for half the frames, farthest points in whichever view two moments differ most for "
    "the rest"
)
SESSION_JSON = "session.json"
SCAN_SHARE = 0.7


class SessionOptions(BaseModel):
    """One session's drop: its views, their files, and the [extract] options.

    Attributes:
        session: the session's name (``<session>_<view>.mp4`` files).
        files: the claimed video file name of each view in this drop, in view order.
        offsets: per view, the view's frame number of common frame 0 (cameras started apart).
        exclude_frames: common frames not to choose again (already labeled in some view).
        fixed_frames: the session's frames, already chosen (a late view): export these.
        recorded_counts: frame counts of the views the session was done with (a late view).
        dated_views: views whose folder already holds a session.json: write a dated one.
    """

    model_config = ConfigDict(extra="forbid")

    session: str
    files: dict[str, str]
    offsets: dict[str, int] = {}
    frames_per_video: int = Field(ge=1)
    frame_range: FrameRange
    context_frames: int = Field(ge=0)
    exclude_frames: frozenset[int] = frozenset()
    fixed_frames: list[int] | None = None
    recorded_counts: dict[str, int] = {}
    dated_views: list[str] = []


def view_folder(session: str, view: str) -> str:
    """``<session>_<view>``: the view's folder under ``labeled-data/`` (the video's stem)."""
    return f"{session}_{view}"


def part_of(
    progress: Progress, start: float, share: float, message: str
) -> Callable[[float], None]:
    """A fraction callback that reports ``start + share * fraction`` of the whole."""

    def report(fraction: float) -> None:
        progress(start + share * fraction, message)

    return report


def scan_views(
    paths: dict[str, Path], choosing: bool, progress: Progress
) -> dict[str, frames.VideoScan]:
    """Scan every view; every view that cannot be read is named together.

    Raises:
        IncompleteInput: a view decodes to fewer frames than its container promises.
        InputError: views that do not open or hold no frame.
    """
    scans: dict[str, frames.VideoScan] = {}
    problems: list[str] = []
    share = SCAN_SHARE / max(len(paths), 1)
    for number, (view, path) in enumerate(paths.items()):
        try:
            scans[view] = frames.scan_video(
                path,
                part_of(progress, share * number, share, f"reading frames of {path.name}"),
                reduce=features.FrameReducer() if choosing else frames.reduce_frame,
            )
        except IncompleteInput:
            raise
        except InputError as exc:
            problems += [f"view {view}: {problem}" for problem in exc.problems]
    if problems:
        raise InputError(problems)
    return scans


def late_mismatch(
    counts: dict[str, int], offsets: dict[str, int], recorded: dict[str, int]
) -> joint.SyncProblem | None:
    """A problem when a late view does not hold the frames its session was done with."""
    every = {**recorded, **counts}
    if not offsets and len(set(every.values())) > 1:
        return joint.count_mismatch(every, offsets)
    return None


def check_sync(scans: dict[str, frames.VideoScan], options: SessionOptions) -> list[str]:
    """Every reason the views cannot be taken as one synchronized recording."""
    counts = {view: scan.frame_count for view, scan in scans.items()}
    offsets = {view: options.offsets[view] for view in counts if view in options.offsets}
    if options.fixed_frames is None:
        problems = [joint.count_mismatch(counts, offsets)]
    else:
        problems = [late_mismatch(counts, offsets, options.recorded_counts)]
    intervals = {view: joint.median_interval(scan.timestamps) for view, scan in scans.items()}
    problems.append(joint.rate_mismatch(intervals))
    return [problem.message for problem in problems if problem is not None]


def choose_session_frames(
    scans: dict[str, frames.VideoScan], options: SessionOptions, length: int
) -> selection.Selection:
    """``frames_per_video`` common frames chosen from every view's features together.

    Raises:
        InputError: the common window holds fewer frames than asked for.
    """
    n = options.frames_per_video
    start, stop = frame_window(length, options.frame_range, options.context_frames)
    available = (stop - start) - sum(1 for i in options.exclude_frames if start <= i < stop)
    if available < n:
        raise InputError(
            [
                f"asked for {n} frames, but the session's views share only {available} frames "
                f"that can be chosen ({length} common frames; frame_range and the context margin "
                f"allow {start} to {stop - 1}, minus frames already labeled). Lower "
                "frames_per_video or send a longer recording"
            ]
        )
    views = list(scans)
    reference = scans[views[0]].indices - options.offsets.get(views[0], 0)
    keep = (reference >= start) & (reference < stop)
    keep &= ~np.isin(reference, np.fromiter(options.exclude_frames, dtype=np.int64))
    # Moments already labeled or queued in any view go in as covered, not as candidates.
    taken = np.zeros_like(keep)
    taken[selection.rows_standing_for(reference, options.exclude_frames)] = True
    common = reference[keep | taken]
    rows = [
        scans[view].thumbs[
            joint.nearest_rows(scans[view].indices, common + options.offsets.get(view, 0))
        ]
        for view in views
    ]
    chosen = joint.select_joint_frames(rows, common, n, taken=taken[keep | taken])
    filled = selection.spread_fill(chosen.frames, start, stop, n, options.exclude_frames)
    return selection.Selection(
        filled,
        chosen.candidates,
        chosen.flicker,
        chosen.intrusion,
        chosen.coverage_mean,
        chosen.coverage_worst,
        chosen.redundancy,
    )


def session_record(
    options: SessionOptions,
    scans: dict[str, frames.VideoScan],
    chosen: list[int],
    choice: selection.Selection | None,
) -> dict[str, Any]:
    """What ``session.json`` holds: the views, the mapping of frames, how they were chosen."""
    offsets = {view: options.offsets.get(view, 0) for view in scans}
    return {
        "session": options.session,
        "views": {
            view: {
                "file": options.files[view],
                "folder": f"labeled-data/{view_folder(options.session, view)}",
                "frame_count": scan.frame_count,
                "offset": offsets[view],
                "frames": [c + offsets[view] for c in chosen],
            }
            for view, scan in scans.items()
        },
        "frames": chosen,
        "mapping": "view frame = session frame + the view's offset",
        "late_view": options.fixed_frames is not None,
        "method": METHOD if choice is not None else "the session's frames, chosen before",
        "parameters": options.model_dump(
            mode="json", include={"frames_per_video", "frame_range", "context_frames", "offsets"}
        ),
        "measures": None
        if choice is None
        else {
            "candidates": choice.candidates,
            "coverage_mean": finite_or_none(choice.coverage_mean),
            "coverage_worst": finite_or_none(choice.coverage_worst),
            "redundancy": finite_or_none(choice.redundancy),
        },
        "framewatch_version": report.framewatch_version(),
    }


def finite_or_none(value: float) -> float | None:
    """``value`` rounded for JSON, or None when it is not finite (JSON has no inf)."""
    return round(value, 4) if math.isfinite(value) else None


def view_selection(
    choice: selection.Selection | None, chosen: list[int], offset: int
) -> selection.Selection:
    """The session's choice in one view's own frame numbers, for that view's report."""
    if choice is None:  # a late view: nothing was chosen here
        return selection.Selection([c + offset for c in chosen], 0, [], [], *NO_MEASURES)
    return dataclasses.replace(
        choice,
        frames=[c + offset for c in chosen],
        flicker=[c + offset for c in choice.flicker],
        intrusion=[c + offset for c in choice.intrusion],
    )


NO_MEASURES = (math.inf, math.inf, 0.0)


def handle_session(
    files: Sequence[Path], options: SessionOptions, staging: Path, progress: Progress
) -> HandlerResult:
    """Write one folder per view of the session into ``staging``, the same moments in each.

    Raises:
        InputError: a view is missing or unreadable, the views are not in sync, or they hold
            fewer usable frames than asked for.
        IncompleteInput: a view decodes to fewer frames than its container promises.
    """
    by_name = {path.name: path for path in files}
    missing = [
        f"view {view}: {name} is not in the drop"
        for view, name in options.files.items()
        if name not in by_name
    ]
    if missing:
        raise InputError(missing)
    paths = {view: by_name[name] for view, name in options.files.items()}
    progress(0.0, f"reading {len(paths)} views")
    scans = scan_views(paths, options.fixed_frames is None, progress)
    problems = check_sync(scans, options)
    if problems:
        raise InputError([f"session {options.session}: {problem}" for problem in problems])
    counts = {view: scan.frame_count for view, scan in scans.items()}
    length = joint.common_length(counts, options.offsets)
    choice = None
    if options.fixed_frames is None:
        with threadpool_limits(limits=1):
            choice = choose_session_frames(scans, options, length)
        chosen = choice.frames
    else:
        chosen = sorted(options.fixed_frames)
    wanted = bundle.with_context(chosen, options.context_frames, length)
    record = session_record(options, scans, chosen, choice)
    written: list[str] = []
    for number, (view, scan) in enumerate(scans.items()):
        offset = options.offsets.get(view, 0)
        folder = staging / view_folder(options.session, view)
        share = (1 - SCAN_SHARE) / len(scans)
        folder.mkdir(parents=True, exist_ok=True)
        exported = frames.export_into(
            folder,
            paths[view],
            [c + offset for c in wanted],
            part_of(progress, SCAN_SHARE + share * number, share, f"writing frames of {view}"),
            timestamps=scan.timestamps,
            tiled=[c + offset for c in chosen],
        )
        names, tiles = exported.names, exported.tiles
        parameters = {**record["parameters"], "view": view}
        view_record = report.selection_record(
            str(record["method"]), parameters, view_selection(choice, chosen, offset), scan
        )
        names += report.write_report(folder, view_record, tiles, view in options.dated_views)
        names.append(bundle.write_selected_csv(folder, [c + offset for c in chosen]))
        json_name = SESSION_JSON
        if view in options.dated_views:
            json_name = report.report_names(True)[0].replace("selection", "session")
        (folder / json_name).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        names.append(json_name)
        written += [f"{folder.name}/{name}" for name in names]
    progress(1.0, "bundles written")
    return HandlerResult(
        selected=chosen,
        files=written,
        report={
            "method": record["method"],
            "views": list(scans),
            "session_views": [*options.recorded_counts, *scans],
            "frame_counts": counts,
            "offsets": {view: options.offsets.get(view, 0) for view in scans},
            "frames_by_view": {view: data["frames"] for view, data in record["views"].items()},
            "selection": record["measures"],
        },
    )
