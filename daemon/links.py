"""Links and other odd entries in an inbox: refused, kept, and said so.

framewatch never reads through a symbolic link in an inbox, loose or inside a folder drop: a
link can point anywhere the daemon's account may read (another lab's data, a secret), and
what a handler reads ends up in bundles and status files. FIFOs, sockets and devices are no
recordings either (and a FIFO blocks whoever opens it). They are left where they are, and a
status names them and says what to do.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from daemon.inbox import is_ignored
from handlers.framelists import FRAMELIST_SUFFIXES
from handlers.frames import VIDEO_SUFFIXES
from handlers.outcome import InputError
from handlers.zips import ZIP_SUFFIXES

# What each single-file inbox takes: a folder named like one (``a.mp4/``) is a mistake.
FILE_SUFFIXES = {
    "videos": VIDEO_SUFFIXES,
    "zips": ZIP_SUFFIXES,
    "framelists": FRAMELIST_SUFFIXES,
}

MAX_NAMED = 5  # links named in one message; the rest are counted


def describe(path: Path) -> str | None:
    """What is wrong with ``path`` as an input, or None for a regular file or a folder."""
    try:
        mode = path.lstat().st_mode
    except OSError:
        return None  # gone: nothing to say
    if stat.S_ISLNK(mode):
        try:
            target = str(path.readlink())
        except OSError:
            target = "?"
        dangling = "" if path.exists() else ", which points to nothing"
        return f"{path.name} is a symbolic link (to {target}{dangling})"
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    what = "a named pipe (FIFO)" if stat.S_ISFIFO(mode) else "not a regular file"
    return f"{path.name} is {what}"


def odd_inside(entries: Iterable[Path]) -> list[tuple[Path, str]]:
    """Each odd entry among ``entries`` and inside the folders among them (not followed)."""
    found = []
    for entry in entries:
        problem = describe(entry)
        if problem is not None:
            found.append((entry, problem))
        elif entry.is_dir() and not entry.is_symlink():
            for inner in sorted(entry.rglob("*")):
                problem = describe(inner)
                if problem is not None:
                    relative = inner.relative_to(entry.parent)
                    found.append((inner, problem.replace(inner.name, str(relative), 1)))
    return found


def refuse_odd(files: Iterable[Path]) -> None:
    """Raise InputError naming the links and odd entries in a claimed item, if any.

    Raises:
        InputError: naming up to MAX_NAMED of them, and what to do.
    """
    found = odd_inside(files)
    if found:
        raise InputError([refusal([problem for _, problem in found])])


def refusal(problems: list[str]) -> str:
    named = "; ".join(problems[:MAX_NAMED])
    more = f" (and {len(problems) - MAX_NAMED} more)" if len(problems) > MAX_NAMED else ""
    return (
        f"Refused: {named}{more}. framewatch does not follow links or read anything but "
        "regular files in an inbox, so nothing was read; the entries were kept. Copy the "
        "files themselves into the inbox"
    )


def inbox_odd(inbox: Path, kind: str = "") -> dict[str, list[str]]:
    """Status name -> problems, for the odd entries at the top of ``inbox`` and inside its
    folders (a name's stem, or the folder's name), and folders named like the files the
    ``kind`` takes."""
    try:
        entries = sorted(Path(e.path) for e in os.scandir(inbox) if not is_ignored(e.name))
    except OSError:
        return {}
    by_name: dict[str, list[str]] = {}
    for entry in entries:
        problems = [problem for _, problem in odd_inside([entry])]
        if entry.suffix.lower() in FILE_SUFFIXES.get(kind, ()) and folder_named_like_file(entry):
            by_name.setdefault(entry.stem, []).append(
                f"{entry.name} is a folder, not a {entry.suffix} file; this inbox takes the "
                "files themselves, so it was left as it is. Move the file out of the folder "
                "into the inbox"
            )
            continue
        if problems:
            folder = entry.is_dir() and not entry.is_symlink()
            name = entry.name if folder else Path(entry.name).stem
            by_name.setdefault(name, []).extend(problems)
    return by_name


def folder_named_like_file(entry: Path) -> bool:
    return entry.is_dir() and not entry.is_symlink()


def refuse_unreadable(files: Iterable[Path]) -> None:
    """Raise PermissionError (a passing error: the item waits and is tried again) naming a
    claimed file the daemon's account cannot read, rather than fail it as no video.

    Raises:
        PermissionError: for the first file (or file inside a folder drop) not readable.
    """
    for path in files:
        inner = sorted(path.rglob("*")) if path.is_dir() and not path.is_symlink() else []
        for entry in [path, *inner]:
            if entry.is_symlink() or os.access(entry, os.R_OK):
                continue
            try:
                mode = f"{stat.S_IMODE(entry.stat().st_mode):03o}"
            except OSError:
                mode = "?"
            what = (
                f"{entry.name} cannot be read by the account framewatch runs as (uid "
                f"{os.geteuid()}; its mode is {mode}): give it read permission, for example "
                f"chmod a+r {entry.name}"
            )
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), what)
