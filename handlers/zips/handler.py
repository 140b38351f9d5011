"""The zip handler: a lab's own frames, as a strict frames zip, checked in full and unpacked.

The format (Lightning Pose's): ``STEM.zip`` holding PNG frames named ``img%08d.png`` and
``selected_frames.csv`` (the frames to label, one file name a line, no header), at the top of
the zip or in one folder. Every problem is collected before the handler gives up, so one
failed attempt tells the lab everything to fix. Order of work:

    1. the end record: too many entries? (before the whole table is parsed)
    2. the table of contents: unsafe paths, links, declared sizes, names, layout
       -- a hostile zip (zip slip, links, over a limit) stops here, nothing unpacked
    3. unpacking into staging under names we make, counting real bytes against the limits
    4. every PNG decoded, sizes compared; the CSV read; frames already labeled compared
    5. with the video ``<project>/videos/STEM.*``: every PNG compared with its frame
       (``against_video``); without it, a warning that this could not be checked
"""

from __future__ import annotations

import filecmp
import shutil
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

import handlers.zips.checks as checks
from handlers.bundle import frame_filename, write_png, write_selected_csv
from handlers.frames import VIDEO_SUFFIXES
from handlers.outcome import HandlerResult, InputError, Progress, only_file_with_suffix
from handlers.sheet import contact_sheet, sheet_name, sheet_tile
from handlers.zips.against_video import VideoCheck, check_against_video, read_png
from handlers.zips.unpack import (
    ByteBudget,
    DamagedEntryError,
    Limits,
    ZipLimitError,
    check_entry_count,
    check_png,
    copy_entry,
    read_entry,
)

ZIP_SUFFIXES = frozenset({".zip"})
METHOD = "frames zip (img%08d.png + selected_frames.csv), checked and unpacked"
MAX_CSV_BYTES = 16 << 20
MAX_PROBLEMS_SHOWN = 100
UNCHECKED_FOLDER = ".unchecked"  # misnamed PNGs, unpacked only to be decoded, then removed
MAX_SHEET_TILES = 60  # a contact sheet of more frames shows an even spread of them


class ZipOptions(BaseModel):
    """Per-zip options: the config's [zips] limits, context_frames, and the bundle so far."""

    model_config = ConfigDict(extra="forbid")

    max_uncompressed_bytes: int = Field(gt=0)
    max_files: int = Field(gt=0)
    max_ratio: float = Field(gt=1)
    context_frames: int = Field(ge=0)
    existing_bundle: Path
    video_candidates: tuple[Path, ...] = ()
    video_folder: str = ""

    def limits(self) -> Limits:
        return Limits(self.max_uncompressed_bytes, self.max_files, self.max_ratio)


@dataclass
class Unpacked:
    """What unpacking found: frames that are fine, their sizes, the CSV's bytes, problems."""

    frames: list[int] = field(default_factory=list)
    sizes: dict[str, tuple[int, int]] = field(default_factory=dict)
    csv: bytes | None = None
    problems: list[str] = field(default_factory=list)


def open_zip(path: Path, limits: Limits) -> zipfile.ZipFile:
    """Open ``path`` as a zip, refusing one that is not a zip or lists too many entries.

    Raises:
        InputError: not a zip, damaged beyond reading its table, or too many entries.
    """
    too_many = check_entry_count(path, limits)
    if too_many:
        raise InputError([too_many])
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, EOFError, ValueError, NotImplementedError) as exc:
        raise InputError(
            [
                f"{path.name} is not a zip archive, or it is damaged or cut short ({exc}); "
                "make the zip again and copy it once more"
            ]
        ) from exc


def handle_zip(
    files: Sequence[Path], options: ZipOptions, staging: Path, progress: Progress
) -> HandlerResult:
    """Check a frames zip in full and unpack it into ``staging`` as a labeling bundle.

    Raises:
        InputError: every problem found with the zip, when there is at least one.
    """
    path = only_file_with_suffix(files, ZIP_SUFFIXES, ".zip file")
    progress(0.0, f"checking {path.name}")
    dropped = [p for p in files if p.stem == path.stem and p.suffix.lower() in VIDEO_SUFFIXES]
    with open_zip(path, options.limits()) as archive:
        return unpack_bundle(archive, path.stat().st_size, options, staging, progress, dropped)


