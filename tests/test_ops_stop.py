"""Stopping and crashing: SIGTERM/SIGINT put work back; kill -9 at any moment loses nothing."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import time
from pathlib import Path

import pytest

from tests.harness import REPO, Framewatch
from tests.ops import bundle_selected, drop, events, half_bundles, make_video, processes_of

LONG_FRAMES = 3000  # about 5 s of extraction here: long enough to be caught in the middle
FAST = "\n[extract]\nframes_per_video = 6\ncontext_frames = 1\n"


def wait_mid_extraction(fw: Framewatch, name: str) -> None:
    """Wait until this daemon process's worker reports progress on ``name`` (it is extracting).

    A progress file adopted from a killed daemon is older than this process; it does not count.
    """
    assert fw.process is not None
    pid = fw.process.pid
    since = psutil_create_time(pid)

    def fresh_progress() -> bool:
        claims = fw.root / "work" / "claims"
        for path in claims.glob(f"*.{pid}/videos/{name}.mp4/progress.json"):
            try:
                if path.stat().st_mtime > since:
                    return True
            except OSError:
                continue
        return False

    fw.wait_for(fresh_progress, 90, f"{name} in the middle of its extraction")
    time.sleep(0.3)
    assert "processing" == (fw.status("videos", name) or {}).get("state"), (
        "extraction ended too soon"
    )


def psutil_create_time(pid: int) -> float:
    """When process ``pid`` started (seconds since the epoch)."""
    psutil = pytest.importorskip("psutil")
    return float(psutil.Process(pid).create_time())


def claimed_items(fw: Framewatch) -> list[Path]:
    return sorted((fw.root / "work" / "claims").glob("*/videos/*"))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stop_signal_puts_unfinished_work_back(fw: Framewatch, sig: int) -> None:
    """A stop signal mid-extraction: after the grace period the video is put back; exit 0."""
    fw.stop_grace_s = 0.5
    fw.settle_s = 0.3
    fw.extra_config = FAST
    fw.write_config()
    fw.start()
    drop(make_video(fw.root / "src", "long", LONG_FRAMES), fw.inbox("videos"))
    wait_mid_extraction(fw, "long")
    code = fw.stop(sig)
    status = fw.status("videos", "long") or {}
    assert 0 == code
    assert ["long.mp4"] == sorted(path.name for path in fw.inbox("videos").iterdir())
    assert ("queued", "The daemon stopped before this finished; it will be redone.") == (
        status.get("state"),
        status.get("message"),
    )
    assert [] == claimed_items(fw)
    assert False is fw.bundle("long").exists()
    assert 1 == len(events(fw, "put back", name="long"))


def test_grace_period_lets_an_item_finish(fw: Framewatch) -> None:
    """Items in flight when SIGTERM comes may finish within stop_grace_s, and are then complete."""
    fw.stop_grace_s = 60
    fw.settle_s = 0.3
    fw.extra_config = FAST
    fw.write_config()
    fw.start()
    drop(make_video(fw.root / "src", "long", LONG_FRAMES), fw.inbox("videos"))
    wait_mid_extraction(fw, "long")
    code = fw.stop(signal.SIGTERM)
    assert (0, "complete") == (code, (fw.status("videos", "long") or {}).get("state"))
    assert 6 == len(bundle_selected(fw, "long"))
    assert [] == sorted(fw.inbox("videos").iterdir())


def test_kill_9_mid_extraction_twice_then_every_item_done_once(fw: Framewatch) -> None:
    """kill -9 mid-extraction, twice: no half bundle shows, and each item is done once."""
    fw.settle_s = 0.3
    fw.extra_config = FAST
    fw.write_config()
    names = ["alpha", "beta"]
    for name in names:
        make_video(fw.root / "src", name, LONG_FRAMES)
    fw.start()
    for name in names:
        drop(fw.root / "src" / f"{name}.mp4", fw.inbox("videos"))
    seen_half: list[list[str]] = []
    for _ in range(2):
        wait_mid_extraction(fw, "alpha")
        fw.kill()
        seen_half.append(half_bundles(fw))
        fw.start()
    for name in names:
        fw.wait_state("videos", name, timeout=180)
    code = fw.stop()
    project_videos = sorted(path.name for path in (fw.project / "videos").iterdir())
    assert [[], []] == seen_half
    assert 0 == code
    assert {name: "complete" for name in names} == {
        n: fw.status("videos", n)["state"] for n in names
    }
    assert {name: 6 for name in names} == {name: len(bundle_selected(fw, name)) for name in names}
    assert [] == sorted(p.name for n in names for p in fw.bundle(n).glob("selected_frames.*.csv"))
    assert ["alpha.mp4", "beta.mp4"] == project_videos
    assert [] == half_bundles(fw)
    assert [] == claimed_items(fw)
    assert 3 == len(events(fw, "started", name="alpha"))  # killed twice mid-way, then finished
    assert 2 <= len(events(fw, "adopted"))


def orphan_with_saved_result(fw: Framewatch, name: str, published: bool) -> Path:
    """What kill -9 leaves when it lands in publish: a dead daemon's claimed item whose handler
    returned (result.json saved), with its bundle still staged or already moved into place.
    """
    from daemon.worker import Job, run_job
    from handlers.video import VideoOptions

    item = fw.root / "work" / "claims" / f"{socket.gethostname()}.999999" / "videos" / f"{name}.mp4"
    (item / "input").mkdir(parents=True)
    (item.parent.parent / "owner.json").write_text(
        json.dumps({"host": socket.gethostname(), "pid": 999999, "started": "0"})
    )
    video = make_video(item / "input", name, 120)
    origin = fw.inbox("videos") / video.name
    (item / "item.json").write_text(
        json.dumps({"kind": "videos", "name": name, "origins": [str(origin)]})
    )
    options = VideoOptions(frames_per_video=6, frame_range=(0.0, 1.0), context_frames=1)
    job = Job(
        kind="videos",
        name=name,
        handler="handlers.video:handle_video",
        files=(video,),
        options=options,
        folder=item,
        progress_file=item / "progress.json",
    )
    outcome = run_job(job)
    saved = {**outcome.result.__dict__, "staging": outcome.staging.name}
    (item / "result.json").write_text(json.dumps(saved, default=str))
    if published:
        (fw.project / "labeled-data").mkdir(parents=True, exist_ok=True)
        os.rename(outcome.staging, fw.bundle(name))
    return item


@pytest.mark.parametrize("published", [False, True], ids=["before-publish", "after-publish"])
def test_kill_9_during_publish_is_finished_from_saved_result(
    fw: Framewatch, published: bool
) -> None:
    """An item whose handler had returned is published on the next start, not run again."""
    orphan_with_saved_result(fw, "saved", published)
    fw.start()
    status = fw.wait_state("videos", "saved", timeout=60)
    assert "complete" == status["state"], status
    assert 6 == len(bundle_selected(fw, "saved"))
    assert (1, 0) == (len(events(fw, "publishing saved result")), len(events(fw, "started")))
    assert ["saved.mp4"] == sorted(path.name for path in (fw.project / "videos").iterdir())
    assert [] == claimed_items(fw)
    assert 0 == fw.stop()


def test_kill_9_between_claim_folder_and_rename_leaves_nothing_to_fail(fw: Framewatch) -> None:
    """Killed after making a claim folder but before the rename: the file, still in the inbox,
    is simply processed; the empty claim is not mistaken for an item with no video."""
    host = socket.gethostname()
    item = fw.root / "work" / "claims" / f"{host}.999999" / "videos" / "early.mp4"
    (item / "input").mkdir(parents=True)
    (item.parent.parent / "owner.json").write_text(
        json.dumps({"host": host, "pid": 999999, "started": "0"})
    )
    origin = fw.inbox("videos") / "early.mp4"
    meta = {"kind": "videos", "name": "early", "origins": [str(origin)]}
    (item / "item.json").write_text(json.dumps(meta))
    drop(make_video(fw.root / "src", "early", 60), fw.inbox("videos"))
    fw.start()
    status = fw.wait_state("videos", "early", timeout=90)
    assert "complete" == status["state"], status
    assert [] == events(fw, "failed")
    assert 0 == fw.stop()


def test_kill_9_between_video_and_sidecar_renames_keeps_the_sidecar(fw: Framewatch) -> None:
    """Killed after claiming the video but not its sidecar: the next start brings the sidecar
    in, so the video runs with its options and nothing is left behind in the inbox."""
    host = socket.gethostname()
    item = fw.root / "work" / "claims" / f"{host}.999999" / "videos" / "late.mp4"
    (item / "input").mkdir(parents=True)
    (item.parent.parent / "owner.json").write_text(
        json.dumps({"host": host, "pid": 999999, "started": "0"})
    )
    origin = fw.inbox("videos") / "late.mp4"
    sidecar = fw.inbox("videos") / "late.json"
    meta = {"kind": "videos", "name": "late", "origins": [str(origin), str(sidecar)]}
    (item / "item.json").write_text(json.dumps(meta))
    os.replace(make_video(fw.root / "src", "late", 60), item / "input" / "late.mp4")
    sidecar.write_text(json.dumps({"frames_per_video": 4}))
    fw.start()
    status = fw.wait_state("videos", "late", timeout=90)
    assert "complete" == status["state"], status
    assert 4 == status["frames_selected"]
    assert [] == list(fw.inbox("videos").iterdir())
    assert (fw.root / "archive" / "videos" / "late.json").is_file()
    assert 0 == fw.stop()


def test_sighup_is_ignored_and_later_files_are_processed(fw: Framewatch) -> None:
    """SIGHUP (a closed terminal, a stray kill -HUP) neither stops the daemon nor loses work."""
    fw.settle_s = 0.3
    fw.extra_config = "\n[extract]\nframes_per_video = 4\ncontext_frames = 1\n"
    fw.write_config()
    fw.start()
    assert fw.process is not None
    fw.process.send_signal(signal.SIGHUP)
    fw.wait_for(lambda: "SIGHUP ignored" in fw.log_text(), 30, "the daemon to log the SIGHUP")
    assert fw.process.poll() is None
    drop(make_video(fw.root / "src", "after_hup", 60), fw.inbox("videos"))
    assert "complete" == fw.wait_state("videos", "after_hup")["state"]
    assert 0 == fw.stop()


def test_worker_killed_once_from_outside_is_retried_not_failed(fw: Framewatch) -> None:
    """kill -9 of a worker (what the OOM killer does) once: the item runs again and completes."""
    fw.settle_s = 0.3
    fw.extra_config = (
        "\n[extract]\nframes_per_video = 4\ncontext_frames = 1\n[retry]\nfirst_delay_s = 1\n"
    )
    fw.write_config()
    fw.start()
    assert fw.process is not None
    drop(make_video(fw.root / "src", "oom", 1500), fw.inbox("videos"))
    fw.wait_state("videos", "oom", ("processing",), timeout=60)
    workers = fw.wait_for(lambda: processes_of(fw.process.pid), 30, "a worker process")
    for worker in workers:
        worker.kill()
    status = fw.wait_state("videos", "oom", timeout=180)
    assert "complete" == status["state"], status
    assert 2 == len(events(fw, "started", name="oom"))
    assert 0 == fw.stop()


def test_workers_that_cannot_start_fail_no_file_and_recover(fw: Framewatch) -> None:
    """framewatch half replaced while it runs (a worker cannot import it): no file is failed
    as damaged; the status and the log say the workers cannot start and nothing is taken;
    once the package is whole again the file is processed."""
    copy = fw.root / "code"
    for package in ("daemon", "handlers"):
        shutil.copytree(
            REPO / package, copy / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    fw.env = {"PYTHONPATH": str(copy)}
    fw.settle_s = 0.3
    fw.extra_config = "\n[extract]\nframes_per_video = 4\ncontext_frames = 1\n"
    fw.write_config()
    fw.start()
    worker = copy / "daemon" / "worker.py"
    whole = worker.read_text()
    worker.write_text("raise ImportError('half replaced by pip install --upgrade')\n")
    drop(make_video(fw.root / "src", "good", 60), fw.inbox("videos"))
    fw.wait_for(
        lambda: "Workers cannot start" in (fw.status("videos", "good") or {}).get("message", ""),
        60,
        "the status to say workers cannot start",
    )
    assert "queued" == fw.status("videos", "good")["state"]  # type: ignore[index]
    assert events(fw, "workers unavailable")
    worker.write_text(whole)
    status = fw.wait_state("videos", "good", timeout=120)
    assert "complete" == status["state"], status
    assert not (fw.root / "failed").exists() or not list((fw.root / "failed").rglob("good*"))
    assert 0 == fw.stop()
