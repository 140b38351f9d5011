"""Model outputs of a multi-view session: one choice of hard frames from every view's errors.

A session drop holds, per view, what a single-view drop holds for the video
``<session>_<view>``: predictions ``<session>_<view>.csv`` (or ensemble members
``<session>_<view>.rng0.csv`` ...), optional metric files and the video (else the project's).
Every view is loaded, checked and scored exactly as a single-view drop (``handler.py``); the
views are checked for sync (same frame count, or the sidecar's offsets); a session frame's
score is its worst view's, so a frame the model gets wrong in any view is a candidate; the
poses of all views, each scaled to the same spread, keep the choice diverse. The same moments
are exported from every view into ``<staging>/<session>_<view>/`` with that view's
predictions, report and ``session.json``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import Field

import handlers.inference.hardness as hardness
import handlers.inference.report as report
from handlers import bundle
from handlers.frames import export_into
from handlers.inference.handler import (
    PREDICTIONS_CSV,
    SCORE_SHARE,
    ChoiceOptions,
    InferenceOptions,
    ModelOutput,
    combined_predictions,
    expand_folders,
    file_role,
    keypoint_tiler,
    load_drop,
    member_spread,
    member_stem,
    scored_frames,
)
from handlers.inference.predictions import Predictions, write_predictions_csv
from handlers.options import frame_window
from handlers.outcome import HandlerResult, InputError, Progress
from handlers.video.joint import common_length, count_mismatch
from handlers.video.session import SESSION_JSON, view_folder

FloatArray = npt.NDArray[np.float64]
METHOD = (
    "every view scored as a single-view model-output drop; a session frame scores its worst "
    "view's score (a frame wrong in any view is a candidate); the hard-frame choice on those "
    "scores with every view's pose, each scaled to the same spread, for diversity"
)


class InferenceSessionOptions(ChoiceOptions):
    """One session's model outputs: [extract] and [inference] options, and the project's part.

    Attributes:
        session: the session's name (files ``<session>_<view>.csv``).
        views: the views of this drop, in view order.
        offsets: per view, the view's frame number of session frame 0.
        exclude_frames: session frames already labeled, exported or queued in some view.
        video_candidates: per view, the project's videos of ``<session>_<view>``.
        dated_views: views whose folder already holds a session.json: write a dated one.
    """

    session: str
    views: list[str] = Field(min_length=1)
    offsets: dict[str, int] = Field(default_factory=dict)
    exclude_frames: frozenset[int] = frozenset()
    video_candidates: dict[str, tuple[Path, ...]] = Field(default_factory=dict)
    dated_views: list[str] = Field(default_factory=list)

    def for_view(self, view: str) -> InferenceOptions:
        """The single-view options of one view (frames to exclude are the session's)."""
        shift = self.offsets.get(view, 0)
        return InferenceOptions(
            **self.model_dump(include=set(ChoiceOptions.model_fields)),
            stem=view_folder(self.session, view),
            exclude_frames=frozenset(i + shift for i in self.exclude_frames),
            video_candidates=self.video_candidates.get(view, ()),
        )


# ----- pure functions: from every view's scores to one choice ---------------------------------


def in_session_frames(values: npt.NDArray[Any], offset: int, length: int) -> npt.NDArray[Any]:
    """A view's per-frame rows in session numbering: rows ``offset`` to ``offset + length``."""
    return values[offset : offset + length]


def session_scores(
    view_scores: Sequence[FloatArray], offsets: Sequence[int], length: int
) -> FloatArray:
    """Every session frame's score: the highest of its views' scores.

    A view's score says how likely the model is wrong there (1 + weighted flags when flagged,
    the near miss below 1 otherwise), so the worst view decides: an error one camera shows is
    an error to label in every view, whatever the other views' models did.
    """
    rows = [in_session_frames(s, o, length) for s, o in zip(view_scores, offsets, strict=True)]
    return np.max(np.vstack(rows), axis=0)


def session_poses(
    view_poses: Sequence[FloatArray], offsets: Sequence[int], length: int
) -> FloatArray:
    """Every view's pose features side by side, each divided by its own spread
    (``hardness.pose_scale``), so a camera with more pixels does not decide diversity alone."""
    parts = []
    for poses, offset in zip(view_poses, offsets, strict=True):
        rows = in_session_frames(poses, offset, length)
        scale = hardness.pose_scale(rows)
        parts.append(rows / scale if scale > 0 else rows)
    return np.hstack(parts)


def worst_views(
    view_scores: dict[str, FloatArray], offsets: dict[str, int], frames: Sequence[int]
) -> dict[int, list[str]]:
    """Per chosen session frame, its views from the highest score down (for the report)."""
    return {
        frame: sorted(view_scores, key=lambda v: -float(view_scores[v][frame + offsets.get(v, 0)]))
        for frame in frames
    }


# ----- the handler -------------------------------------------------------------------------------


def files_by_view(
    files: Sequence[Path], session: str, views: Sequence[str]
) -> dict[str, list[Path]]:
    """The drop's files sorted by view: a file (or folder) belongs to the view its name ends in."""
    found: dict[str, list[Path]] = {view: [] for view in views}
    for path in files:
        inside = expand_folders([path]) if path.is_dir() else [path]
        for member in inside:
            role = file_role(member.name)
            if role is None:
                continue
            base = member_stem(role[1])
            for view in views:
                if base == view_folder(session, view):
                    found[view].append(member)
    return found


def load_views(files: Sequence[Path], options: InferenceSessionOptions) -> dict[str, ModelOutput]:
    """Every view's model output, loaded and checked as a single-view drop.

    Raises:
        InputError: every problem of every view, each naming its view.
    """
    by_view = files_by_view(files, options.session, options.views)
    outputs: dict[str, ModelOutput] = {}
    problems: list[str] = []
    for view in options.views:
        try:
            outputs[view] = load_drop(by_view[view], options.for_view(view))
        except InputError as exc:
            problems += [f"view {view}: {problem}" for problem in exc.problems]
    if problems:
        raise InputError(problems)
    return outputs


def handle_inference_session(
    files: Sequence[Path], options: InferenceSessionOptions, staging: Path, progress: Progress
) -> HandlerResult:
    """Write one folder per view into ``staging``: the frames hardest in any view, the same
    moments in each, with every view's predictions for them.

    Raises:
        InputError: a view's files are missing or bad, the views are not in sync, or they share
            fewer choosable frames than asked for.
    """
    progress(0.0, f"reading the model's predictions of {len(options.views)} views")
    outputs = load_views(files, options)
    counts = {view: output.frame_count for view, output in outputs.items()}
    offsets = {view: options.offsets.get(view, 0) for view in outputs}
    mismatch = count_mismatch(counts, {v: o for v, o in options.offsets.items() if v in counts})
    if mismatch is not None:
        raise InputError([f"session {options.session}: {mismatch.message}"])
    length = common_length(counts, offsets)
    start, stop = frame_window(length, options.frame_range, options.context_frames)
    available = (stop - start) - sum(1 for i in options.exclude_frames if start <= i < stop)
    if available < options.frames_per_video:
        raise InputError(
            [
                f"asked for {options.frames_per_video} frames, but the session's views share "
                f"only {available} frames that can be chosen ({length} common frames; "
                f"frame_range and the context margin allow {start} to {stop - 1}, minus frames "
                "already labeled). Lower frames_per_video or send a longer recording"
            ]
        )
    combined: dict[str, Predictions] = {}
    scores: dict[str, FloatArray] = {}
    weights: dict[str, dict[str, hardness.WeightArray]] = {}
    sizes: dict[str, FloatArray] = {}
    for view, output in outputs.items():
        combined[view] = combined_predictions(output)
        spread = member_spread(output, combined[view].xy)
        outputs[view] = output.without_member_arrays()
        scores[view], weights[view], sizes[view] = scored_frames(
            outputs[view], combined[view], options.for_view(view), spread
        )
    views = list(outputs)
    shifts = [offsets[v] for v in views]
    joint_scores = session_scores([scores[v] for v in views], shifts, length)
    # The largest error any view shows, as the worst view decides the score.
    joint_sizes = session_scores([sizes[v] for v in views], shifts, length)
    poses = session_poses([hardness.pose_features(combined[v].xy) for v in views], shifts, length)
    chosen = hardness.choose_hard_frames(
        joint_scores,
        poses,
        options.frames_per_video,
        (start, stop),
        exclude=options.exclude_frames,
        spacing=options.min_spacing_frames,
        factor=joint_sizes,
    )
    worst = worst_views(scores, offsets, chosen)
    record = session_record(options, counts, offsets, chosen, joint_scores, worst, outputs)
    written: list[str] = []
    share = 1 / len(views)
    for number, view in enumerate(views):
        folder = staging / view_folder(options.session, view)
        folder.mkdir(parents=True, exist_ok=True)

        def view_progress(fraction: float, message: str, number: int = number) -> None:
            progress(min(1.0, share * (number + fraction)), message)

        names = write_view(
            folder,
            view,
            outputs[view],
            combined[view],
            scores[view],
            weights[view],
            [c + offsets[view] for c in chosen],
            length,
            options,
            view_progress,
        )
        json_name = SESSION_JSON
        if view in options.dated_views:
            json_name = report.report_names(True)[0].replace("selection", "session")
        (folder / json_name).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        written += [f"{folder.name}/{name}" for name in [*names, json_name]]
    progress(1.0, "bundles written")
    warnings = [w for output in outputs.values() for w in output.warnings]
    return HandlerResult(
        selected=chosen,
        files=written,
        warnings=warnings,
        report={
            "method": METHOD,
            "views": views,
            "session_views": views,
            "frame_counts": counts,
            "offsets": offsets,
            "frames_by_view": {view: data["frames"] for view, data in record["views"].items()},
            "chosen": record["chosen"],
        },
    )


def write_view(
    folder: Path,
    view: str,
    output: ModelOutput,
    combined: Predictions,
    scores: FloatArray,
    weights: dict[str, hardness.WeightArray],
    frames: list[int],
    length: int,
    options: InferenceSessionOptions,
    progress: Progress,
) -> list[str]:
    """One view's folder: frames and context, selected_frames.csv, predictions.csv and the
    report (selection.json, contact sheet) in this view's own frame numbers; the names."""
    single = options.for_view(view)
    flags = {f: hardness.describe_flags(f, weights, output.keypoints) for f in frames}

    # Context frames only where every view has them: within the session's common frames.
    last = min(output.frame_count, length + options.offsets.get(view, 0))
    exported = export_into(
        folder,
        output.video,
        bundle.with_context(frames, single.context_frames, last),
        lambda f: progress(SCORE_SHARE + (1 - SCORE_SHARE) * f, "writing frames"),
        tiled=flags,
        tile=keypoint_tiler(output.keypoints, combined, scores, flags, label=f"{view} "),
    )
    names, tiles = exported.names, exported.tiles
    names.append(bundle.write_selected_csv(folder, frames))
    write_predictions_csv(folder / PREDICTIONS_CSV, single.stem, combined, frames)
    names.append(PREDICTIONS_CSV)
    parameters = {
        **single.model_dump(
            mode="json", exclude={"exclude_frames", "video_candidates", "video_folder", "stem"}
        ),
        "session": options.session,
        "view": view,
    }
    record = report.selection_record(
        METHOD,
        parameters,
        output.video.name,
        output.frame_count,
        frames,
        scores,
        flags,
        options.min_spacing_frames,
    )
    names += report.write_report(folder, record, tiles, view in options.dated_views)
    return names


def session_record(
    options: InferenceSessionOptions,
    counts: dict[str, int],
    offsets: dict[str, int],
    chosen: list[int],
    scores: FloatArray,
    worst: dict[int, list[str]],
    outputs: dict[str, ModelOutput],
) -> dict[str, Any]:
    """What ``session.json`` holds: the views, the mapping of frames, why each was chosen."""
    return {
        "session": options.session,
        "views": {
            view: {
                "predictions": [member.path.name for member in outputs[view].members],
                "video": outputs[view].video.name,
                "folder": f"labeled-data/{view_folder(options.session, view)}",
                "frame_count": counts[view],
                "offset": offsets[view],
                "frames": [c + offsets[view] for c in chosen],
            }
            for view in outputs
        },
        "frames": chosen,
        "mapping": "view frame = session frame + the view's offset",
        "method": METHOD,
        "chosen": [
            {"frame": c, "score": round(float(scores[c]), 3), "views_by_score": worst[c]}
            for c in chosen
        ],
        "parameters": options.model_dump(
            mode="json",
            exclude={
                "exclude_frames",
                "video_candidates",
                "video_folder",
                "dated_views",
                "session",
            },
        ),
    }