def unpack_bundle(
    archive: zipfile.ZipFile,
    archive_bytes: int,
    options: ZipOptions,
    staging: Path,
    progress: Progress,
    dropped: Sequence[Path] = (),
) -> HandlerResult:
    """Steps 2 to 5 of the module docstring on an open zip (``dropped``: a video beside it)."""
    infos = archive.infolist()
    entries = [checks.entry_from_info(info, position) for position, info in enumerate(infos)]
    refusals, problems, layout = check_table(entries, archive_bytes, options.limits())
    if refusals:
        raise InputError(shown(refusals + problems))
    budget = ByteBudget(options.limits(), archive_bytes)
    try:
        unpacked = unpack_entries(archive, infos, layout, budget, staging, progress)
    except ZipLimitError as exc:
        raise InputError(shown([*problems, str(exc)])) from None
    selected, content_problems = check_contents(unpacked, layout, staging, options.existing_bundle)
    if problems or content_problems:
        raise InputError(shown(problems + content_problems))
    warnings = checks.missing_context(selected, layout.frames, options.context_frames)
    video_warnings, video_report = compare_with_video(
        unpacked.frames, options, staging, progress, dropped
    )
    written = [frame_filename(index) for index in unpacked.frames]
    written.append(write_selected_csv(staging, selected))
    # A second bundle for the folder must not clash with the first one's sheet.
    written += write_contact_sheet(staging, selected, dated=options.existing_bundle.exists())
    progress(1.0, "frames checked and unpacked")
    return HandlerResult(
        selected=selected,
        files=written,
        warnings=warnings + video_warnings,
        report={**bundle_report(entries, layout, unpacked, options), "video_check": video_report},
    )


