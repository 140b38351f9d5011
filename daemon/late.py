"""A sidecar that comes after its video was taken.

``mouse.json`` dropped a moment after ``mouse.mp4`` was claimed is not part of that item, and
left in the inbox it would be applied to the next, unrelated ``mouse.mp4``. So a lone sidecar
whose stem names a file taken in the last hour is moved to ``<archive>/<kind>/late-sidecars/``
(kept, not applied) and gets a status of its own saying so and what to do.
"""

from __future__ import annotations

import time
from pathlib import Path

from daemon.inbox import Arrival, visible_files
from daemon.kinds import SIDECAR_SUFFIX
from daemon.publish import move_without_replacing
from daemon.rejoin import Earlier, EarlierCopies

# Only a sidecar that appeared this soon after the take is late for it; one that comes later
# is more likely the first part of the next drop of that stem (sidecar first, then video).
LATE_S = 300.0


def lone_sidecars(inbox: Path, found: list[Arrival], settle_s: float) -> list[Path]:
    """Sidecars in ``inbox`` that belong to no arrival and have been still for ``settle_s``."""
    claimed = {entry for arrival in found for entry in arrival.entries}
    now = time.time()
    lone = []
    for path in visible_files(inbox):
        if path.suffix.lower() != SIDECAR_SUFFIX or path in claimed:
            continue
        try:
            info = path.lstat()
        except OSError:
            continue
        if now - max(info.st_mtime, info.st_ctime) >= settle_s:
            lone.append(path)
    return lone


def taken_before(earlier: EarlierCopies, kind: str, sidecar: Path) -> Earlier | None:
    """The file of ``kind`` with the sidecar's stem taken at most LATE_S before the sidecar
    appeared (its inode change time), if any."""
    try:
        appeared = sidecar.lstat().st_ctime
    except OSError:
        return None
    found = [
        copy
        for (k, name), copy in earlier.items()
        if k == kind and Path(name).stem == sidecar.stem and 0 <= appeared - copy.wall <= LATE_S
    ]
    return max(found, key=lambda copy: copy.wall) if found else None


def set_aside(sidecar: Path, video_name: str, taken_at: str, archive: Path) -> tuple[Path, str]:
    """Move a late sidecar out of the inbox; where it went, and the status message."""
    kept = move_without_replacing(sidecar, archive / "late-sidecars")
    message = (
        f"{sidecar.name} came after {video_name} was taken (at {taken_at}), so it was not "
        f"applied to it. It was moved to {kept}, so that it is not applied to a later, "
        f"unrelated {video_name}. To use these options, put the sidecar back in the inbox "
        "and then drop the video again (a sidecar must come first or together with its video)."
    )
    return kept, message
