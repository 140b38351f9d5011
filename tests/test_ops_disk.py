"""No room or no permission in the project folder: the item waits and retries; nothing is lost."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.harness import Framewatch
from tests.ops import (
    bundle_selected,
    drop,
    events,
    half_bundles,
    immutable,
    make_video,
    set_mutable,
)

RETRY_FAST = """
[extract]
frames_per_video = 4
context_frames = 1
[retry]
first_delay_s = 0.3
max_delay_s = 1.0
max_attempts = 1000
"""


@pytest.mark.parametrize("refusing", ["labeled-data", "videos"])
def test_refused_project_folder_waits_and_retries(fw: Framewatch, refusing: str) -> None:
    """A project folder refusing writes: queued saying why, retried, complete once it accepts."""
    fw.settle_s = 0.3
    fw.extra_config = RETRY_FAST
    fw.write_config()
    folder = fw.project / refusing
    with immutable(folder):
        fw.start()
        drop(make_video(fw.root / "src", "mouse", 80), fw.inbox("videos"))

        def retried_twice() -> dict[str, object] | None:
            status = fw.status("videos", "mouse") or {}
            return (
                status
                if int(status.get("attempts", 0)) >= 2 and status["state"] == "queued"
                else None
            )

        waiting = fw.wait_for(retried_twice, 90, "two failed attempts")
        alive = fw.process is not None and fw.process.poll() is None
        set_mutable(folder)
        status = fw.wait_state("videos", "mouse", timeout=60)
    message = str(waiting["message"])
    assert True is alive
    assert (True, True, True) == (
        message.startswith("Permission denied"),
        str(folder) in message,
        "Nothing is lost" in message,
    )
    assert "complete" == status["state"], status
    assert 4 == len(bundle_selected(fw, "mouse"))
    assert ["mouse.mp4"] == sorted(path.name for path in (fw.project / "videos").iterdir())
    assert [] == half_bundles(fw)
    assert 1 == len(events(fw, "started", name="mouse"))  # retries publish the saved result
    assert 0 == fw.stop()


@contextlib.contextmanager
def small_filesystem(folder: Path, size_bytes: int) -> Iterator[Callable[[int], None]]:
    """Mount a tmpfs of ``size_bytes`` at ``folder``; yield a function that resizes it."""
    mount = shutil.which("mount")
    if mount is None or os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs mount(8) and root")
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [mount, "-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()})")

    def resize(new_size: int) -> None:
        subprocess.run([mount, "-o", f"remount,size={new_size}", str(folder)], check=True)

    try:
        yield resize
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def test_full_disk_waits_and_retries(tmp_path: Path) -> None:
    """A share too full for the frames: the item waits saying the disk is full, then completes."""
    video = make_video(tmp_path / "src", "mouse", 80)
    size = (video.stat().st_size // 4096 + 1) * 4096 + 160 * 1024  # room for the video, not frames
    with (
        small_filesystem(tmp_path / "share", size) as resize,
        Framewatch(tmp_path / "share", settle_s=0.3, extra_config=RETRY_FAST) as fw,
    ):
        fw.log = tmp_path / "daemon.log"  # the log is journald's, not on the share
        fw.start()
        drop(video, fw.inbox("videos"))

        def waiting_for_room() -> dict[str, object] | None:
            status = fw.status("videos", "mouse") or {}
            attempts = int(status.get("attempts", 0))
            return status if attempts >= 2 and status["state"] == "queued" else None

        waiting = fw.wait_for(waiting_for_room, 90, "two attempts that met a full disk")
        alive = fw.process is not None and fw.process.poll() is None
        resize(64 * 1024 * 1024)
        status = fw.wait_state("videos", "mouse", timeout=90)
        selected = bundle_selected(fw, "mouse")
        kept = sorted(path.name for path in (fw.project / "videos").iterdir())
        code = fw.stop()
    assert True is alive
    assert (True, True) == (
        str(waiting["message"]).startswith("The disk is full"),
        "Nothing is lost" in str(waiting["message"]),
    )
    assert ("complete", 4, ["mouse.mp4"], 0) == (status["state"], len(selected), kept, code)


def test_read_only_share_during_the_failure_path_keeps_the_item_waiting(fw: Framewatch) -> None:
    """A bad file fails while failed/ refuses writes (a share turned read-only): the item is
    not forgotten in the claims folder; it waits, and once the share is writable again it is
    failed properly, its file kept in failed/videos/."""
    fw.settle_s = 0.3
    fw.extra_config = "\n[retry]\nfirst_delay_s = 1\nmax_delay_s = 1\njitter = 0\n"
    fw.write_config()
    fw.start()
    failed = fw.root / "failed"
    with immutable(failed):
        (fw.inbox("videos") / "bad.mp4").write_text("not a video\n" * 100)
        fw.wait_for(
            lambda: (
                "kept until it can be moved"
                in (fw.status("videos", "bad") or {}).get("message", "")
            ),
            60,
            "the status to say the file waits to be moved to failed/",
        )
        assert "queued" == fw.status("videos", "bad")["state"]  # type: ignore[index]
    status = fw.wait_state("videos", "bad", ("failed",), timeout=60)
    assert "could not be opened as a video" in status["message"], status
    assert (fw.failed("videos") / "bad.mp4").read_text().startswith("not a video")
    assert not [p for p in (fw.root / "work" / "claims").rglob("bad.mp4*")]
    assert 0 == fw.stop()
