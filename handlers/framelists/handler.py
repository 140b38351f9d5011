"""The frame-list handler: exactly the frames a lab picked, exported with their context.

``STEM.csv`` with the header ``frame`` (numbers from 0, as decoded in order from the start)
or ``time_s`` (seconds; each must be the timestamp of a frame) names frames of the video
``STEM``, dropped beside the list or already in ``<project>/videos/``. The video is read once
for its frame count and every frame's timestamp; the frames and their context frames then go
through the exact exporter, and ``selected_frames.csv`` lists the picked ones.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from handlers import bundle, frames
from handlers.framelists.listing import frames_of_list, read_list
from handlers.frames import VIDEO_SUFFIXES
from handlers.outcome import HandlerResult, InputError, Progress, only_file_with_suffix

FRAMELIST_SUFFIXES = frozenset({".csv"})
METHOD = "frames listed by the lab (frame list), exported exactly with context"
MAX_LIST_BYTES = 16 << 20
SCAN_SHARE = 0.6


class FrameListOptions(BaseModel):
    """[extract] context_frames (a sidecar may set it) and where the video may be."""

    model_config = ConfigDict(extra="forbid")

    context_frames: int = Field(ge=0)
    video_candidates: tuple[Path, ...] = ()
    video_folder: str = ""


def find_video(files: Sequence[Path], options: FrameListOptions, stem: str) -> Path:
    """The list's video: in the drop, else in ``<project>/videos/``.

    Raises:
        InputError: neither has a video named after the list.
    """
    dropped = [p for p in files if p.suffix.lower() in VIDEO_SUFFIXES and p.stem == stem]
    found = dropped + [p for p in options.video_candidates if p.is_file()]
    if not found:
        where = options.video_folder or "the project's videos folder"
        raise InputError(
            [
                f"{stem}.csv is a frame list for the video {stem}, but there is no {stem}.mp4 "
                f"(or .avi, .mov, .mkv) beside it or in {where}; drop the video with the list, "
                "or put it in the project's videos folder, then drop the list again"
            ]
        )
    return found[0]


def read_text(path: Path) -> str:
    """The list's text (a UTF-8 byte-order mark dropped).

    Raises:
        InputError: too big or not UTF-8 text.
    """
    if path.stat().st_size > MAX_LIST_BYTES:
        raise InputError([f"{path.name} is over {MAX_LIST_BYTES:,} bytes; a frame list never is"])
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            [f"{path.name} is not plain text (UTF-8): {exc.reason} at byte {exc.start}"]
        ) from None


def handle_framelist(
    files: Sequence[Path], options: FrameListOptions, staging: Path, progress: Progress
) -> HandlerResult:
    """Export exactly the listed frames of the list's video, with context, into ``staging``.

    Raises:
        InputError: the list or its lines are wrong (each named), or the video is not there.
    """
    listing = only_file_with_suffix(files, FRAMELIST_SUFFIXES, "frame list (.csv)")
    frame_list, problems = read_list(read_text(listing), listing.name)
    if frame_list is None or problems:
        raise InputError(problems)
    video = find_video(files, options, listing.stem)
    progress(0.0, f"reading {video.name}")
    scan = frames.scan_video(
        video, lambda f: progress(SCAN_SHARE * f, f"reading {video.name}"), max_samples=2
    )
    if frame_list.column == "time_s" and not frames.timestamps_identify_frames(scan.timestamps):
        raise InputError(
            [
                f"{video.name} has no timestamp for each frame, so times cannot name frames; "
                f"give frame numbers in {listing.name} instead (header 'frame')"
            ]
        )
    chosen, problems = frames_of_list(
        frame_list, listing.name, video.name, scan.frame_count, scan.timestamps
    )
    if problems:
        raise InputError(problems)
    wanted = bundle.with_context(chosen, options.context_frames, scan.frame_count)
    exported = frames.export_into(
        staging,
        video,
        wanted,
        lambda f: progress(SCAN_SHARE + (1 - SCAN_SHARE) * f, "writing frames"),
        timestamps=scan.timestamps,
    )
    written = exported.names
    written.append(bundle.write_selected_csv(staging, chosen))
    progress(1.0, "bundle written")
    return HandlerResult(
        selected=sorted(chosen),
        files=written,
        warnings=context_warnings(chosen, options.context_frames, scan.frame_count),
        report={
            "method": METHOD,
            "video": video.name,
            "column": frame_list.column,
            "frame_count": scan.frame_count,
            "frame_size": [scan.width, scan.height],
            "export": dataclasses.asdict(exported.summary),
            "parameters": {"context_frames": options.context_frames},
        },
    )


def context_warnings(chosen: Sequence[int], context: int, frame_count: int) -> list[str]:
    """Frames so near an end of the video that some of their context frames do not exist."""
    near = sorted(i for i in chosen if i < context or i >= frame_count - context)
    if not near:
        return []
    shown = ", ".join(str(i) for i in near[:10]) + (", ..." if len(near) > 10 else "")
    return [
        f"frames {shown} are within {context} frames of an end of the video, so they have "
        "fewer context frames than the others"
    ]
