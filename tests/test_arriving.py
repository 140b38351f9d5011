"""The ``arriving`` state (issue 16): a copy is listed as soon as the daemon sees it."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

from tests.harness import Framewatch, copy_slowly
from tests.media import write_barcode_video

FAST = "\n[extract]\nframes_per_video = 4\ncontext_frames = 1\n"


def video(folder: Path, stem: str, frames: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return write_barcode_video(folder / stem, frames)


def start(fw: Framewatch, settle_s: float = 3.0) -> Framewatch:
    fw.settle_s = settle_s
    fw.extra_config = FAST
    fw.write_config()
    return fw.start()


def test_slow_copy_is_arriving_within_two_seconds_then_complete(
    fw: Framewatch, tmp_path: Path
) -> None:
    """A slow copy shows as arriving (bytes so far, since when) within 2 s of its start, its
    byte count grows, and it ends complete with the arriving fields gone."""
    source = video(tmp_path / "src", "m1", 60)
    start(fw)
    target = fw.inbox("videos") / "m1.mp4"
    copier = threading.Thread(target=copy_slowly, args=(source, target, 10, 0.4))
    began = time.monotonic()
    copier.start()
    first = fw.wait_state("videos", "m1", ("arriving",), timeout=2.0)
    assert time.monotonic() - began < 2.5
    assert first["files"] == ["m1.mp4"]
    assert "Being copied" in first["message"]
    assert first["arriving_since"] <= first["settles_at"]
    later = fw.wait_for(
        lambda: (s := fw.status("videos", "m1")) and s.get("bytes", 0) > first["bytes"] and s,
        6,
        "the arriving status to follow the copy",
    )
    assert "arriving" == later["state"]
    copier.join()
    done = fw.wait_state("videos", "m1")
    assert "complete" == done["state"]
    assert "bytes" not in done and "settles_at" not in done
    shown = fw.cli("status", "m1")
    assert 0 == shown.returncode, shown.stderr
    assert "videos/m1: complete (100%)" in shown.stdout
    assert "Proceed to the next tab to label frames." in shown.stdout
    assert str(fw.bundle("m1")) in shown.stdout
    assert str(fw.bundle("m1") / "contact_sheet.png") in shown.stdout
    assert str(fw.project / "videos" / "m1.mp4") in shown.stdout
    missing = fw.cli("status", "videos/none")
    assert 1 == missing.returncode and "no item named 'videos/none'" in missing.stderr


def test_copy_that_vanishes_puts_back_the_status_before_it(fw: Framewatch, tmp_path: Path) -> None:
    """A copy moved away before it settled: its arriving status goes, and the status of the
    name's earlier bundle is what is left (never a stale 'arriving')."""
    source = video(tmp_path / "src", "m2", 40)
    start(fw, settle_s=0.6)
    shutil.copyfile(source, fw.inbox("videos") / "m2.mp4")
    earlier = fw.wait_state("videos", "m2")
    assert "complete" == earlier["state"]
    fw.settle_s = 30.0  # a new copy of the same name that stays arriving
    fw.stop()
    fw.write_config()
    fw.log.unlink()  # `start` waits for this run's "watching"
    fw.start()
    partial = fw.inbox("videos") / "m2.mp4"
    partial.write_bytes(source.read_bytes()[:5000])
    fw.wait_state("videos", "m2", ("arriving",), timeout=3)
    shutil.move(partial, tmp_path / "cancelled.mp4")
    restored = fw.wait_state("videos", "m2", ("complete",), timeout=3)
    assert earlier == restored


def test_new_copy_that_vanishes_leaves_no_status(fw: Framewatch, tmp_path: Path) -> None:
    """A first copy of a name that is cancelled: no status file is left behind."""
    start(fw, settle_s=30.0)
    partial = fw.inbox("videos") / "gone.mp4"
    partial.write_bytes(b"\0" * 1000)
    fw.wait_state("videos", "gone", ("arriving",), timeout=3)
    partial.unlink()
    fw.wait_for(
        lambda: not fw.status_path("videos", "gone").exists(), 3, "the status to be withdrawn"
    )


def test_arriving_left_by_a_killed_daemon_is_withdrawn_on_start(fw: Framewatch) -> None:
    """An arriving status whose file is no longer in the inbox (the daemon was killed while
    it was copied, then the copy was cancelled) is removed when a daemon starts."""
    stale = fw.status_path("videos", "left")
    stale.parent.mkdir(parents=True)
    stale.write_text(json.dumps({"kind": "videos", "name": "left", "state": "arriving"}))
    start(fw, settle_s=30.0)
    fw.wait_for(lambda: not stale.exists(), 5, "the leftover arriving status to go")
