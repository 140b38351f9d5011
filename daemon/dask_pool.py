"""The worker pool on a Dask cluster, chosen by ``[workers] executor = "dask"``.

Tasks carry paths and plain values (``daemon.worker.Job``), never file contents: every worker
must see the share at the same path as the daemon, and ``run_job`` fails the item naming the
path and the worker when it does not.

Dask runs a task again when the worker running it is lost, so a job may run more than once.
Each attempt stages into a folder of its own and the daemon publishes the one whose result it
accepts. When the connection to the scheduler is lost, the client cancels every future in
flight: they end here in ``ClusterLost``, which the daemon answers by queueing the item again.
A monitor thread keeps a client connected (reconnecting after the scheduler comes back) and
keeps ``problem()`` up to date, so the daemon never blocks on the cluster.

A worker whose framewatch does not import (half replaced by an upgrade) is the daemon's
problem, as with local workers: the task is sent as pickled bytes that ``pickle.loads`` turns
into the ``run_job`` call on the worker, so that a failing import ends the task with its error
(rather than crashing the Dask worker while it reads the task, which Dask would blame on the
task after three tries). Such an error requeues the item uncounted and pauses new jobs.
"""

from __future__ import annotations

import contextlib
import pickle
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import distributed

from daemon.executor import (
    ClusterLost,
    StartFailures,
    WorkerCannotImport,
    WorkerDied,
    WorkerNotStarted,
)

CONNECT_TIMEOUT_S = 10.0
CHECK_EVERY_S = 1.0


