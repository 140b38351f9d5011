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
import time
from collections.abc import Callable
from concurrent.futures import Future
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from daemon.executor import Executor, WorkerDied, WorkerNotStarted
from daemon.forkserver import ForkServer

if TYPE_CHECKING:
    from daemon.config import Workers

_SPAWN = multiprocessing.get_context("spawn")
STARTED = "started"  # a worker's first message: it runs; a death after this is the job's
START_PAUSE_S = (5.0, 60.0)  # after workers fail to start: first pause, longest pause


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
        self._start_failure = ""  # why the last worker could not start ("" once one did)
        self._pause = 0.0
        self._paused_until = 0.0

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
            future.set_exception(self._not_started(f"{type(exc).__name__}: {exc}"))
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
                self._started()
                answer = receiver.recv()
        except (EOFError, OSError):
            answer = None
        process.join()
        with self._lock:
            self._processes.discard(process)
        if answer is None and not started:
            future.set_exception(self._not_started(_describe_exit(process.exitcode)))
        elif answer is None:
            future.set_exception(WorkerDied(_describe_exit(process.exitcode)))
        elif answer[0]:
            future.set_result(answer[1])
        else:
            future.set_exception(answer[1])

    def _not_started(self, reason: str) -> WorkerNotStarted:
        """Note that a worker could not start; pause new jobs, longer each time in a row."""
        with self._lock:
            first, longest = START_PAUSE_S
            self._pause = min(self._pause * 2, longest) if self._pause else first
            self._paused_until = time.monotonic() + self._pause
            self._start_failure = reason
        return WorkerNotStarted(f"A worker process could not start ({reason}).")

    def _started(self) -> None:
        with self._lock:
            self._pause, self._start_failure = 0.0, ""

    def problem(self) -> str | None:
        """Why no job is taken now: workers failed to start a moment ago (see the log)."""
        with self._lock:
            left = self._paused_until - time.monotonic()
            if left <= 0 or not self._start_failure:
                return None
            return (
                f"Workers cannot start ({self._start_failure}; the daemon's stderr in the log "
                "says why, e.g. framewatch half replaced by an upgrade). This is framewatch's "
                f"problem, not the files'; nothing is taken until a worker starts, tried again "
                f"in {left:.0f} s."
            )

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
