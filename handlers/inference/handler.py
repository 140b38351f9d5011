"""The model-output handler: choose the frames a trained model finds hardest (active learning).

A drop holds, for one video ``STEM``: predictions ``STEM.csv`` (or ensemble members
``STEM.rng0.csv``, ``STEM.rng1.csv`` ...), optional metric files Lightning Pose writes
(``STEM_pca_singleview_error.csv``, ``STEM_pca_multiview_error.csv``,
``STEM_temporal_norm.csv``), optionally the video and a ``STEM.json`` sidecar; as loose files
or one folder. The handler checks it all, scores every frame (handlers/hardness.py), exports
the chosen frames exactly (handlers/frames.py) and writes the model's predictions for them
beside the frames, so labeling starts from the model's guess.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

import handlers.inference.hardness as hardness
import handlers.inference.report as report
from handlers import bundle, frames
from handlers.frames import VIDEO_SUFFIXES
from handlers.inference.predictions import (
    Predictions,
    ensemble_problems,
    load_metric,
    load_predictions,
    write_predictions_csv,
)
from handlers.options import FrameRange, frame_window
from handlers.outcome import HandlerResult, InputError, Progress

PREDICTIONS_CSV = "predictions.csv"
METHOD = (
    "per keypoint, flags judged against this recording: likelihood below threshold (dropped "
    "where it fires on most frames) and dips below its own median; robust z above threshold "
    "of temporal norm and jump-and-return (exact repeats left out), pose-PCA error, ensemble "
    "spread, limb-length stretch; identity, left/right and head/tail swaps found as whole "
    "episodes (motion flags at their edges dropped); signals that flag most frames weigh less; "
    "frames scoring 2+ form episodes, the k-th frame of an episode counts 1/k^0.75; one per "
    "min_spacing_frames, poses close to chosen ones discounted, topped up to exactly N"
)
METRIC_SUFFIXES = {
    "_pca_singleview_error.csv": "pca_singleview",
    "_pca_multiview_error.csv": "pca_multiview",
    "_temporal_norm.csv": "temporal_norm",
}
ENSEMBLE_MEMBER = re.compile(r"^[A-Za-z_-]*\d+$")
"""The part after the stem that names an ensemble member: ``rng0``, ``seed3``, ``2``."""

# Shares of the progress bar: loading and scoring, then exporting frames.
SCORE_SHARE = 0.3


class ChoiceOptions(BaseModel):
    """[extract] and [inference] of the config, overridden by a sidecar: how the hard frames
    are chosen, the same for a single drop and for every view of a session."""

    model_config = ConfigDict(extra="forbid")

    frames_per_video: int = Field(ge=1)
    frame_range: FrameRange
    context_frames: int = Field(ge=0)
    likelihood_threshold: float = Field(ge=0)
    z_threshold: float = Field(gt=0)
    pca_variance: float = Field(gt=0, le=1)
    min_spacing_frames: int = Field(ge=0)
    video_folder: str = ""


class InferenceOptions(ChoiceOptions):
    """Per-drop options: the choice's, overridden by STEM.json, and the project's part.

    ``stem``, ``exclude_frames``, ``video_candidates`` and ``video_folder`` come from the
    project (the daemon fills them in): the handler knows nothing of the project's layout.
    """

    stem: str
    exclude_frames: frozenset[int] = frozenset()
    video_candidates: tuple[Path, ...] = ()


# ----- which file is what --------------------------------------------------------------------


def member_stem(base: str) -> str:
    """``STEM`` of an ensemble member's base name ``STEM.rng0``; other names stay whole."""
    stem, dot, member = base.rpartition(".")
    return stem if dot and stem and ENSEMBLE_MEMBER.match(member) else base


def file_role(name: str) -> tuple[str, str] | None:
    """What a file of a drop is, and its base name (the stem, maybe with a member); or None.

    Roles: ``predictions``, ``metric:<name>``, ``video``, ``sidecar``. The base of
    ``STEM.rng0_temporal_norm.csv`` is ``STEM.rng0``; see ``belongs_to``.
    """
    lowered = name.lower()
    suffix = Path(lowered).suffix
    if suffix in VIDEO_SUFFIXES:
        return "video", Path(name).stem
    if suffix == ".json":
        return "sidecar", Path(name).stem
    if suffix != ".csv":
        return None
    for ending, metric in METRIC_SUFFIXES.items():
        if lowered.endswith(ending) and len(name) > len(ending):
            return f"metric:{metric}", name[: -len(ending)]
    return "predictions", name[: -len(".csv")]


def belongs_to(base: str, stem: str) -> bool:
    """True when a file with this base name is part of the drop for ``stem``."""
    return base == stem or member_stem(base) == stem


