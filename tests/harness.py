"""Drive a real framewatch daemon: a config on a temporary root, the process, its files.

Every test that is about the daemon's behaviour goes through ``Framewatch``: it runs
``python -m daemon`` exactly as a user's ``framewatch`` would, and reads what it wrote.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"

FAST_SETTINGS = """
root = "{root}"
[watch]
mode = "polling"
poll_interval_s = 0.3
settle_s = {settle_s}
[workers]
max_workers = 2
stop_grace_s = {stop_grace_s}
"""


def shared_file(relative: str) -> Path:
    """A file of ../shared/data, or skip the test saying what is missing."""
    import pytest

    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"{path} is absent (a checkout without ../shared/data)")
    return path


@dataclass
class Framewatch:
    """A daemon's root, config and (once started) process, for one test."""

    root: Path
    settle_s: float = 0.6
    stop_grace_s: float = 5.0
    extra_config: str = ""
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.config = self.root / "framewatch.toml"
        self.write_config()
        self.log = self.root / "daemon.log"

    def write_config(self) -> None:
        text = FAST_SETTINGS.format(
            root=self.root, settle_s=self.settle_s, stop_grace_s=self.stop_grace_s
        )
        self.config.write_text(text + self.extra_config, encoding="utf-8")

    # ----- paths ------------------------------------------------------------------------

    def inbox(self, kind: str) -> Path:
        path = self.root / "inbox" / kind
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def project(self) -> Path:
        return self.root / "project"

    def bundle(self, name: str) -> Path:
        return self.project / "labeled-data" / name

    def failed(self, kind: str) -> Path:
        return self.root / "failed" / kind

    def status_path(self, kind: str, name: str) -> Path:
        return self.root / "status" / kind / f"{name}.json"

    def status(self, kind: str, name: str) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads(self.status_path(kind, name).read_text())
        except (OSError, ValueError):
            return None
        return data

    # ----- the process ---------------------------------------------------------------------

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "daemon", *args, "-c", str(self.config)]

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FRAMEWATCH_")}
        env["PYTHONPATH"] = str(REPO)
        return {**env, **self.env}

    def start(self) -> Framewatch:
        """Start ``framewatch run`` in the background, logging to ``root/daemon.log``."""
        handle = self.log.open("ab")
        self.process = subprocess.Popen(
            self.command("run"),
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=self.environment(),
            cwd=self.root,
        )
        # Only a bound: a start under load (imports of OpenCV and scikit-learn while other
        # tests run beside it) took over 30 s on 2 shared cores; a passing test never waits it out.
        self.wait_for(lambda: "watching" in self.log_text(), 120, "the daemon to start watching")
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        """Signal the daemon and wait for it; its exit status."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        """``kill -9``: no chance to clean up."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=30)

    def once(self, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run ``framewatch once`` to the end."""
        return subprocess.run(
            self.command("once"),
            capture_output=True,
            text=True,
            env=self.environment(),
            cwd=self.root,
            timeout=timeout,
        )

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*args),
            capture_output=True,
            text=True,
            env=self.environment(),
            cwd=self.root,
            timeout=timeout,
        )

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def log_events(self) -> list[dict[str, Any]]:
        events = []
        for line in self.log_text().splitlines():
            try:
                events.append(json.loads(line))
            except ValueError:
                continue
        return events

    # ----- waiting ---------------------------------------------------------------------------

    def wait_for(self, condition: Callable[[], Any], timeout: float, what: str) -> Any:
        """Poll ``condition`` until it is truthy; fail naming ``what`` and the daemon's log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            if self.process is not None and self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(
            f"timed out waiting for {what}; daemon log:\n{self.log_text()[-4000:]}"
        )

    def wait_state(
        self,
        kind: str,
        name: str,
        states: tuple[str, ...] = ("complete", "failed"),
        timeout: float = 120,
    ) -> dict[str, Any]:
        """Wait until the item's status is in ``states``; return the status."""

        def reached() -> dict[str, Any] | None:
            status = self.status(kind, name)
            return status if status and status.get("state") in states else None

        result: dict[str, Any] = self.wait_for(reached, timeout, f"{kind}/{name} to be {states}")
        return result

    def __enter__(self) -> Framewatch:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)


def copy_slowly(source: Path, target: Path, chunks: int = 8, pause_s: float = 0.3) -> None:
    """Copy like a rig PC over a slow share: the target grows chunk by chunk."""
    data = source.read_bytes()
    step = max(1, len(data) // chunks)
    with target.open("wb") as out:
        for start in range(0, len(data), step):
            out.write(data[start : start + step])
            out.flush()
            os.fsync(out.fileno())
            time.sleep(pause_s)
