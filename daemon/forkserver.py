"""The fork server workers are forked from: imports paid once, a fresh process per item.

multiprocessing's 'forkserver' start method: a server process, started on the first item,
imports ``daemon.zygote`` (NumPy, OpenCV, scikit-learn, the handlers) once and forks a child
for each item. A crash still ends only its own item, as with a fresh interpreter.

The server is started again when it died, and when the code it imported changed on disk (an
upgrade, files restored): a server started before the change would run old modules, or new
ones half-mixed with old. A replaced server is retired, not stopped: its children are killed
when it exits (they die with their parent), so it is kept until its last running item ends.
"""

from __future__ import annotations

import contextlib
import importlib.util
import multiprocessing
import multiprocessing.forkserver
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

PRELOAD = ["daemon.zygote"]
# Libraries the zygote imports whose files an upgrade replaces (daemon.zygote.MODULES).
LIBRARIES = ("numpy", "cv2", "sklearn", "scipy")
PACKAGES = ("daemon", "handlers")
CHECK_EVERY_S = 1.0


def code_paths() -> list[Path]:
    """Files whose change makes a running fork server stale: framewatch's modules, and each
    library's package folder and ``__init__`` (an upgrade replaces or renames them)."""
    paths: list[Path] = []
    for package in PACKAGES:
        spec = importlib.util.find_spec(package)
        for folder in (spec.submodule_search_locations or []) if spec else []:
            paths.extend(sorted(Path(folder).rglob("*.py")))
    for library in LIBRARIES:
        spec = importlib.util.find_spec(library)
        if spec is not None and spec.origin:
            paths += [Path(spec.origin), Path(spec.origin).parent]
    return paths


def fingerprint(paths: list[Path]) -> tuple[tuple[int, int, int], ...]:
    """Identity, size and modification time of each path ((0, 0, 0) for one that is gone)."""
    marks = []
    for path in paths:
        try:
            st = path.stat()
            marks.append((st.st_ino, st.st_size, st.st_mtime_ns))
        except OSError:
            marks.append((0, 0, 0))
    return tuple(marks)


class ForkServer:
    """Starts worker processes from the fork server, replacing the server when it is stale."""

    def __init__(self) -> None:
        self.context = multiprocessing.get_context("forkserver")
        self.context.set_forkserver_preload(PRELOAD)
        self._server: Any = multiprocessing.forkserver._forkserver  # the stdlib's one server
        self._lock = threading.Lock()
        self._paths: list[Path] | None = None
        self._marks: tuple[tuple[int, int, int], ...] = ()
        self._checked = 0.0
        self._running: dict[int, int] = {}  # server pid -> items running on it
        self._retired: dict[int, tuple[int, str | None]] = {}  # pid -> (alive fd, address)

    @contextlib.contextmanager
    def starting(self) -> Iterator[int]:
        """Hold the server while starting one process; yields the pid its parent will have.

        The caller starts the process inside the block (so the server is not replaced in
        between) and calls ``release`` with the same pid once the process has ended.
        """
        with self._lock:
            self._replace_if_stale()
            self._server.ensure_running()
            pid = int(self._server._forkserver_pid)
            self._running[pid] = self._running.get(pid, 0) + 1
            try:
                yield pid
            except BaseException:
                self._release_locked(pid)
                raise

    def release(self, pid: int) -> None:
        """One process of the server ``pid`` has ended; stop a retired server left idle."""
        with self._lock:
            self._release_locked(pid)

    def _release_locked(self, pid: int) -> None:
        left = self._running.get(pid, 1) - 1
        self._running[pid] = left
        if left <= 0:
            del self._running[pid]
            if pid in self._retired:
                self._stop_retired(pid)

    def _replace_if_stale(self) -> None:
        now = time.monotonic()
        if now - self._checked < CHECK_EVERY_S:
            return
        self._checked = now
        if self._paths is None:
            self._paths = code_paths()
        marks = fingerprint(self._paths)
        stale = bool(self._marks) and marks != self._marks
        self._marks = marks
        pid = self._server._forkserver_pid
        if stale and pid is not None:
            # The stdlib keeps one server; forget it here so that the next start makes another.
            server = self._server
            self._retired[pid] = (server._forkserver_alive_fd, server._forkserver_address)
            self._server._forkserver_pid = None
            self._server._forkserver_alive_fd = None
            self._server._forkserver_address = None
            if pid not in self._running:
                self._stop_retired(pid)
            self._paths = code_paths()  # a package replaced may have new modules
            self._marks = fingerprint(self._paths)

    def _stop_retired(self, pid: int) -> None:
        alive_fd, address = self._retired.pop(pid)
        os.close(alive_fd)  # the server exits when this end closes
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        if address and not address.startswith("\0"):
            with contextlib.suppress(OSError):
                Path(address).unlink()
