"""Checks of a frames zip that need only its table of contents and its CSV text.

Each check is a small pure function that returns every problem it finds, worded for the
person who made the zip, with the entry's name as it appears in the zip. Nothing here opens
a file; ``zip_unpack`` does the reading, ``zips`` puts the checks together.
"""

from __future__ import annotations

import re
import stat
import zipfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from handlers.bundle import SELECTED_CSV, frame_filename, frame_index

# Files that operating systems add by themselves; ignored wherever they are.
IGNORED_FOLDERS = frozenset({"__macosx"})
IGNORED_FILES = frozenset({".ds_store", "thumbs.db", "desktop.ini"})
APPLE_DOUBLE_PREFIX = "._"  # macOS resource forks beside each file (usually under __MACOSX/)
OTHER_IMAGE_TYPES = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".gif": "GIF",
    ".webp": "WebP",
}
FRAME_FORMAT_HINT = "img + the frame number in 8 digits + .png, e.g. img00000143.png"
MAX_FRAME_INDEX = 10**8 - 1
# Past this many bytes out of one entry its compression ratio is judged; tiny files of one
# repeated byte legitimately compress far better than any frame.
RATIO_GRACE_BYTES = 1 << 20
_DIGITS_BEFORE_PNG = re.compile(r"(\d+)\.png$", re.IGNORECASE)
_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class Entry:
    """One entry of the zip's table of contents, as declared (sizes may lie).

    Attributes:
        name: the name as written in the zip.
        parts: its folders and file name, backslashes read as folder separators.
        size: declared uncompressed size in bytes.
        compressed: declared compressed size in bytes.
        is_dir: a folder entry.
        is_symlink: a symbolic link (Unix mode in the external attributes).
        is_encrypted: needs a password to read.
        position: its place in the zip's table of contents (to find its ``ZipInfo`` again).
    """

    name: str
    parts: tuple[str, ...]
    size: int
    compressed: int
    is_dir: bool = False
    is_symlink: bool = False
    is_encrypted: bool = False
    position: int = -1

    @property
    def basename(self) -> str:
        return self.parts[-1] if self.parts else ""

    @property
    def folder(self) -> str:
        """The folder the entry is in ('' for the top of the zip)."""
        return "/".join(self.parts[:-1])


def entry_from_info(info: zipfile.ZipInfo, position: int = -1) -> Entry:
    """Our view of a ``ZipInfo``: path parts, declared sizes, link and encryption flags."""
    name = info.filename
    parts = tuple(part for part in name.replace("\\", "/").split("/") if part not in ("", "."))
    mode = info.external_attr >> 16
    return Entry(
        name=name,
        parts=parts,
        size=info.file_size,
        compressed=info.compress_size,
        is_dir=name.endswith(("/", "\\")),
        is_symlink=info.create_system == 3 and stat.S_ISLNK(mode),
        is_encrypted=bool(info.flag_bits & 0x1),
        position=position,
    )


def is_ignored(entry: Entry) -> bool:
    """True for folders and for what macOS and Windows add to a zip by themselves."""
    if entry.is_dir or not entry.parts:
        return True
    lowered = [part.lower() for part in entry.parts]
    return (
        any(part in IGNORED_FOLDERS for part in lowered[:-1])
        or lowered[-1] in IGNORED_FILES
        or lowered[-1].startswith(APPLE_DOUBLE_PREFIX)
    )


# ----- safety: entries refused whatever else is true --------------------------------------


def unsafe_path_problems(entries: Iterable[Entry]) -> list[str]:
    """Entries whose path would land outside the folder they are unpacked into (zip slip)."""
    problems = []
    for entry in entries:
        if entry.name.startswith(("/", "\\")) or _DRIVE.match(entry.name):
            problems.append(
                f"{entry.name} has an absolute path; refused. Expected paths inside the zip, "
                "like img00000143.png or a_folder/img00000143.png"
            )
        elif ".." in entry.parts:
            problems.append(
                f"{entry.name} points outside the zip's folder ('..'); refused as unsafe. "
                "Zip the frames themselves, not paths that climb out of a folder"
            )
    return problems


def link_problems(entries: Iterable[Entry]) -> list[str]:
    """Symbolic links: unpacked, they could point anywhere on the server."""
    return [
        f"{entry.name} is a symbolic link, not a file; refused. Zip the frames themselves"
        for entry in entries
        if entry.is_symlink
    ]


def encryption_problems(entries: Iterable[Entry]) -> list[str]:
    """Encrypted entries cannot be read without a password framewatch does not have."""
    return [
        f"{entry.name} is encrypted (password-protected); make the zip without a password"
        for entry in entries
        if entry.is_encrypted
    ]


def duplicate_problems(entries: Iterable[Entry]) -> list[str]:
    """The same path twice: which one was meant is anyone's guess."""
    counts = Counter("/".join(entry.parts) for entry in entries if not entry.is_dir)
    return [
        f"{name} is in the zip {count} times; expected it once"
        for name, count in counts.items()
        if count > 1
    ]


