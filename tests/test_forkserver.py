"""Workers forked from the fork server: a crash stays in its item; the server follows the code."""

from __future__ import annotations

import json
import shutil
import signal
from typing import Any

import pytest

from tests.harness import REPO, Framewatch
from tests.ops import drop, events, make_video

CONFIG = "\n[extract]\nframes_per_video = 4\ncontext_frames = 1\n[retry]\nfirst_delay_s = 1\n"


def worker_of(fw: Framewatch, name: str) -> int | None:
    """The pid of the worker that reports progress on video ``name`` (None before it does)."""
    for path in (fw.root / "work" / "claims").glob(f"*/videos/{name}.mp4/progress.json"):
        try:
            worker = str(json.loads(path.read_text()).get("worker", ""))
        except (OSError, ValueError):
            continue
        if " pid " in worker:
            return int(worker.rsplit(" pid ", 1)[1].split()[0])
    return None


def fork_servers(fw: Framewatch) -> list[Any]:
    """The daemon's fork server processes."""
    psutil = pytest.importorskip("psutil")
    assert fw.process is not None
    return [
        child
        for child in psutil.Process(fw.process.pid).children()
        if "multiprocessing.forkserver" in " ".join(child.cmdline())
    ]


def test_worker_killed_mid_item_affects_only_its_item(fw: Framewatch) -> None:
    """kill -9 of one forked worker while two items run: that item runs again and completes,
    the other completes untouched on its first run; the workers are the fork server's."""
    psutil = pytest.importorskip("psutil")
    fw.settle_s = 0.3
    fw.extra_config = CONFIG
    fw.write_config()
    fw.start()
    assert fw.process is not None
    for name in ("victim", "bystander"):
        drop(make_video(fw.root / "src", name, 1500), fw.inbox("videos"))
    victim = fw.wait_for(lambda: worker_of(fw, "victim"), 90, "the victim's worker")
    bystander = fw.wait_for(lambda: worker_of(fw, "bystander"), 90, "the bystander's worker")
    servers = [server.pid for server in fork_servers(fw)]
    assert [psutil.Process(bystander).ppid()] == servers  # forked, not a fresh interpreter
    psutil.Process(victim).send_signal(signal.SIGKILL)
    for name in ("victim", "bystander"):
        status = fw.wait_state("videos", name, timeout=180)
        assert "complete" == status["state"], status
    assert 2 == len(events(fw, "started", name="victim"))
    assert 1 == len(events(fw, "started", name="bystander"))
    assert "SIGKILL" in events(fw, "worker died; will retry", name="victim")[0]["error"]
    assert servers == [server.pid for server in fork_servers(fw)]  # the server lived on
    assert 0 == fw.stop()


def test_fork_server_is_replaced_when_it_dies_and_when_the_code_changes(fw: Framewatch) -> None:
    """A dead fork server is started again; code changed on disk (an upgrade) runs from the
    next item on, rather than the modules the old server imported."""
    copy = fw.root / "code"
    for package in ("daemon", "handlers"):
        shutil.copytree(REPO / package, copy / package)  # with its bytecode: starts sooner
    fw.env = {"PYTHONPATH": str(copy)}
    fw.settle_s = 0.3
    fw.extra_config = CONFIG
    fw.write_config()
    fw.start()
    drop(make_video(fw.root / "src", "first", 30), fw.inbox("videos"))
    assert "complete" == fw.wait_state("videos", "first", timeout=120)["state"]
    psutil = pytest.importorskip("psutil")
    [server] = fork_servers(fw)
    server.kill()
    fw.wait_for(lambda: server.status() == psutil.STATUS_ZOMBIE, 10, "the fork server to die")
    drop(make_video(fw.root / "src", "second", 30), fw.inbox("videos"))
    assert "complete" == fw.wait_state("videos", "second", timeout=120)["state"]
    marker = fw.root / "new-code-ran"
    handler = copy / "handlers" / "video" / "handler.py"
    handler.write_text(
        handler.read_text()
        + "\n\n_old_handle_video = handle_video\n\n\ndef handle_video(*args, **kwargs):\n"
        + f"    open({str(marker)!r}, 'a').write('x')\n"
        + "    return _old_handle_video(*args, **kwargs)\n"
    )
    assert not marker.exists()
    drop(make_video(fw.root / "src", "third", 30), fw.inbox("videos"))
    assert "complete" == fw.wait_state("videos", "third", timeout=120)["state"]
    assert "x" == marker.read_text()
    assert 0 == fw.stop()
