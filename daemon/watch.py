"""Watching: filesystem events only make the next inbox scan come sooner.

The periodic scan is the ground truth in every mode; an event that is lost (inotify never
sees what another host writes to an NFS or SMB share) only delays an arrival to that scan.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from daemon.inbox import is_ignored

NETWORK_FILESYSTEMS = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "9p",
        "afs",
        "ceph",
        "glusterfs",
        "lustre",
        "fuse.sshfs",
        "fuse.rclone",
        "fuse.glusterfs",
        "davfs",
        "fuse.davfs2",
    }
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


def folder_identity(folder: Path) -> tuple[int, int] | None:
    """(device, inode) of a folder, or None when it is not there (a share that dropped away)."""
    try:
        stat = folder.stat()
    except OSError:
        return None
    return (stat.st_dev, stat.st_ino) if folder.is_dir() else None


class WatchSupervisor:
    """Keeps an observer on the inboxes through share outages, without a restart.

    watchdog's emitters stop for good, and silently, when a watched folder errors (the polling
    emitter on a folder that vanished; inotify when it is moved or deleted). ``check``, called
    from the loop, notices a dead observer or emitter and a folder that is gone or was replaced,
    logs it, and starts a new observer once every folder is back, retrying with a growing
    pause. The inbox scans go on meanwhile; they are the ground truth anyway.
    """

    CHECK_EVERY_S = 2.0
    RETRY_MAX_S = 30.0

    def __init__(
        self,
        folders: Iterable[Path],
        mode: str,
        poll_interval_s: float,
        wake: Callable[[], None],
        log: Any,
    ) -> None:
        self.folders = list(folders)
        self.mode = mode
        self.poll_interval_s = poll_interval_s
        self.wake = wake
        self.log = log
        self.observer: BaseObserver | None = None
        self.mode_used = ""
        self.identities: dict[Path, tuple[int, int] | None] = {}
        self.lost_since: float | None = None
        self.next_check = 0.0
        self.retry_pause = 1.0
        self.check_every = min(self.CHECK_EVERY_S, poll_interval_s)

    def start(self) -> str:
        """Start watching; the mode really used (``native`` or ``polling``)."""
        self.identities = {folder: folder_identity(folder) for folder in self.folders}
        self.observer, self.mode_used = start_observer(
            self.folders, self.mode, self.poll_interval_s, self.wake
        )
        return self.mode_used

    def problem(self) -> str | None:
        """What is wrong with the watch now, or None when every folder is watched."""
        for folder in self.folders:
            identity = folder_identity(folder)
            if identity is None:
                return f"{folder} is not reachable"
            if identity != self.identities.get(folder):
                return f"{folder} was replaced (moved away and back, or remounted)"
        if self.observer is None or not self.observer.is_alive():
            return "the observer stopped"
        if any(not emitter.is_alive() for emitter in list(self.observer.emitters)):
            return "an observer stopped watching"
        return None

    def check(self, now: float) -> None:
        """Notice a lost watch, and restart it once the folders are back."""
        if now < self.next_check:
            return
        if self.lost_since is None:
            self.next_check = now + self.check_every
            problem = self.problem()
            if problem is None:
                return
            self.lost_since = now
            self.retry_pause = 1.0
            self.log.warning("watch lost", problem=problem)
            self.stop()
        self.try_resume(now)

    def try_resume(self, now: float) -> None:
        missing = [str(folder) for folder in self.folders if folder_identity(folder) is None]
        if not missing:
            try:
                self.start()
            except OSError as exc:
                missing = [f"observer: {exc}"]
        if missing:
            self.next_check = now + self.retry_pause
            self.retry_pause = min(self.retry_pause * 2, self.RETRY_MAX_S)
            self.log.info("watch still lost", missing=missing, retry_in_s=self.next_check - now)
            return
        assert self.lost_since is not None
        self.log.info("watch resumed", mode=self.mode_used, after_s=round(now - self.lost_since, 1))
        self.lost_since = None
        self.next_check = now + self.check_every
        self.wake()  # rescan now: what arrived during the outage is there already

    def stop(self) -> None:
        if self.observer is None:
            return
        try:
            self.observer.stop()
            self.observer.join(timeout=5)
        except Exception as exc:  # noqa: BLE001 - a broken observer must not stop the loop
            self.log.warning("observer did not stop cleanly", error=str(exc))
        self.observer = None
