"""The video handler: choose frames that maximize the diversity of poses, and export them."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field
from threadpoolctl import threadpool_limits

import handlers.video.features as features
import handlers.video.report as report
import handlers.video.selection as selection
from handlers import bundle, frames
from handlers.frames import VIDEO_SUFFIXES
from handlers.options import FrameRange, frame_window
from handlers.outcome import HandlerResult, InputError, Progress, only_file_with_suffix

METHOD = (
    "flicker and intrusions set aside; PCA of the animal's turned silhouette plus the frame "
    "against the median scene, each column weighted by its coherence in time, smoothed over "
    "2 frames; k-means for half the frames (nearest each centre), farthest points for the rest; "
    "frames already labeled count as chosen (fixed centres, farthest from them too)"
)

# Shares of the progress bar: the scan decodes everything, the export up to the last frame.
SCAN_SHARE = 0.7


class VideoOptions(BaseModel):
    """Per-video options: the config's [extract] section, overridden by a STEM.json sidecar."""

    model_config = ConfigDict(extra="forbid")

    frames_per_video: int = Field(ge=1)
    frame_range: FrameRange
    context_frames: int = Field(ge=0)
    exclude_frames: frozenset[int] = frozenset()


def choose_frames(scan: frames.VideoScan, options: VideoOptions) -> list[int]:
    """Pick ``frames_per_video`` distinct frames from the scan, inside the allowed window.

    Raises:
        InputError: the window holds fewer frames than asked for.
    """
    return select_frames(scan, options).frames


def select_frames(scan: frames.VideoScan, options: VideoOptions) -> selection.Selection:
    """``choose_frames`` with the measures of the choice, for the bundle's report.

    Raises:
        InputError: the window holds fewer frames than asked for.
    """
    n = options.frames_per_video
    start, stop = frame_window(scan.frame_count, options.frame_range, options.context_frames)
    available = (stop - start) - sum(1 for i in options.exclude_frames if start <= i < stop)
    if available < n:
        raise InputError([_too_few_frames_message(scan.frame_count, start, stop, available, n)])
    keep = (scan.indices >= start) & (scan.indices < stop)
    keep &= ~np.isin(scan.indices, np.fromiter(options.exclude_frames, dtype=np.int64))
    # Frames already labeled (or the samples nearest them) go in as covered, not as candidates.
    taken = np.zeros_like(keep)
    taken[selection.rows_standing_for(scan.indices, options.exclude_frames)] = True
    rows = keep | taken
    chosen = selection.select_diverse_frames(
        scan.thumbs[rows], scan.indices[rows], n, taken=taken[rows]
    )
    # A long video keeps only every k-th frame as a sample; a narrow window may then hold
    # fewer samples than frames wanted, so the rest are spread evenly over the window.
    filled = selection.spread_fill(chosen.frames, start, stop, n, options.exclude_frames)
    return dataclasses.replace(chosen, frames=filled)


def _too_few_frames_message(total: int, start: int, stop: int, available: int, n: int) -> str:
    return (
        f"asked for {n} frames, but the video holds only {available} frames that can be "
        f"chosen (it has {total} frames; the frame_range and context margin allow frames "
        f"{start} to {stop - 1}, minus frames already labeled). Lower frames_per_video, widen "
        "frame_range, or send a longer recording."
    )


def handle_video(
    files: Sequence[Path], options: VideoOptions, staging: Path, progress: Progress
) -> HandlerResult:
    """Write a labeling bundle for one video into ``staging``.

    Raises:
        InputError: the video cannot be read, or holds fewer usable frames than asked for.
    """
    video = only_file_with_suffix(files, VIDEO_SUFFIXES, "video file")
    progress(0.0, f"reading {video.name}")
    scan = frames.scan_video(
        video,
        lambda f: progress(SCAN_SHARE * f, f"reading frames of {video.name}"),
        reduce=features.FrameReducer(),
    )
    # One BLAS/OpenMP thread: on a few cores shared with decoders and other workers, their
    # threads spin waiting for each other (1.8 s instead of 0.3 s for 2330 samples).
    with threadpool_limits(limits=1):
        choice = select_frames(scan, options)
    chosen = choice.frames
    chosen_set = set(chosen)
    tiles: dict[int, npt.NDArray[np.uint8]] = {}
    wanted = bundle.with_context(chosen, options.context_frames, scan.frame_count)
    written: list[str] = []

    def write(index: int, image: npt.NDArray[np.uint8]) -> None:
        name = bundle.frame_filename(index)
        bundle.write_png(staging / name, image)
        written.append(name)
        if index in chosen_set:
            tiles[index] = report.sheet_tile(image)

    exported = frames.export_frames(
        video,
        wanted,
        write,
        lambda f: progress(SCAN_SHARE + (1 - SCAN_SHARE) * f, "writing frames"),
        timestamps=scan.timestamps,
    )
    parameters = options.model_dump(mode="json", exclude={"exclude_frames"})
    record = report.selection_record(METHOD, parameters, choice, scan)
    # A second bundle for the same folder must not clash with the first one's report.
    written += report.write_report(staging, record, tiles, dated=bool(options.exclude_frames))
    written.append(bundle.write_selected_csv(staging, chosen))
    progress(1.0, "bundle written")
    return HandlerResult(
        selected=chosen,
        files=written,
        report={
            "method": METHOD,
            "frame_count": scan.frame_count,
            "frame_size": [scan.width, scan.height],
            "samples": int(scan.indices.size),
            "export": dataclasses.asdict(exported),
            "parameters": parameters,
            "selection": record["measures"],
        },
    )