def declared_limit_problems(
    entries: Sequence[Entry], archive_bytes: int, max_bytes: int, max_files: int, max_ratio: float
) -> list[str]:
    """What the table of contents already shows to be over a limit (it may under-state)."""
    problems = []
    if len(entries) > max_files:
        problems.append(too_many_files_message(len(entries), max_files))
    total = sum(entry.size for entry in entries)
    if total > max_bytes:
        problems.append(too_big_message(total, max_bytes))
    for entry in entries:
        if entry.size > RATIO_GRACE_BYTES and entry.size > max_ratio * max(entry.compressed, 1):
            problems.append(ratio_message(entry.name, entry.size, entry.compressed, max_ratio))
    if total > RATIO_GRACE_BYTES and total > max_ratio * max(archive_bytes, 1):
        problems.append(ratio_message("the zip", total, archive_bytes, max_ratio))
    return problems


def too_many_files_message(count: int, max_files: int) -> str:
    return (
        f"the zip holds {count} entries, more than the limit of {max_files} "
        "([zips] max_files); refused. Split the frames over several zips"
    )


def too_big_message(total: int | None, max_bytes: int) -> str:
    """``total`` as declared by the zip, or None when the limit was passed while unpacking."""
    what = (
        f"says it unpacks to {total:,} bytes, more than"
        if total is not None
        else "unpacks to more than"
    )
    return (
        f"the zip {what} the limit of {max_bytes:,} bytes ([zips] max_uncompressed_bytes); "
        "refused. Split the frames over several zips"
    )


def ratio_message(name: str, unpacked: int, packed: int, max_ratio: float) -> str:
    return (
        f"{name} unpacks {unpacked:,} bytes from {packed:,} bytes, a compression ratio over "
        f"{max_ratio:g} ([zips] max_ratio), which marks a zip bomb; refused"
    )


# ----- layout: where the frames are ----------------------------------------------------------


@dataclass
class Layout:
    """Where the zip's files sit: the frames, the CSV, what else, and what is wrong with that.

    Attributes:
        frames: frame index -> entry, for every correctly named PNG.
        csv: the ``selected_frames.csv`` entry, if there is exactly one.
        misnamed_pngs: PNGs whose names do not follow ``img%08d.png`` (checked for decoding too).
        folder: the one folder level the files sit in ('' for the top of the zip).
        problems: every problem with names and places.
    """

    frames: dict[int, Entry] = field(default_factory=dict)
    csv: Entry | None = None
    misnamed_pngs: list[Entry] = field(default_factory=list)
    folder: str = ""
    problems: list[str] = field(default_factory=list)


def lay_out(files: Sequence[Entry]) -> Layout:
    """Sort the zip's files (ignored ones already removed) into frames, CSV and problems."""
    layout = Layout()
    layout.problems += depth_problems(files)
    shallow = [entry for entry in files if len(entry.parts) <= 2]
    layout.problems += folder_problems(shallow)
    folders = {entry.folder for entry in shallow}
    layout.folder = next(iter(folders)) if len(folders) == 1 else ""
    csvs = []
    for entry in shallow:
        index = frame_index(entry.basename)
        if index is not None:
            layout.frames.setdefault(index, entry)
        elif entry.basename == SELECTED_CSV:
            csvs.append(entry)
        else:
            layout.problems.append(name_problem(entry))
            if entry.basename.lower().endswith(".png"):
                layout.misnamed_pngs.append(entry)
    if len(csvs) == 1:
        layout.csv = csvs[0]
    elif not any(entry.basename.lower() == SELECTED_CSV for entry in files):
        layout.problems.append(
            f"the zip has no {SELECTED_CSV}; add one listing the frames to label, one file "
            "name a line, no header (img00000143.png)"
        )
    if not any(entry.basename.lower().endswith(".png") for entry in files):
        layout.problems.append(
            f"the zip holds no frames; expected PNG files named {FRAME_FORMAT_HINT}"
        )
    return layout


def depth_problems(files: Sequence[Entry]) -> list[str]:
    """Folders more than one level down: only zipping one folder of frames is expected."""
    deep = Counter(entry.folder for entry in files if len(entry.parts) > 2)
    return [
        f"{folder}/ is {folder.count('/') + 1} folders deep ({count} files, e.g. "
        f"{next(e.name for e in files if e.folder == folder)}); expected the frames at the top "
        "of the zip or in one folder (a_folder/img00000143.png)"
        for folder, count in sorted(deep.items())
    ]


def folder_problems(files: Sequence[Entry]) -> list[str]:
    """Files spread over several places (top of the zip, or folders) instead of one."""
    places = sorted({entry.folder for entry in files})
    if len(places) <= 1:
        return []
    shown = ", ".join(f"{place}/" if place else "the top of the zip" for place in places)
    return [
        f"the files are in {len(places)} places ({shown}); expected every frame and "
        f"{SELECTED_CSV} together, at the top of the zip or in one folder"
    ]


