"""The worker pool: each job in a process of its own, behind the concurrent.futures interface.

A process per job rather than a ProcessPoolExecutor: when a decoder crashes on a damaged
video and takes its process with it, a shared pool breaks for every job in it, while here
only that job fails. The process is forked from a fork server that imported the libraries
once (forkserver.py); ``[workers] start_method = "spawn"`` starts a fresh interpreter per
job instead, paying the imports (seconds) every time.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from daemon.executor import Executor, StartFailures, WorkerCannotImport, WorkerDied
from daemon.forkserver import ForkServer

if TYPE_CHECKING:
    from daemon.config import Workers

_SPAWN = multiprocessing.get_context("spawn")
STARTED = "started"  # a worker's first message: it runs; a death after this is the job's


def make_executor(workers: Workers, on_change: Callable[[], None]) -> Executor:
    """The executor ``[workers]`` asks for; ``on_change`` is called when ``problem()`` changes."""
    if workers.executor == "dask":
        from daemon.dask_pool import DaskExecutor  # only with the dask extra installed

        return DaskExecutor(workers.scheduler_address, on_change)
    return ProcessPerJobExecutor(workers.start_method)


def _die_with_parent(parent: int) -> None:
    """Make sure this worker does not outlive the daemon, so no orphan works on after kill -9."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGKILL))  # PDEATHSIG
    # The daemon may have died while this process was still importing, before prctl.
    if os.getppid() != parent:
        os._exit(1)


def _child_main(
    conn: Connection, fn: Callable[..., Any], args: tuple[Any, ...], parent: int
) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the daemon to handle
    _die_with_parent(parent)
    conn.send(STARTED)
    try:
        conn.send((True, fn(*args)))
    except BaseException as exc:  # noqa: BLE001 - every failure must reach the daemon
        try:
            conn.send((False, exc))
        except Exception:  # noqa: BLE001 - an exception that does not pickle
            conn.send((False, RuntimeError(f"{type(exc).__name__}: {exc}")))
    finally:
        conn.close()


class ProcessPerJobExecutor:
    """A minimal executor; the daemon limits how many jobs it submits at once."""

    def __init__(self, start_method: str = "forkserver") -> None:
        self._forkserver = ForkServer() if start_method == "forkserver" else None
        self._processes: set[Any] = set()
        self._lock = threading.Lock()
        self._start = StartFailures()

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        future: Future[Any] = Future()
        future.set_running_or_notify_cancel()
        threading.Thread(target=self._run, args=(future, fn, args), daemon=True).start()
        return future

    def _run(self, future: Future[Any], fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        server = self._forkserver
        receiver, sender = _SPAWN.Pipe(duplex=False)
        process: Any
        try:
            if server is None:
                process = _SPAWN.Process(target=_child_main, args=(sender, fn, args, os.getpid()))
                process.start()
            else:
                with server.starting() as parent:  # the fork server: the child's parent
                    process = server.context.Process(
                        target=_child_main, args=(sender, fn, args, parent)
                    )
                    process.start()
        except Exception as exc:  # noqa: BLE001 - no worker: the daemon's problem
            receiver.close()
            sender.close()
            future.set_exception(self._start.failed(f"{type(exc).__name__}: {exc}"))
            return
        try:
            self._wait(future, process, receiver, sender)
        finally:
            if server is not None:
                server.release(parent)

    def _wait(
        self, future: Future[Any], process: Any, receiver: Connection, sender: Connection
    ) -> None:
        """Relay the started process's answer to ``future``, telling apart a process that
        never started (the daemon's problem) from one that died on its job."""
        sender.close()
        with self._lock:
            self._processes.add(process)
        started = False
        try:
            answer = receiver.recv()
            started = answer == STARTED
            if started:
                self._start.started()
                answer = receiver.recv()
        except (EOFError, OSError):
            answer = None
        process.join()
        with self._lock:
            self._processes.discard(process)
        if answer is None and not started:
            future.set_exception(self._start.failed(_describe_exit(process.exitcode)))
        elif answer is None:
            future.set_exception(WorkerDied(_describe_exit(process.exitcode)))
        elif answer[0]:
            future.set_result(answer[1])
        elif isinstance(answer[1], WorkerCannotImport):  # before any handler ran
            future.set_exception(self._start.failed(str(answer[1])))
        else:
            future.set_exception(answer[1])

    def problem(self) -> str | None:
        """Why no job is taken now: workers failed to start a moment ago (see the log)."""
        return self._start.problem()

    def terminate_all(self) -> None:
        """Stop every running worker (on shutdown, after the grace period)."""
        with self._lock:
            processes = list(self._processes)
        for process in processes:
            process.terminate()

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        self.terminate_all()


def _describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"the worker process was killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"the worker process was killed by signal {-code}"
    return f"the worker process exited with status {code} without a result"
