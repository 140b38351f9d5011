"""What is in an inbox: which names to ignore, and how files group into arrivals."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

# Names that copy tools, sync tools and editors use while a file is still being written.
IGNORED_PATTERNS = (".*", "*.part", "*.partial", "*.tmp", "*.crdownload", "~*")

Signature = tuple[tuple[str, int, int], ...]


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


def signature(entries: Iterable[Path]) -> Signature | None:
    """Size and mtime_ns of every file in ``entries`` (folders walked); None if one is gone.

    mtime_ns as well as size: Windows copies set the final size first and fill it in after.
    """
    found: list[tuple[str, int, int]] = []
    try:
        for entry in entries:
            paths = [entry] if not entry.is_dir() else sorted(p for p in entry.rglob("*"))
            for path in paths:
                stat = path.stat()
                found.append((str(path), stat.st_size, stat.st_mtime_ns))
    except OSError:  # vanished, or unreadable for now: not settled, look again next scan
        return None
    return tuple(found)
