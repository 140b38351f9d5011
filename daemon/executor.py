"""What the daemon needs of a worker pool, and the two ways a job ends without an answer.

Kept apart from pool.py and dask_pool.py so that both executors import it and neither imports
the other.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Protocol


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


class Executor(Protocol):
    """What the daemon needs of a worker pool."""

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]: ...

    def problem(self) -> str | None:
        """Why no job can be submitted now, in words for the status files; None when one can."""
        ...

    def terminate_all(self) -> None: ...
