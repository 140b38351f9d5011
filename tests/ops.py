"""Helpers for the unattended-operation tests (tests/test_ops_*.py): break things on purpose."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import Framewatch
from tests.media import write_barcode_video


def make_video(folder: Path, name: str, frames: int) -> Path:
    """A barcode video (mp4v) outside any inbox, to be dropped in one rename."""
    folder.mkdir(parents=True, exist_ok=True)
    return write_barcode_video(folder / name, frames)


def drop(source: Path, inbox: Path) -> Path:
    """Move a finished file into an inbox in one rename, as a copy tool's last step does."""
    target = inbox / source.name
    try:
        os.replace(source, target)
    except OSError:  # another filesystem: copy under an ignored name first, as rsync does
        partial = inbox / f".{source.name}.part"
        shutil.copyfile(source, partial)
        os.replace(partial, target)
    return target


def events(fw: Framewatch, event: str, **match: Any) -> list[dict[str, Any]]:
    """The daemon's log events called ``event`` whose fields include ``match``."""
    return [
        line
        for line in fw.log_events()
        if line.get("event") == event and all(line.get(k) == v for k, v in match.items())
    ]


def bundle_selected(fw: Framewatch, name: str) -> list[str]:
    """The lines of a bundle's selected_frames.csv (empty when there is none)."""
    csv = fw.bundle(name) / "selected_frames.csv"
    return csv.read_text().splitlines() if csv.exists() else []


def half_bundles(fw: Framewatch) -> list[str]:
    """Bundle folders in labeled-data/ without a CSV, or whose CSV names a missing frame."""
    found = []
    labeled = fw.project / "labeled-data"
    for folder in sorted(labeled.iterdir()) if labeled.is_dir() else []:
        csv = folder / "selected_frames.csv"
        if not csv.exists() or any(
            not (folder / line).exists() for line in csv.read_text().splitlines()
        ):
            found.append(folder.name)
    return found


def processes_of(pid: int) -> list[Any]:
    """The daemon's child processes (its workers)."""
    psutil = pytest.importorskip("psutil")
    try:
        return list(psutil.Process(pid).children(recursive=True))
    except psutil.NoSuchProcess:
        return []


class NotifyListener:
    """A datagram socket standing in for systemd's NOTIFY_SOCKET (an abstract address)."""

    def __init__(self) -> None:
        self.name = f"framewatch-test-{uuid.uuid4().hex[:12]}"
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.bind("\0" + self.name)
        self.socket.settimeout(0.1)
        self.messages: list[tuple[float, str]] = []

    @property
    def env_value(self) -> str:
        return "@" + self.name

    def collect(self, seconds: float) -> list[str]:
        """Receive for ``seconds``; the messages received in that time."""
        start = len(self.messages)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                data = self.socket.recv(4096)
            except TimeoutError:
                continue
            self.messages.append((time.monotonic(), data.decode()))
        return [text for _, text in self.messages[start:]]

    def wait_for(self, prefix: str, timeout: float) -> str:
        """Receive until a message starting with ``prefix`` comes; fail after ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for text in self.collect(0.2):
                if text.startswith(prefix):
                    return text
        raise AssertionError(
            f"no {prefix!r} within {timeout} s; got {[t for _, t in self.messages][-10:]}"
        )

    def close(self) -> None:
        self.socket.close()


@contextlib.contextmanager
def immutable(folder: Path) -> Iterator[None]:
    """Make ``folder`` refuse new entries even to root (``chattr +i``); skip when impossible.

    Tests run as root, for whom chmod does not deny writes; the immutable flag does.
    """
    chattr = shutil.which("chattr")
    if chattr is None:
        pytest.skip("chattr is not installed: cannot make a folder refuse writes to root")
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([chattr, "+i", str(folder)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"chattr +i is not supported here ({done.stderr.strip()})")
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", str(folder)], capture_output=True)


def set_mutable(folder: Path) -> None:
    subprocess.run(["chattr", "-i", str(folder)], check=True, capture_output=True)
