"""A Dask cluster on loopback for tests and benchmarks: a scheduler and workers as processes.

Each is a separate process (``python -m distributed.cli.dask_scheduler`` / ``dask_worker``)
in its own process group, so a test can kill one the way a machine dies, and restart it.
Addresses are 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.harness import REPO


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class LoopbackCluster:
    """A Dask scheduler and its workers on 127.0.0.1, each a process group of its own."""

    folder: Path
    port: int = field(default_factory=free_port)
    scheduler: subprocess.Popen[bytes] | None = None
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _starts: int = 0

    @property
    def address(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FRAMEWATCH_")}
        env["PYTHONPATH"] = str(REPO)
        return env

    def _spawn(self, name: str, command: Sequence[str]) -> subprocess.Popen[bytes]:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._starts += 1
        log = (self.folder / f"{self._starts:02d}-{name}.log").open("ab")
        return subprocess.Popen(
            list(command),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.environment(),
            cwd=self.folder,
            start_new_session=True,
        )

    def start_scheduler(self) -> LoopbackCluster:
        self.scheduler = self._spawn(
            "scheduler",
            [
                sys.executable,
                "-m",
                "distributed.cli.dask_scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--no-dashboard",
            ],
        )
        self.scheduler_log = Path(self.folder / f"{self._starts:02d}-scheduler.log")
        return self

    def start_worker(self, name: str, wrapper: Sequence[str] = ()) -> subprocess.Popen[bytes]:
        """A worker (a nanny and one single-threaded worker process); ``wrapper`` prefixes it."""
        command = [
            sys.executable,
            "-m",
            "distributed.cli.dask_worker",
            self.address,
            "--nworkers",
            "1",
            "--nthreads",
            "1",
            "--host",
            "127.0.0.1",
            "--no-dashboard",
            "--name",
            name,
            "--local-directory",
            str(self.folder / "space" / name),
        ]
        process = self._spawn(name, [*wrapper, *command])
        self.workers.append(process)
        return process

    def start(self, workers: int = 2, timeout: float = 90) -> LoopbackCluster:
        """A scheduler and ``workers`` workers, waited for until all registered."""
        self.start_scheduler()
        for number in range(workers):
            self.start_worker(f"w{number + 1}")
        self.wait_for_workers(workers, timeout)
        return self

    def registered_workers(self) -> int:
        """How many workers the current scheduler has seen register (from its log)."""
        try:
            return self.scheduler_log.read_text(errors="replace").count("Register worker")
        except OSError:
            return 0

    def wait_for_workers(self, count: int, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.registered_workers() >= count:
                return
            time.sleep(0.2)
        raise AssertionError(
            f"{count} Dask workers did not register within {timeout} s; logs:\n{self.logs()}"
        )

    def stop_scheduler(self) -> None:
        """Kill the scheduler as a crashed machine would go (SIGKILL, no goodbye)."""
        if self.scheduler is not None:
            kill_group(self.scheduler)
            self.scheduler = None

    def stop_workers(self) -> None:
        for process in self.workers:
            kill_group(process)
        self.workers.clear()

    def stop(self) -> None:
        self.stop_workers()
        self.stop_scheduler()

    def logs(self) -> str:
        return "\n".join(
            f"== {path.name}\n{path.read_text(errors='replace')[-2000:]}"
            for path in sorted(self.folder.glob("*.log"))
        )

    def __enter__(self) -> LoopbackCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL a process and everything it started (a nanny's worker process too)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
