"""What is in an inbox: which names to ignore, and how files group into arrivals."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

# Names that copy tools, sync tools and editors use while a file is still being written.
IGNORED_PATTERNS = (".*", "*.part", "*.partial", "*.tmp", "*.crdownload", "~*")

# Per file: path, size, mtime_ns, ctime_ns, and whether it still has holes (see has_holes).
Signature = tuple[tuple[str, int, int, int, bool], ...]

# A file with fewer allocated bytes than this share of its size is taken for one being filled.
FILLED_SHARE = 0.9
SPARSE_MIN_BYTES = 4 << 20


def is_ignored(name: str) -> bool:
    """True for hidden and temporary names (``.x``, ``x.part``, ``~x``, rsync's ``.x.AbC123``)."""
    lowered = name.lower()
    return any(fnmatch.fnmatchcase(lowered, pattern) for pattern in IGNORED_PATTERNS)


@dataclass(frozen=True)
class Arrival:
    """One item in an inbox: the entries (files or one folder) that are claimed together.

    Attributes:
        kind: which inbox it is in (``videos``, ``zips``, ``inference``).
        name: the name its status and bundle go by (the main file's stem).
        entries: inbox paths claimed together; the first decides the claim.
    """

    kind: str
    name: str
    entries: tuple[Path, ...]

    @property
    def key(self) -> tuple[str, str]:
        """Tells apart two arrivals with one name (``a.mp4`` and ``a.avi``)."""
        return (self.kind, self.entries[0].name)


def visible_files(folder: Path) -> list[Path]:
    """Regular files directly in ``folder`` whose names are not ignored; none if it is gone."""
    return _visible_entries(folder, lambda entry: entry.is_file(follow_symlinks=False))


def visible_folders(folder: Path) -> list[Path]:
    """Folders directly in ``folder`` whose names are not ignored; none if it is gone."""
    return _visible_entries(folder, lambda entry: entry.is_dir(follow_symlinks=False))


def _visible_entries(folder: Path, wanted: Callable[[os.DirEntry[str]], bool]) -> list[Path]:
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return []
    return sorted(Path(e.path) for e in entries if not is_ignored(e.name) and wanted(e))


def signature(entries: Iterable[Path], covered: int = 0) -> Signature | None:
    """Size, mtime_ns, ctime_ns and holes of every file in ``entries`` (folders walked, links
    not followed); None if one is gone. Holes in the first ``covered`` bytes of the first
    file do not count (the rest of a copy, whose start is an earlier file: see rejoin.py).

    mtime_ns as well as size: Windows copies set the final size first and fill it in after.
    ctime_ns as well: a writer can set mtime back after each write (``os.utime``, ``touch
    -r``), but no writer can set the inode's change time back.
    """
    found: list[tuple[str, int, int, int, bool]] = []
    try:
        for entry in entries:
            paths = [entry] if not entry.is_dir() else sorted(p for p in entry.rglob("*"))
            for path in paths:
                stat = path.lstat()
                start = covered if not found else 0
                regular = path.is_file() and not path.is_symlink()
                holes = has_holes(path, stat, start) if regular else False
                found.append((str(path), stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, holes))
    except OSError:  # vanished, or unreadable for now: not settled, look again next scan
        return None
    return tuple(found)


def has_holes(path: Path, stat: os.stat_result, start: int = 0) -> bool:
    """True when the file is still partly unwritten: a copier that sized it first (truncate,
    fallocate, a Windows copy) and fills it in place may pause longer than ``settle_s``.

    Looks for a hole before the end (``SEEK_HOLE``; ext4 and XFS report fallocated, unwritten
    ranges as holes too), and, where the filesystem cannot say, at allocated blocks well below
    the size of a file of some megabytes.
    """
    written = stat.st_size - start
    if written <= 0:
        return False
    if written >= SPARSE_MIN_BYTES and stat.st_blocks * 512 < FILLED_SHARE * written:
        return True
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False  # unreadable: the handler will say so
    try:
        return os.lseek(fd, start, os.SEEK_HOLE) < stat.st_size
    except OSError:  # SEEK_HOLE not supported here: the block count above is all we have
        return False
    finally:
        os.close(fd)
