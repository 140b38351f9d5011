"""systemd's notify protocol, spoken over a plain datagram socket (no libsystemd).

Under ``Type=notify`` systemd passes ``NOTIFY_SOCKET`` (a path, or ``@name`` for an abstract
socket) and, with ``WatchdogSec=``, ``WATCHDOG_USEC``. We send ``READY=1`` once watching,
``STATUS=`` lines, ``STOPPING=1``, and ``WATCHDOG=1`` every half ``WATCHDOG_USEC`` but only
while the loop's heartbeat is fresh: a loop stuck on a hung share must stop the pings, so
systemd restarts us instead of trusting a thread that merely still exists. Without
``NOTIFY_SOCKET`` every call does nothing.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

NOTIFY_SOCKET = "NOTIFY_SOCKET"
WATCHDOG_USEC = "WATCHDOG_USEC"
WATCHDOG_PID = "WATCHDOG_PID"


def socket_address(value: str) -> str:
    """The address to send to: ``@name`` is Linux's abstract namespace (a leading NUL)."""
    return "\0" + value[1:] if value.startswith("@") else value


def watchdog_interval_s(env: Mapping[str, str], pid: int) -> float | None:
    """Half of ``WATCHDOG_USEC`` in seconds, or None when systemd wants no watchdog from us."""
    usec = env.get(WATCHDOG_USEC, "")
    owner = env.get(WATCHDOG_PID, "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if owner and owner != str(pid):
        return None  # meant for another process (the one that exec'd us, say)
    return int(usec) / 2e6


@dataclass
class Heartbeat:
    """When the loop last finished a turn; the watchdog pings only while this is recent."""

    last: float = field(default_factory=time.monotonic)

    def beat(self) -> None:
        self.last = time.monotonic()

    def age_s(self) -> float:
        return time.monotonic() - self.last


class Notifier:
    """Sends notify messages to systemd; a no-op when not started by systemd."""

    def __init__(self, env: Mapping[str, str] | None = None, log: Any = None) -> None:
        env = os.environ if env is None else env
        self.address = socket_address(env[NOTIFY_SOCKET]) if env.get(NOTIFY_SOCKET) else None
        self.interval_s = watchdog_interval_s(env, os.getpid()) if self.address else None
        self.log = log
        self._socket: socket.socket | None = None
        self._lock = threading.Lock()
        self._last_status = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, message: str) -> bool:
        """Send one datagram; False (and a log line) when systemd's socket is not there."""
        if self.address is None:
            return False
        try:
            with self._lock:
                if self._socket is None:
                    self._socket = socket.socket(
                        socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
                    )
                # Never wait for the reader: a full queue (Linux keeps 10 datagrams by default)
                # would otherwise block the loop until someone reads; a dropped STATUS= is
                # replaced by the next one, a dropped ping by the next ping.
                self._socket.sendto(message.encode("utf-8"), socket.MSG_DONTWAIT, self.address)
        except OSError as exc:
            if self.log is not None:
                self.log.warning("notify failed", message=message, error=str(exc))
            return False
        return True

    def ready(self, status: str) -> None:
        self.send(f"READY=1\nSTATUS={status}")
        self._last_status = status

    def status(self, text: str) -> None:
        """Send ``STATUS=`` when it changed (systemctl status shows the last one)."""
        if text != self._last_status:
            self._last_status = text
            self.send(f"STATUS={text}")

    def stopping(self, status: str = "Stopping: putting unfinished items back.") -> None:
        self.send(f"STOPPING=1\nSTATUS={status}")

    def start_watchdog(self, heartbeat: Heartbeat, on_stall: Callable[[float], None]) -> None:
        """Ping every half ``WATCHDOG_USEC`` while ``heartbeat`` is younger than that interval.

        ``on_stall`` is called once per stall with the heartbeat's age (to log it).
        """
        if self.interval_s is None or self._thread is not None:
            return
        interval = self.interval_s
        self._thread = threading.Thread(
            target=self._ping_while_alive,
            args=(heartbeat, interval, on_stall),
            name="sd-watchdog",
            daemon=True,
        )
        self._thread.start()

    def _ping_while_alive(
        self, heartbeat: Heartbeat, interval: float, on_stall: Callable[[float], None]
    ) -> None:
        stalled = False
        while not self._stop.wait(interval):
            age = heartbeat.age_s()
            if age < interval:
                self.send("WATCHDOG=1")
                stalled = False
            elif not stalled:
                stalled = True
                on_stall(age)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            if self._socket is not None:
                self._socket.close()
                self._socket = None
