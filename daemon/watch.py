"""Watching: filesystem events only make the next inbox scan come sooner.

The periodic scan is the ground truth in every mode; an event that is lost (inotify never
sees what another host writes to an NFS or SMB share) only delays an arrival to that scan.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from daemon.inbox import is_ignored

NETWORK_FILESYSTEMS = frozenset(
    {"nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "afs", "ceph", "glusterfs", "lustre",
     "fuse.sshfs", "fuse.rclone", "fuse.glusterfs", "davfs", "fuse.davfs2"}
)


def filesystem_type(path: Path, mounts: Path = Path("/proc/mounts")) -> str | None:
    """The type of the filesystem ``path`` is on, from the mount table (None if unknown)."""
    try:
        lines = mounts.read_text().splitlines()
    except OSError:
        return None
    target = str(path.resolve())
    best, best_type = "", None
    for line in lines:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, best_type = point, fields[2]
    return best_type


def choose_mode(mode: str, folders: Iterable[Path]) -> str:
    """``native`` or ``polling``: ``auto`` polls when any folder is on a network filesystem."""
    if mode != "auto":
        return mode
    on_network = any(filesystem_type(folder) in NETWORK_FILESYSTEMS for folder in folders)
    return "polling" if on_network else "native"


class _WakeOnChange(FileSystemEventHandler):
    def __init__(self, wake: Callable[[], None]) -> None:
        self._wake = wake

    def on_any_event(self, event: FileSystemEvent) -> None:
        paths = [event.src_path, getattr(event, "dest_path", "")]
        if any(path and not is_ignored(Path(str(path)).name) for path in paths):
            self._wake()


def start_observer(
    folders: Iterable[Path], mode: str, poll_interval_s: float, wake: Callable[[], None]
) -> tuple[BaseObserver, str]:
    """Start a watchdog observer on ``folders``; return it and the mode it really uses.

    A native observer that cannot start (inotify's watch limit, say) falls back to polling.
    """
    folders = list(folders)
    chosen = choose_mode(mode, folders)
    handler = _WakeOnChange(wake)
    if chosen == "native":
        try:
            observer: BaseObserver = Observer()
            for folder in folders:
                observer.schedule(handler, str(folder), recursive=True)
            observer.start()
            return observer, chosen
        except OSError:
            chosen = "polling"
    observer = PollingObserver(timeout=poll_interval_s)
    for folder in folders:
        observer.schedule(handler, str(folder), recursive=True)
    observer.start()
    return observer, chosen