@dataclass
class DropFiles:
    """The files of one drop, sorted by role."""

    predictions: list[Path] = field(default_factory=list)
    metrics: dict[str, list[Path]] = field(default_factory=dict)
    videos: list[Path] = field(default_factory=list)
    ignored: list[Path] = field(default_factory=list)


def expand_folders(files: Sequence[Path]) -> list[Path]:
    """The files given, with a folder replaced by the visible files directly inside it."""
    found: list[Path] = []
    for path in files:
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        else:
            found.append(path)
    return found


def sort_drop(files: Sequence[Path], stem: str) -> DropFiles:
    """Sort the files of a drop for ``stem`` by role; files of other stems are ignored."""
    drop = DropFiles()
    for path in expand_folders(files):
        role = file_role(path.name)
        if role is None or not belongs_to(role[1], stem):
            drop.ignored.append(path)
        elif role[0] == "predictions":
            drop.predictions.append(path)
        elif role[0] == "video":
            drop.videos.append(path)
        elif role[0].startswith("metric:"):
            drop.metrics.setdefault(role[0].split(":", 1)[1], []).append(path)
    return drop


# ----- loading and checking ------------------------------------------------------------------


def collect(problems: list[str], load: Any, *args: Any) -> Any:
    """Call ``load(*args)``; on InputError add its problems to ``problems`` and return None."""
    try:
        return load(*args)
    except InputError as exc:
        problems += exc.problems
        return None


def choose_video(drop: DropFiles, options: InferenceOptions) -> tuple[Path | None, list[str]]:
    """The video the predictions are for: in the drop, else in the project; or the problem."""
    stem = options.stem
    if len(drop.videos) > 1:
        names = ", ".join(path.name for path in drop.videos)
        return None, [f"expected one video for {stem} in the drop, but got {names}; keep one"]
    if drop.videos:
        return drop.videos[0], []
    found = [path for path in options.video_candidates if path.is_file()]
    if len(found) == 1:
        return found[0], []
    where = options.video_folder or "the project's videos folder"
    if found:
        names = ", ".join(path.name for path in found)
        return None, [
            f"found several videos for {stem} in {where} ({names}); put the one the predictions "
            "are for into the drop"
        ]
    return None, [
        f"no video for {stem}: expected {stem}.mp4 (or .avi, .mov, .mkv) in the drop or in "
        f"{where}, but found none. Add the video to the drop, or drop it in the videos inbox first"
    ]


def reported_frame_count(video: Path) -> int:
    """The frame count the container states (cheap, not always exact)."""
    with frames.open_video(video) as capture:
        return max(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), 0)


def frame_count_problems(video: Path, rows: int, where: str) -> list[str]:
    """A problem when the video has another number of frames than the predictions have rows.

    The container's count is trusted only when it agrees; otherwise the video is decoded to
    the end to count its frames exactly before the drop is failed.
    """
    if reported_frame_count(video) == rows:
        return []
    actual = frames.scan_video(video).frame_count
    if actual == rows:
        return []
    return [
        f"{where} has {rows} rows (frames), but the video {video.name} has {actual} frames; "
        "the predictions must be for this exact video, one row a frame"
    ]


@dataclass(frozen=True)
class ModelOutput:
    """Everything loaded from a drop, checked and ready to score."""

    video: Path
    members: list[Predictions]
    metrics: dict[str, npt.NDArray[np.float64]]
    warnings: list[str]

    @property
    def frame_count(self) -> int:
        return self.members[0].frame_count

    @property
    def keypoints(self) -> tuple[str, ...]:
        return self.members[0].keypoints

    def without_member_arrays(self) -> ModelOutput:
        """The same output with an ensemble's members reduced to their names and length.

        Once the ensemble's mean and spread are computed, scoring needs nothing else of the
        members: an hour of five models' positions is 140 MB that need not stay.
        """
        if len(self.members) == 1:
            return self
        frames = self.frame_count
        light = [
            replace(m, xy=np.empty((frames, 0, 2)), likelihood=np.empty((frames, 0)))
            for m in self.members
        ]
        return replace(self, members=light)


