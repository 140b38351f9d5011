"""Odd input (issue 15): a huge sidecar is refused without flooding the status or the log."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time

import pytest

from tests.harness import Framewatch
from tests.ops import drop, make_video

FAST = "\n[extract]\nframes_per_video = 4\ncontext_frames = 1\n"


def test_huge_sidecar_is_refused_with_a_short_status(fw: Framewatch) -> None:
    """A 1 MB sidecar: the item fails saying the sidecar is too big; status and log stay small."""
    fw.settle_s = 0.3
    fw.extra_config = FAST
    fw.write_config()
    fw.start()
    inbox = fw.inbox("videos")
    (inbox / "big.json").write_text(json.dumps({"frames_per_video": "x" * 1_000_000}))
    drop(make_video(fw.root / "src", "big", 60), inbox)
    status = fw.wait_state("videos", "big")
    assert "failed" == status["state"], status
    assert "more than the 65536 a sidecar may have" in status["message"], status
    assert fw.status_path("videos", "big").stat().st_size < 8000
    assert len(fw.log_text()) < 100_000
    assert 0 == fw.stop()


def test_links_and_fifos_are_refused_kept_and_never_read(fw: Framewatch) -> None:
    """A folder drop with a member linked to a secret outside, a loose linked video, a
    dangling link and a FIFO: each gets a status naming it as refused; nothing is read
    through a link (the secret appears in no status); the entries are kept as they were; a
    real video beside them is processed."""
    fw.settle_s = 0.3
    fw.extra_config = FAST
    fw.write_config()
    outside = fw.root / "outside"
    outside.mkdir()
    secret = outside / "secret.csv"
    secret.write_text("scorer,TOPSECRET-42\nbodyparts,nose\ncoords,x\n0,1\n")
    video = make_video(outside, "elsewhere", 60)
    drop_folder = fw.inbox("inference") / "clip"
    drop_folder.mkdir()
    (drop_folder / "clip.csv").write_text("scorer,model\nbodyparts,nose\ncoords,x\n0,1\n")
    (drop_folder / "clip.rng0.csv").symlink_to(secret)
    videos = fw.inbox("videos")
    (videos / "linked.mp4").symlink_to(video)
    (videos / "dangling.mp4").symlink_to(outside / "gone.mp4")
    os.mkfifo(videos / "pipe.mp4")
    drop(make_video(fw.root / "src", "real", 60), videos)
    fw.start()
    assert "complete" == fw.wait_state("videos", "real")["state"]
    expected = {
        ("inference", "clip"): "clip/clip.rng0.csv is a symbolic link",
        ("videos", "linked"): "linked.mp4 is a symbolic link",
        ("videos", "dangling"): "which points to nothing",
        ("videos", "pipe"): "pipe.mp4 is a named pipe (FIFO)",
    }
    for (kind, name), words in expected.items():
        status = fw.wait_state(kind, name)
        assert "failed" == status["state"], status
        assert "Refused" in status["message"] and words in status["message"], status
    everything = "".join(p.read_text() for p in (fw.root / "status").rglob("*.json"))
    assert "TOPSECRET" not in everything and "TOPSECRET" not in fw.log_text()
    kept = fw.failed("inference") / "clip" / "clip.rng0.csv"
    assert kept.is_symlink() and kept.readlink() == secret
    assert (videos / "linked.mp4").is_symlink() and (videos / "dangling.mp4").is_symlink()
    assert (videos / "pipe.mp4").exists()
    assert secret.read_text().startswith("scorer,TOPSECRET")
    assert 0 == fw.stop()


def test_upper_case_sidecar_long_name_and_deleted_inbox(fw: Framewatch) -> None:
    """MOUSE.JSON beside MOUSE.MP4 is applied; a name of 240 bytes gets its status and
    bundle; an inbox deleted while the daemon runs is made again and takes new drops."""
    fw.settle_s = 0.3
    fw.extra_config = FAST
    fw.write_config()
    inbox = fw.inbox("videos")
    make_video(fw.root / "src", "MOUSE", 60).rename(inbox / "MOUSE.MP4")
    (inbox / "MOUSE.JSON").write_text(json.dumps({"frames_per_video": 2, "context_frames": 0}))
    long_name = "L" * 236
    make_video(fw.root / "src", "long", 60).rename(inbox / f"{long_name}.mp4")
    fw.start()
    mouse = fw.wait_state("videos", "MOUSE")
    assert "complete" == mouse["state"], mouse
    assert 2 == mouse["frames_selected"], mouse
    long_status = fw.wait_state("videos", long_name)
    assert "complete" == long_status["state"], long_status
    assert fw.bundle(long_name).is_dir()
    shutil.rmtree(inbox)
    fw.wait_for(inbox.is_dir, 30, "the inbox to be made again")
    drop(make_video(fw.root / "src", "after", 60), inbox)
    assert "complete" == fw.wait_state("videos", "after")["state"]
    assert 0 == fw.stop()


def test_two_recordings_of_one_stem_keep_both_outcomes(fw: Framewatch) -> None:
    """mouse3.avi (damaged) and mouse3.mp4 (good) dropped together: the failure stays
    visible beside the success, each with its own status and the good one its own bundle."""
    fw.settle_s = 0.3
    fw.extra_config = FAST
    fw.write_config()
    inbox = fw.inbox("videos")
    (inbox / "mouse3.avi").write_text("not a video\n" * 100)
    drop(make_video(fw.root / "src", "mouse3", 60), inbox)
    fw.start()
    damaged = fw.wait_state("videos", "mouse3")
    good = fw.wait_state("videos", "mouse3.mp4")
    assert "failed" == damaged["state"], damaged
    assert "mouse3.avi could not be opened" in damaged["message"], damaged
    assert "complete" == good["state"], good
    assert fw.bundle("mouse3.mp4").is_dir() and not fw.bundle("mouse3").exists()
    assert (fw.failed("videos") / "mouse3.avi").is_file()
    assert (fw.project / "videos" / "mouse3.mp4").is_file()
    time.sleep(1.0)  # nothing overwrites either later
    assert "failed" == fw.status("videos", "mouse3")["state"]  # type: ignore[index]
    assert 0 == fw.stop()


def test_sidecar_after_its_video_is_set_aside_not_applied_to_the_next(fw: Framewatch) -> None:
    """mouse.json dropped after mouse.mp4 was taken: not applied to it, moved out of the inbox
    (kept) with a status saying so; the next, unrelated mouse.mp4 gets the config's options."""
    fw.settle_s = 0.3
    fw.extra_config = FAST
    fw.write_config()
    inbox = fw.inbox("videos")
    fw.start()
    drop(make_video(fw.root / "src", "mouse", 60), inbox)
    assert "complete" == fw.wait_state("videos", "mouse")["state"]
    (inbox / "mouse.json").write_text(json.dumps({"frames_per_video": 2}))
    late = fw.wait_state("videos", "mouse.json", ("failed",), timeout=60)
    assert "came after mouse.mp4 was taken" in late["message"], late
    kept = fw.root / "archive" / "videos" / "late-sidecars" / "mouse.json"
    assert {"frames_per_video": 2} == json.loads(kept.read_text())
    assert not (inbox / "mouse.json").exists()
    drop(make_video(fw.root / "src2", "mouse", 90), inbox)
    fw.wait_for(
        lambda: (fw.status("videos", "mouse") or {}).get("report", {}).get("frame_count") == 90,
        120,
        "the next mouse.mp4 to be done",
    )
    assert 4 == fw.status("videos", "mouse")["frames_selected"]  # type: ignore[index]
    assert 0 == fw.stop()