class DaskExecutor:
    """Submits the daemon's jobs to the Dask scheduler at ``address``.

    The daemon limits how many jobs it submits at once (``max_workers``), and submits only
    while ``problem()`` is None.
    """

    def __init__(self, address: str, on_change: Callable[[], None] = lambda: None) -> None:
        self.address = address
        self._on_change = on_change
        self._client: distributed.Client | None = None
        self._remote: dict[Future[Any], distributed.Future] = {}
        self._lock = threading.Lock()
        self._problem: str | None = f"Connecting to the Dask scheduler at {address}."
        self._start = StartFailures()
        self._closing = threading.Event()
        self._monitor = threading.Thread(target=self._watch, name="dask-monitor", daemon=True)
        self._monitor.start()

    def problem(self) -> str | None:
        """Why no job can be submitted now (no scheduler, no workers, workers that cannot
        import framewatch); None when one can."""
        return self._problem or self._start.problem()

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        """Run ``fn(*args)`` on the cluster; a new task every time (``pure=False``).

        Raises:
            ClusterLost: there is no connected scheduler to take it.
        """
        client = self._client
        if client is None or client.status != "running":
            # Say so at once, before the monitor's next look, so the daemon stops submitting.
            self._problem = (
                self._problem or f"Lost contact with the Dask scheduler at {self.address}."
            )
            raise ClusterLost(self._problem)
        local: Future[Any] = Future()
        local.set_running_or_notify_cancel()
        try:
            call = pickle.dumps(_Call(fn, args))  # unpickled on the worker, see the docstring
            key = f"{getattr(fn, '__name__', 'job')}-{uuid.uuid4()}"
            remote = client.submit(pickle.loads, call, key=key, pure=False)
        except Exception as exc:  # the client closed under us: not the item's fault
            raise ClusterLost(f"{self._lost_message()} ({type(exc).__name__}: {exc})") from exc
        with self._lock:
            self._remote[local] = remote
        remote.add_done_callback(lambda done: self._settle(local, done))
        return local

    def _settle(self, local: Future[Any], remote: distributed.Future) -> None:
        """Pass a finished Dask future's outcome on to the daemon's future (a callback thread)."""
        with self._lock:
            self._remote.pop(local, None)
        try:
            if remote.status == "finished":
                local.set_result(remote.result())
                self._start.started()
            elif remote.status == "cancelled":
                local.set_exception(ClusterLost(self._lost_message()))
            else:
                error = translate_task_error(remote.exception())
                if isinstance(error, WorkerNotStarted):
                    error = self._start.failed(str(error))
                    self._on_change()  # the daemon stops submitting for the pause
                else:
                    self._start.started()  # it ran: the task's own error
                local.set_exception(error)
        except Exception as exc:  # noqa: BLE001 - the result could not be fetched: ask again
            lost = f"{self._lost_message()} ({type(exc).__name__}: {exc})"
            local.set_exception(ClusterLost(lost))
        finally:
            remote.release()

    def _lost_message(self) -> str:
        return f"Lost contact with the Dask scheduler at {self.address}."

    # ----- the connection ----------------------------------------------------------------

    def _watch(self) -> None:
        """Keep a client connected and ``problem()`` current until ``terminate_all``."""
        while not self._closing.is_set():
            problem = self._check()
            if problem != self._problem and not self._closing.is_set():
                self._problem = problem
                self._on_change()
            self._closing.wait(CHECK_EVERY_S)

    def _check(self) -> str | None:
        client = self._client
        if client is None or client.status in ("closing", "closed"):
            client = self._connect()
            if client is None:
                return (
                    f"The Dask scheduler at {self.address} cannot be reached; "
                    "waiting for it to come back."
                )
        if client.status != "running":
            return f"Lost contact with the Dask scheduler at {self.address}; reconnecting."
        try:
            workers = client.scheduler_info(n_workers=-1).get("workers", {})
        except Exception:  # noqa: BLE001 - any failure here means the scheduler is not answering
            return f"The Dask scheduler at {self.address} does not answer; reconnecting."
        if not workers:
            return f"The Dask scheduler at {self.address} has no workers; waiting for one."
        return None

    def _connect(self) -> distributed.Client | None:
        """A new client, or None when the scheduler cannot be reached now."""
        old, self._client = self._client, None
        if old is not None:
            close_quietly(old)
        try:
            client = distributed.Client(
                self.address, timeout=CONNECT_TIMEOUT_S, set_as_default=False
            )
        except Exception:  # noqa: BLE001 - OSError, TimeoutError: the next check tries again
            return None
        if self._closing.is_set():
            close_quietly(client)
            return None
        self._client = client
        return client

    def terminate_all(self) -> None:
        """Cancel what is in flight and let go of the cluster: the daemon is stopping.

        A task already running on a worker cannot be interrupted by Dask; it stops at its next
        progress report, once the daemon has put its item back (see ``progress_writer``).
        """
        self._closing.set()
        with self._lock:
            remote = list(self._remote.values())
        client = self._client
        if client is not None:
            if remote and client.status == "running":
                with contextlib.suppress(Exception):  # stopping anyway
                    client.cancel(remote, force=True)
            close_quietly(client)
        self._monitor.join(timeout=CONNECT_TIMEOUT_S + CHECK_EVERY_S)

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        self.terminate_all()


class _Call:
    """``fn(*args)``, made when unpickled: the call ``pickle.loads`` performs on a worker."""

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.fn, self.args = fn, args

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return (self.fn, self.args)


def translate_task_error(exc: BaseException | None) -> BaseException:
    """A task's error as the daemon knows it: a task whose workers all died is ``WorkerDied``;
    one whose worker could not import framewatch (reading the task, or the handler) is
    ``WorkerNotStarted``. run_job raises no ImportError or SyntaxError of its own: it turns the
    handler's into HandlerCrash, so these come from loading framewatch itself."""
    if isinstance(exc, distributed.KilledWorker):
        return WorkerDied(f"every Dask worker that ran it died ({exc})")
    if isinstance(exc, (ImportError, SyntaxError, pickle.UnpicklingError, WorkerCannotImport)) or (
        isinstance(exc, AttributeError) and "Can't get attribute" in str(exc)
    ):
        return WorkerNotStarted(
            f"a Dask worker cannot load framewatch: {type(exc).__name__}: {exc}"
        )
    return exc if exc is not None else WorkerDied("the Dask task ended without a result")


def close_quietly(client: distributed.Client) -> None:
    """Close a client; one whose scheduler is gone may fail to, which changes nothing here."""
    with contextlib.suppress(Exception):
        client.close(timeout=2)
