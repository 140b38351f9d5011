"""Writes that readers never see half done: write a hidden temporary file, then rename it."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_text_atomic(
    path: Path, text: str, make_parents: bool = True, durable: bool = True
) -> None:
    """Replace ``path`` with ``text`` in one rename, so a reader sees the old or the new file.

    ``durable=False`` skips the fsync, for files that are rewritten soon anyway (an arriving
    status): a crash may lose the new content, never leave a partial file.
    """
    if make_parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    # A name near the file-name limit (255 bytes) must not make the temporary name too long.
    short = path.name.encode("utf-8", "surrogateescape")[:120].decode("utf-8", "ignore")
    fd, tmp = tempfile.mkstemp(prefix=f".{short}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            # mkstemp makes 0600; others (rig users, a labeler's account) must read it as
            # they would any file the daemon writes.
            os.fchmod(handle.fileno(), 0o666 & ~current_umask())
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def current_umask() -> int:
    """This process's umask, read without changing it (``os.umask`` would, for all threads)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # no /proc: the only other way, briefly racy
    os.umask(mask)
    return mask


def write_json_atomic(
    path: Path, data: Any, make_parents: bool = True, durable: bool = True
) -> None:
    """``write_text_atomic`` for a JSON document."""
    text = json.dumps(data, indent=2, sort_keys=False, default=str) + "\n"
    write_text_atomic(path, text, make_parents, durable)


def read_json(path: Path) -> Any | None:
    """A JSON file's content, or None when it is missing or unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