def test_deep_sidecar_folder_named_like_a_video_and_longest_name(fw: Framewatch) -> None:
    """A sidecar nested 10000 levels deep fails its video saying so (not as framewatch's own
    error); a folder a.mp4/ in the videos inbox gets a status saying what is wrong and is
    kept; a video whose stem fills the file-name limit (STEM.mp4 is 255 bytes, so STEM.json
    is too long) gets a status under a shortened name that says so, and its bundle."""
    fw.settle_s = 0.3
    fw.extra_config = FAST
    fw.write_config()
    inbox = fw.inbox("videos")
    (inbox / "deep.json").write_text('{"frames_per_video": ' + "[" * 10000 + "]" * 10000 + "}")
    drop(make_video(fw.root / "src", "deep", 60), inbox)
    (inbox / "a.mp4").mkdir()
    make_video(fw.root / "src", "inside", 60).rename(inbox / "a.mp4" / "inside.mp4")
    stem = "S" * (255 - len(".mp4"))
    make_video(fw.root / "src", "long", 60).rename(inbox / f"{stem}.mp4")
    fw.start()
    deep = fw.wait_state("videos", "deep")
    assert "failed" == deep["state"], deep
    assert "deep.json is nested more than 16 levels deep" in deep["message"], deep
    assert "unexpected" not in deep["message"], deep
    folder = fw.wait_state("videos", "a")
    assert "failed" == folder["state"], folder
    assert "a.mp4 is a folder, not a .mp4 file" in folder["message"], folder
    assert (inbox / "a.mp4" / "inside.mp4").is_file()

    def long_status() -> dict[str, object] | None:
        for path in (fw.root / "status" / "videos").glob("S*~*.json"):
            data = json.loads(path.read_text())
            if data.get("state") in ("complete", "failed"):
                return dict(data, path=path.name)
        return None

    status = fw.wait_for(long_status, 60, "the status of the longest name")
    assert "complete" == status["state"] and stem == status["name"], status
    assert status["path"] == status["status_file"] and len(str(status["path"])) <= 255
    assert fw.bundle(stem).is_dir()
    assert 0 == fw.stop()