def name_problem(entry: Entry) -> str:
    """Why a file's name is not part of the format, and what it should have been."""
    basename = entry.basename
    suffix = "." + basename.rsplit(".", 1)[-1].lower() if "." in basename else ""
    if suffix in OTHER_IMAGE_TYPES:
        kind = OTHER_IMAGE_TYPES[suffix]
        return f"{entry.name} is a {kind} image; expected PNG frames named {FRAME_FORMAT_HINT}"
    if suffix == ".png":
        suggested = suggest_frame_name(basename)
        if suggested is not None:
            return f"{entry.name} should be named {suggested} (the frame number in 8 digits)"
        return f"{entry.name} is not named like a frame; expected {FRAME_FORMAT_HINT}"
    if basename.lower() == SELECTED_CSV:
        return f"{entry.name} should be named {SELECTED_CSV} (all lower case)"
    return (
        f"{entry.name} is not part of a frames zip; expected only PNG frames named "
        f"img%08d.png and {SELECTED_CSV}"
    )


def suggest_frame_name(name: str) -> str | None:
    """``img%08d.png`` for the last number in a PNG's name (``img143.png``), if it fits 8 digits."""
    match = _DIGITS_BEFORE_PNG.search(name)
    if match is None or int(match.group(1)) > MAX_FRAME_INDEX:
        return None
    return frame_filename(int(match.group(1)))


# ----- selected_frames.csv ---------------------------------------------------------------


def read_selected_frames(text: str, frames: Iterable[int]) -> tuple[list[int], list[str]]:
    """The frames listed in ``selected_frames.csv`` and every problem with its lines.

    Windows line endings, blank lines, spaces around a name and a missing final newline are
    all fine; a header, a path, a repeated line or a frame not in the zip are not.
    """
    in_zip = set(frames)
    selected: list[int] = []
    first_line: dict[int, int] = {}
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        index = frame_index(line)
        where = f"{SELECTED_CSV} line {number}"
        if index is None:
            problems.append(csv_line_problem(where, line))
        elif index in first_line:
            problems.append(f"{where} repeats {line} (already on line {first_line[index]})")
        elif index not in in_zip:
            first_line[index] = number
            problems.append(f"{where} names {line}, but the zip has no {line}")
        else:
            first_line[index] = number
            selected.append(index)
    if not first_line and not problems:
        problems.append(
            f"{SELECTED_CSV} lists no frames; expected one frame file name a line (img00000143.png)"
        )
    return sorted(selected), problems


def csv_line_problem(where: str, line: str) -> str:
    """What is wrong with a CSV line that is not a frame file name, and what would be right."""
    basename = line.replace("\\", "/").rsplit("/", 1)[-1]
    if basename != line and frame_index(basename) is not None:
        return f"{where}: expected just the file name {basename}, but got {line!r}"
    suggested = suggest_frame_name(basename)
    if suggested is not None:
        return f"{where}: {line!r} should be {suggested}"
    return (
        f"{where}: expected a frame file name like img00000143.png, but got {line!r} "
        f"({SELECTED_CSV} has no header)"
    )


def decode_csv(data: bytes) -> tuple[str, list[str]]:
    """The CSV's text (a UTF-8 byte-order mark from Windows tools dropped), or a problem."""
    try:
        return data.decode("utf-8-sig"), []
    except UnicodeDecodeError as exc:
        return "", [f"{SELECTED_CSV} is not plain text (UTF-8): {exc.reason} at byte {exc.start}"]


# ----- context frames ---------------------------------------------------------------------


def missing_context(selected: Iterable[int], frames: Iterable[int], context: int) -> list[str]:
    """A warning for each listed frame whose context frames are not all in the zip."""
    present = set(frames)
    warnings = []
    for index in sorted(selected):
        wanted = [n for n in range(index - context, index + context + 1) if n != index and n >= 0]
        missing = [frame_filename(n) for n in wanted if n not in present]
        if missing:
            warnings.append(
                f"{frame_filename(index)} comes without its context frames {', '.join(missing)}; "
                "they are recommended (not required) for context models"
            )
    return warnings


# ----- frames -------------------------------------------------------------------------------


def size_problems(sizes: dict[str, tuple[int, int]]) -> list[str]:
    """Frames whose width x height differs from that of most frames."""
    if len(set(sizes.values())) <= 1:
        return []
    (width, height), _ = Counter(sizes.values()).most_common(1)[0]
    return [
        f"{name} is {w}x{h} pixels, but the other frames are {width}x{height}; expected every "
        "frame the same size"
        for name, (w, h) in sorted(sizes.items())
        if (w, h) != (width, height)
    ]
