"""What the daemon needs of a worker pool, and the two ways a job ends without an answer.

Kept apart from pool.py and dask_pool.py so that both executors import it and neither imports
the other.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Protocol

START_PAUSE_S = (5.0, 60.0)  # after workers fail to start: first pause, longest pause


class WorkerDied(Exception):
    """The worker process ended without an answer (killed, or crashed in native code)."""


class ClusterLost(Exception):
    """The executor cannot run the job now (a cluster's scheduler is gone); submit it again later.

    Not the item's fault: the daemon puts the item back in its queue, without counting it as
    a failed attempt.
    """


class WorkerNotStarted(ClusterLost):
    """A worker process died before it could run anything (the package half replaced by an
    upgrade, an interpreter it cannot read): the daemon's fault, never the file's. The item
    goes back to the queue uncounted, and the executor reports a problem for a while."""


class WorkerCannotImport(Exception):
    """The worker ran, but the handler's module (framewatch's own code) failed to import: the
    package half replaced by an upgrade. Raised before any handler ran, so, like
    WorkerNotStarted, the daemon's problem and never the file's."""


class Executor(Protocol):
    """What the daemon needs of a worker pool."""

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]: ...

    def problem(self) -> str | None:
        """Why no job can be submitted now, in words for the status files; None when one can."""
        ...

    def terminate_all(self) -> None: ...


class StartFailures:
    """Workers that could not start a moment ago: no job is taken for a pause that doubles
    with each failure in a row (the item would only fail to start again), until one starts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reason = ""  # why the last worker could not start ("" once one did)
        self._pause = 0.0
        self._paused_until = 0.0

    def failed(self, reason: str) -> WorkerNotStarted:
        """Note that a worker could not start; the exception to end its job with."""
        with self._lock:
            first, longest = START_PAUSE_S
            self._pause = min(self._pause * 2, longest) if self._pause else first
            self._paused_until = time.monotonic() + self._pause
            self._reason = reason
        return WorkerNotStarted(f"A worker process could not start ({reason}).")

    def started(self) -> None:
        with self._lock:
            self._pause, self._reason = 0.0, ""

    def problem(self) -> str | None:
        """Why no job is taken now, while the pause lasts (see the log)."""
        with self._lock:
            left = self._paused_until - time.monotonic()
            if left <= 0 or not self._reason:
                return None
            return (
                f"Workers cannot start ({self._reason}; the daemon's stderr or the workers' "
                "logs say why, e.g. framewatch half replaced by an upgrade). This is "
                "framewatch's problem, not the files'; nothing is taken until a worker starts, "
                f"tried again in {left:.0f} s."
            )