def test_unreadable_video_waits_as_a_permission_problem(fw: Framewatch) -> None:
    """A video the daemon's account cannot read (mode 000; the daemon runs without the
    capabilities that let root read anything) is not failed as "not a video": its status
    names the permission problem and it is tried again; once readable, it completes."""
    probe = fw.root / "probe"
    probe.write_text("x")
    probe.chmod(0)
    drop_caps = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv is needed to run the daemon without root's right to read all")
    if subprocess.run([*drop_caps, "cat", str(probe)], capture_output=True).returncode == 0:
        pytest.skip("this account reads a mode-000 file even without DAC capabilities")
    fw.command = lambda *args: [*drop_caps, *Framewatch.command(fw, *args)]  # type: ignore[method-assign]
    fw.settle_s = 0.3
    fw.extra_config = (
        FAST + "\n[retry]\nfirst_delay_s = 1\nmax_delay_s = 1\njitter = 0\nmax_attempts = 60\n"
    )
    fw.write_config()
    inbox = fw.inbox("videos")
    video = make_video(fw.root / "src", "locked", 60)
    video.chmod(0)
    video.rename(inbox / "locked.mp4")
    fw.start()
    status = fw.wait_for(
        lambda: (
            (s := fw.status("videos", "locked")) and "cannot be read" in s.get("message", "") and s
        ),
        60,
        "the status to name the permission problem",
    )
    assert "queued" == status["state"], status
    assert "Permission denied" in status["message"] and "chmod a+r locked.mp4" in status["message"]
    claimed = [p for p in (fw.root / "work").rglob("locked.mp4") if p.is_file()]
    assert 1 == len(claimed), claimed
    claimed[0].chmod(0o644)
    status = fw.wait_state("videos", "locked")
    assert "complete" == status["state"], status
    assert not (fw.root / "failed").exists() or not list((fw.root / "failed").rglob("locked*"))
    assert 0 == fw.stop()


def test_second_recording_of_a_stem_coming_later_keeps_both_outcomes(fw: Framewatch) -> None:
    """mouse4.mp4 is published; mouse4.avi (damaged) comes later: it goes by its whole file
    name, so its failure does not overwrite the published one's status (nor touch its
    bundle), and both stay visible."""
    fw.settle_s = 0.3
    fw.extra_config = FAST
    fw.write_config()
    inbox = fw.inbox("videos")
    fw.start()
    drop(make_video(fw.root / "src", "mouse4", 60), inbox)
    good = fw.wait_state("videos", "mouse4")
    assert "complete" == good["state"], good
    (inbox / "mouse4.avi").write_text("not a video\n" * 100)
    damaged = fw.wait_state("videos", "mouse4.avi")
    assert "failed" == damaged["state"], damaged
    assert "mouse4.avi could not be opened" in damaged["message"], damaged
    assert "complete" == fw.status("videos", "mouse4")["state"]  # type: ignore[index]
    assert (fw.failed("videos") / "mouse4.avi").is_file() and fw.bundle("mouse4").is_dir()
    assert 0 == fw.stop()
