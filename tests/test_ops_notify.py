"""systemd's notify protocol: a datagram socket opened by the test stands in for systemd."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.notify import Notifier, socket_address, watchdog_interval_s
from tests.harness import Framewatch
from tests.ops import NotifyListener, drop, events, make_video, processes_of


@pytest.fixture
def listener() -> Iterator[NotifyListener]:
    """A stand-in for systemd's notify socket, at an abstract address."""
    sock = NotifyListener()
    yield sock
    sock.close()


def test_ready_status_watchdog_and_stopping(fw: Framewatch, listener: NotifyListener) -> None:
    """READY once watching, WATCHDOG=1 every half WATCHDOG_USEC, STOPPING on SIGTERM."""
    fw.env = {"NOTIFY_SOCKET": listener.env_value, "WATCHDOG_USEC": "2000000"}
    fw.start()
    ready = listener.wait_for("READY=1", timeout=10)
    pings = listener.collect(4.0).count("WATCHDOG=1")
    assert "STATUS=0 queued, 0 in progress" in ready.splitlines()
    assert 3 <= pings <= 5, f"expected a ping every 1 s, got {pings} in 4 s"
    assert 0 == fw.stop(signal.SIGTERM)
    stopping = listener.wait_for("STOPPING=1", timeout=5)  # queued in the socket before the exit
    assert "STOPPING=1" == stopping.splitlines()[0]


def test_stuck_loop_stops_watchdog_pings(fw: Framewatch, listener: NotifyListener) -> None:
    """A loop blocked in a read (a hung share) withholds WATCHDOG=1; pings resume once it moves."""
    fw.settle_s = 0.3
    fw.write_config()
    fw.env = {"NOTIFY_SOCKET": listener.env_value, "WATCHDOG_USEC": "2000000"}
    fw.start()
    listener.wait_for("READY=1", timeout=10)
    drop(make_video(fw.root / "src", "long", 3000), fw.inbox("videos"))
    progress = fw.wait_for(
        lambda: next((fw.root / "work" / "claims").glob("*/videos/*/progress.json"), None),
        60,
        "the worker's first progress",
    )
    assert fw.process is not None
    workers = processes_of(fw.process.pid)
    for worker in workers:
        worker.suspend()  # no more progress writes: the FIFO below stays in place
    listener.wait_for("STATUS=0 queued, 1 in progress: long", timeout=10)
    fifo, spare = progress.with_name(".hang.fifo"), progress.with_name(".hang.link")
    os.mkfifo(fifo)
    os.link(fifo, spare)
    os.replace(fifo, progress)  # the loop's next progress read blocks, as on a hung share
    listener.collect(2.5)  # pings already on their way, and the 1 s the stall takes to show
    silent = listener.collect(4.0)
    for worker in workers:
        worker.resume()
    os.replace(_write(progress.with_name(".p.tmp")), progress)  # what the worker writes next
    with open(spare, "w") as unblock:  # a writer lets the blocked read finish
        unblock.write("{}")
    resumed = listener.wait_for("WATCHDOG=1", timeout=10)
    assert [] == [text for text in silent if text == "WATCHDOG=1"]
    assert "WATCHDOG=1" == resumed
    assert 1 <= len(events(fw, "loop stalled; watchdog pings withheld"))
    assert "complete" == fw.wait_state("videos", "long")["state"]
    assert 0 == fw.stop()


def _write(path: Path) -> Path:
    path.write_text('{"progress": 0.5, "message": "Reading frames."}')
    return path


def test_nothing_is_sent_without_notify_socket() -> None:
    """Without NOTIFY_SOCKET the notifier is off: no socket, no watchdog thread."""
    notifier = Notifier(env={"WATCHDOG_USEC": "1000000"})
    assert (False, None, False) == (notifier.enabled, notifier.interval_s, notifier.send("READY=1"))


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"WATCHDOG_USEC": "30000000"}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({}, None),
    ],
    ids=["usec", "our-pid", "other-pid", "zero", "absent"],
)
def test_watchdog_interval_is_half_of_watchdog_usec(
    env: dict[str, str], expected: float | None
) -> None:
    """The ping interval is half of WATCHDOG_USEC, and only for the process WATCHDOG_PID names."""
    assert expected == watchdog_interval_s(env, os.getpid())


@pytest.mark.parametrize(
    ("value", "expected"),
    [("@framewatch", "\0framewatch"), ("/run/systemd/notify", "/run/systemd/notify")],
    ids=["abstract", "path"],
)
def test_socket_address(value: str, expected: str) -> None:
    """An '@' address is Linux's abstract namespace; a path stays a path."""
    assert expected == socket_address(value)


def test_notifier_sends_status_only_on_change(listener: NotifyListener) -> None:
    """STATUS= goes out when the text changes, not on every turn of the loop."""
    notifier = Notifier(env={"NOTIFY_SOCKET": listener.env_value})
    for text in ["1 queued", "1 queued", "0 queued"]:
        notifier.status(text)
    notifier.close()
    time.sleep(0.1)
    assert ["STATUS=1 queued", "STATUS=0 queued"] == listener.collect(0.5)


def test_a_notify_socket_nobody_reads_never_blocks_the_loop(
    fw: Framewatch, listener: NotifyListener
) -> None:
    """With systemd's queue full (nobody reads it), items still complete: sends never wait."""
    fw.env = {"NOTIFY_SOCKET": listener.env_value, "WATCHDOG_USEC": "200000"}
    fw.start()
    time.sleep(3)  # 10 pings a second: far more than the 10 datagrams Linux queues by default
    for name in ("a", "b"):
        drop(make_video(fw.root / "src", name, 120), fw.inbox("videos"))
    for name in ("a", "b"):
        assert "complete" == fw.wait_state("videos", name)["state"]
    assert 0 == fw.stop()