def write_contact_sheet(staging: Path, selected: Sequence[int], dated: bool) -> list[str]:
    """The frames the lab picked as labelled thumbnails, as a video bundle has, so a person
    can judge them at a glance; the name written (none when nothing is selected)."""
    if not selected:
        return []
    step = -(-len(selected) // MAX_SHEET_TILES)
    tiles = {
        index: sheet_tile(read_png(staging / frame_filename(index)))
        for index in sorted(selected)[::step]
    }
    name = sheet_name(dated)
    write_png(staging / name, contact_sheet(tiles))
    return [name]


def compare_with_video(
    frames: Sequence[int],
    options: ZipOptions,
    staging: Path,
    progress: Progress,
    dropped: Sequence[Path] = (),
) -> tuple[list[str], Any]:
    """Step 5: warnings and the report's record of comparing the frames with their video:
    the one dropped beside the zip, else the one in ``<project>/videos/``.

    Raises:
        InputError: a frame is not the frame of its number in the video, naming each.
    """
    found = [*dropped, *(path for path in options.video_candidates if path.is_file())]
    if not found:
        where = options.video_folder or "the project's videos folder"
        return [
            f"the frames could not be checked against a video: no video named after the zip "
            f"beside it or in {where}; drop the recording with the zip, or put it there, to "
            "have every frame checked"
        ], "no video"
    video = found[0]
    progress(0.5, f"comparing the frames with {video.name}")
    check = check_against_video(
        video,
        frames,
        lambda index: read_png(staging / frame_filename(index)),
        lambda f: progress(0.5 + 0.45 * f, f"comparing the frames with {video.name}"),
    )
    if check.problems:
        raise InputError(shown(check.problems))
    return [lossy_warning(check)] if check.lossy else [], check.report()


def lossy_warning(check: VideoCheck) -> str:
    """One warning for the frames that match their video only after lossy handling."""
    worst_index, worst = min(check.lossy, key=lambda item: item[1])
    return (
        f"{len(check.lossy)} of {len(check.lossy) + check.identical} frames are not exact "
        f"copies of their frames in {check.video} but the same picture after lossy handling "
        f"(a JPEG round trip or a colour conversion); lowest PSNR {worst:.1f} dB "
        f"({frame_filename(worst_index)}); accepted. Export PNGs straight from the video "
        "to label exact frames"
    )


def check_table(
    entries: list[checks.Entry], archive_bytes: int, limits: Limits
) -> tuple[list[str], list[str], checks.Layout]:
    """Step 2: what refuses the zip before anything is unpacked, the other problems, the layout."""
    refusals = (
        checks.unsafe_path_problems(entries)
        + checks.link_problems(entries)
        + checks.declared_limit_problems(
            entries, archive_bytes, limits.max_bytes, limits.max_files, limits.max_ratio
        )
    )
    usable = [e for e in entries if not (e.is_symlink or is_unsafe(e) or checks.is_ignored(e))]
    layout = checks.lay_out(usable)
    problems = (
        checks.encryption_problems(usable) + checks.duplicate_problems(usable) + layout.problems
    )
    return refusals, problems, layout


def check_contents(
    unpacked: Unpacked, layout: checks.Layout, staging: Path, existing: Path
) -> tuple[list[int], list[str]]:
    """Step 4: the frames listed in the CSV, and every problem with what was unpacked."""
    problems = unpacked.problems + checks.size_problems(unpacked.sizes)
    problems += clash_problems(unpacked.frames, staging, existing)
    if unpacked.csv is None:
        return [], problems
    text, decode_problems = checks.decode_csv(unpacked.csv)
    selected, line_problems = checks.read_selected_frames(text, layout.frames)
    return selected, problems + (decode_problems or line_problems)


def bundle_report(
    entries: list[checks.Entry], layout: checks.Layout, unpacked: Unpacked, options: ZipOptions
) -> dict[str, Any]:
    """What the status records about how the bundle was made."""
    return {
        "method": METHOD,
        "frames": len(unpacked.frames),
        "frame_size": list(next(iter(unpacked.sizes.values()), (0, 0))),
        "folder": layout.folder + "/" if layout.folder else "(top of the zip)",
        "ignored": sum(1 for e in entries if checks.is_ignored(e) and not e.is_dir),
        "parameters": options.model_dump(
            mode="json", exclude={"existing_bundle", "video_candidates", "video_folder"}
        ),
    }


def is_unsafe(entry: checks.Entry) -> bool:
    return bool(checks.unsafe_path_problems([entry]))


def unpack_entries(
    archive: zipfile.ZipFile,
    infos: list[zipfile.ZipInfo],
    layout: checks.Layout,
    budget: ByteBudget,
    staging: Path,
    progress: Progress,
) -> Unpacked:
    """Unpack and decode every frame (and misnamed PNG), and read the CSV, under ``budget``.

    Raises:
        ZipLimitError: a limit was passed while unpacking; unpacking stopped there.
    """
    unchecked = staging / UNCHECKED_FOLDER
    unchecked.mkdir()
    jobs: list[tuple[checks.Entry, Path, int | None]] = [
        (entry, staging / frame_filename(index), index)
        for index, entry in sorted(layout.frames.items())
    ]
    jobs += [(entry, unchecked / f"{n}.png", None) for n, entry in enumerate(layout.misnamed_pngs)]
    unpacked = Unpacked()
    for done, (entry, target, index) in enumerate(jobs):
        progress(done / (len(jobs) + 1), f"checking {entry.name} ({done + 1} of {len(jobs)})")
        if entry.is_encrypted:
            continue
        try:
            head = copy_entry(archive, infos[entry.position], target, budget)
        except DamagedEntryError as exc:
            unpacked.problems.append(str(exc))
            continue
        size, problem = check_png(target, entry.name, head)
        if problem is not None:
            unpacked.problems.append(problem)
        elif size is not None and index is not None:
            unpacked.sizes[entry.name] = size
            unpacked.frames.append(index)
    shutil.rmtree(unchecked)
    if layout.csv is not None and not layout.csv.is_encrypted:
        try:
            unpacked.csv = read_entry(archive, infos[layout.csv.position], budget, MAX_CSV_BYTES)
        except DamagedEntryError as exc:
            unpacked.problems.append(str(exc))
    return unpacked


def clash_problems(frames: Sequence[int], staging: Path, existing: Path) -> list[str]:
    """Frames already in the bundle folder with other bytes: framewatch never replaces one."""
    problems = []
    for index in frames:
        name = frame_filename(index)
        old = existing / name
        if old.is_file() and not filecmp.cmp(staging / name, old, shallow=False):
            problems.append(
                f"{name} is already in labeled-data/{existing.name}/ with different content; "
                "framewatch never replaces a frame. Leave it out of the zip, or remove the old "
                "one by hand if it is wrong"
            )
    return problems


def shown(problems: list[str]) -> list[str]:
    """At most MAX_PROBLEMS_SHOWN problems, then how many more there were."""
    if len(problems) <= MAX_PROBLEMS_SHOWN:
        return problems
    more = len(problems) - MAX_PROBLEMS_SHOWN
    return [*problems[:MAX_PROBLEMS_SHOWN], f"and {more} more problems like these"]