def load_drop(files: Sequence[Path], options: InferenceOptions) -> ModelOutput:
    """Load and check every file of the drop.

    Raises:
        InputError: every problem found in any of the files.
    """
    drop = sort_drop(files, options.stem)
    problems: list[str] = []
    if not drop.predictions:
        names = ", ".join(path.name for path in expand_folders(files)) or "nothing"
        raise InputError(
            [
                f"expected predictions {options.stem}.csv (or {options.stem}.rng0.csv ... for an "
                f"ensemble) in the drop, but got {names}"
            ]
        )
    # Members of an ensemble are only averaged and compared: float32 positions (see there).
    xy_dtype = np.float32 if len(drop.predictions) > 1 else np.float64
    members = [collect(problems, load_predictions, path, xy_dtype) for path in drop.predictions]
    loaded = [member for member in members if member is not None]
    problems += ensemble_problems(loaded)
    video, video_problems = choose_video(drop, options)
    problems += video_problems
    # Check all that can still be checked, so one failed drop lists every problem.
    metrics = load_metrics(drop, loaded[0], problems) if loaded else {}
    if loaded and video is not None:
        where = loaded[0].path.name
        if len(loaded) > 1:
            where = f"each of the {len(loaded)} prediction files"
        count = collect(problems, frame_count_problems, video, loaded[0].frame_count, where)
        problems += count or []
    if problems or video is None:
        raise InputError(problems)
    warnings = [f"{path.name} is not a file of this drop and was not used" for path in drop.ignored]
    return ModelOutput(video, loaded, metrics, warnings)


def load_metrics(
    drop: DropFiles, first: Predictions, problems: list[str]
) -> dict[str, npt.NDArray[np.float64]]:
    """Each metric the drop carries; a metric given per ensemble member is averaged."""
    metrics = {}
    for name, paths in sorted(drop.metrics.items()):
        arrays = [
            collect(problems, load_metric, path, first.keypoints, first.frame_count)
            for path in paths
        ]
        if all(array is not None for array in arrays):
            metrics[name] = hardness.ensemble_mean(arrays)
    return metrics


# ----- choosing --------------------------------------------------------------------------------


def combined_predictions(output: ModelOutput) -> Predictions:
    """The one model's predictions, or the ensemble's mean position and likelihood."""
    if len(output.members) == 1:
        return output.members[0]
    first = output.members[0]
    xy = hardness.ensemble_mean([m.xy for m in output.members])
    likelihood = hardness.mean_of([m.likelihood for m in output.members])
    scorer = f"ensemble mean of {len(output.members)} models ({first.scorer})"
    return Predictions(first.path, scorer, first.keypoints, xy, likelihood)


def chosen_window(frame_count: int, options: InferenceOptions) -> tuple[int, int]:
    """The frames that may be chosen; fails when they are fewer than asked for."""
    start, stop = frame_window(frame_count, options.frame_range, options.context_frames)
    available = (stop - start) - sum(1 for f in options.exclude_frames if start <= f < stop)
    n = options.frames_per_video
    if available < n:
        raise InputError(
            [
                f"asked for {n} frames, but the video holds only {available} frames that can be "
                f"chosen (it has {frame_count} frames; the frame_range and context margin allow "
                f"frames {start} to {stop - 1}, minus frames already labeled). Lower "
                "frames_per_video or widen frame_range"
            ]
        )
    return start, stop


def member_spread(
    output: ModelOutput, centre: npt.NDArray[np.float64] | None = None
) -> npt.NDArray[np.float64] | None:
    """The ensemble's spread (``hardness.ensemble_spread``) about ``centre`` (their mean,
    when already computed), or None for one model."""
    if len(output.members) == 1:
        return None
    return hardness.ensemble_spread([m.xy for m in output.members], centre)


def score_frames(
    output: ModelOutput,
    combined: Predictions,
    options: InferenceOptions,
    spread: npt.NDArray[np.float64] | None = None,
) -> tuple[npt.NDArray[np.float64], dict[str, hardness.WeightArray]]:
    """Every frame's score and the flag weights of each signal (see handlers/hardness.py).

    ``spread``: the ensemble's, from ``member_spread``; else computed from the members.
    """
    scores, weights, _ = scored_frames(output, combined, options, spread)
    return scores, weights


def scored_frames(
    output: ModelOutput,
    combined: Predictions,
    options: InferenceOptions,
    spread: npt.NDArray[np.float64] | None = None,
) -> tuple[npt.NDArray[np.float64], dict[str, hardness.WeightArray], npt.NDArray[np.float64]]:
    """``score_frames``, and each frame's ``hardness.frame_size_factor`` (how large its error
    looks) for ``hardness.choose_hard_frames``."""
    if spread is None and len(output.members) > 1:
        spread = member_spread(output)
    given = dict(output.metrics)
    if spread is not None:
        given["ensemble_spread"] = spread
    signals = hardness.model_signals(
        combined.xy,
        combined.likelihood,
        options.likelihood_threshold,
        options.pca_variance,
        given=given,
        keypoints=combined.keypoints,
    )
    scores, weights = hardness.frame_scores(
        signals, combined.likelihood, options.likelihood_threshold, options.z_threshold
    )
    return scores, weights, hardness.frame_size_factor(combined.xy, signals, combined.keypoints)


def handle_inference(
    files: Sequence[Path], options: InferenceOptions, staging: Path, progress: Progress
) -> HandlerResult:
    """Write a labeling bundle of the frames the model finds hardest into ``staging``.

    Raises:
        InputError: every problem with the drop (files, layout, video, frame counts).
    """
    progress(0.0, "reading the model's predictions")
    output = load_drop(files, options)
    window = chosen_window(output.frame_count, options)
    combined = combined_predictions(output)
    spread = member_spread(output, combined.xy)
    output = output.without_member_arrays()
    scores, weights, factor = scored_frames(output, combined, options, spread)
    del spread
    chosen = hardness.choose_hard_frames(
        scores,
        hardness.pose_features(combined.xy),
        options.frames_per_video,
        window,
        exclude=options.exclude_frames,
        spacing=options.min_spacing_frames,
        factor=factor,
    )
    progress(SCORE_SHARE, f"writing frames of {output.video.name}")
    flags = {f: hardness.describe_flags(f, weights, output.keypoints) for f in chosen}
    exported = frames.export_into(
        staging,
        output.video,
        bundle.with_context(chosen, options.context_frames, output.frame_count),
        lambda f: progress(SCORE_SHARE + (1 - SCORE_SHARE) * f, "writing frames"),
        tiled=flags,
        tile=keypoint_tiler(output.keypoints, combined, scores, flags),
    )
    written, tiles = exported.names, exported.tiles
    written.append(bundle.write_selected_csv(staging, chosen))
    write_predictions_csv(staging / PREDICTIONS_CSV, options.stem, combined, chosen)
    written.append(PREDICTIONS_CSV)
    summary = build_report(output, scores, flags, weights, chosen, options)
    record = report.selection_record(
        METHOD,
        summary["parameters"],
        output.video.name,
        output.frame_count,
        chosen,
        scores,
        flags,
        options.min_spacing_frames,
    )
    # A second bundle for the same video must not clash with the first one's report.
    written += report.write_report(staging, record, tiles, dated=bool(options.exclude_frames))
    progress(1.0, "bundle written")
    return HandlerResult(selected=chosen, files=written, warnings=output.warnings, report=summary)


def keypoint_tiler(
    keypoints: Sequence[str],
    combined: Predictions,
    scores: npt.NDArray[np.float64],
    flags: Mapping[int, Mapping[str, Sequence[str]]],
    label: str = "",
) -> Callable[[int, npt.NDArray[np.uint8]], npt.NDArray[np.uint8]]:
    """The contact-sheet tile of a chosen frame for ``frames.export_into``: the model's
    keypoints drawn on it, the flagged ones ringed, and why it was chosen written under it,
    so a person sees at a glance what the model got wrong."""
    animal = animal_of_keypoint(keypoints)

    def tile(index: int, image: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
        names = {name for found in flags[index].values() for name in found}
        ringed = [k for k, name in enumerate(keypoints) if name in names]
        reason = report.frame_reason(flags[index], float(scores[index]))
        title = f"{label}#{index}  score {scores[index]:.1f}"
        return report.keypoint_tile(image, combined.xy[index], animal, ringed, reason, title)

    return tile


def animal_of_keypoint(keypoints: Sequence[str]) -> list[int]:
    """Which animal each keypoint belongs to (0 when the names do not tell), for colours."""
    animal = [0] * len(keypoints)
    for number, group in enumerate(hardness.animal_groups(keypoints)):
        for k in group:
            animal[k] = number
    return animal


def build_report(
    output: ModelOutput,
    scores: npt.NDArray[np.float64],
    flags: dict[int, dict[str, list[str]]],
    weights: dict[str, hardness.WeightArray],
    chosen: Sequence[int],
    options: InferenceOptions,
) -> dict[str, Any]:
    """What produced the bundle and why each frame was chosen, for the status file."""
    given = sorted(output.metrics)
    computed = sorted(name for name in weights if name not in given and name != "likelihood")
    return {
        "method": METHOD,
        "frame_count": output.frame_count,
        "video": output.video.name,
        "predictions": [member.path.name for member in output.members],
        "keypoints": list(output.keypoints),
        "signals": {"from_files": given, "computed": computed},
        "flagged_frames": int(np.sum(scores >= 1.0)),
        "parameters": options.model_dump(
            mode="json", exclude={"exclude_frames", "video_candidates", "video_folder", "stem"}
        ),
        "chosen": [
            {
                "frame": frame,
                "score": round(float(scores[frame]), 2),
                "flags": flags[frame],
            }
            for frame in chosen
        ],
    }
