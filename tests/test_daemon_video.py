"""A real `framewatch run` / `framewatch once` process turning video drops into bundles."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import cv2
import pytest

from handlers.bundle import frame_index
from tests.harness import Framewatch, shared_file
from tests.media import read_barcode, write_barcode_video


def make_video(folder: Path, name: str, frames: int, **kwargs: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return write_barcode_video(folder / name, frames, **kwargs)  # type: ignore[arg-type]


def drop(source: Path, inbox: Path, name: str | None = None) -> Path:
    """Move a finished file into the inbox in one rename, as a copy tool's final step does."""
    target = inbox / (name or source.name)
    os.replace(source, target)
    return target


def assert_exact_bundle(bundle: Path, selected: int, context: int = 2) -> None:
    lines = (bundle / "selected_frames.csv").read_text().splitlines()
    assert selected == len(lines)
    assert lines == sorted(lines)
    written = {frame_index(p.name) for p in bundle.glob("img*.png")}
    for line in lines:
        index = frame_index(line)
        assert index is not None
        assert set(range(index - context, index + context + 1)) <= written
    for png in bundle.glob("img*.png"):
        assert frame_index(png.name) == read_barcode(cv2.imread(str(png))), png.name


def test_slow_copy_is_left_alone_until_complete(fw: Framewatch) -> None:
    """A video growing chunk by chunk is not claimed until it has been still for settle_s."""
    fw.settle_s = 1.5
    fw.write_config()
    fw.start()
    data = make_video(fw.root / "src", "slow", 300).read_bytes()
    target = fw.inbox("videos") / "slow.mp4"
    with target.open("wb") as out:
        for start in range(0, len(data), len(data) // 8):
            out.write(data[start : start + len(data) // 8])
            out.flush()
            time.sleep(0.4)
            assert target.exists(), "claimed while still being copied"
            # Listed as arriving (issue 16) once a scan saw it, never queued or further.
            assert (fw.status("videos", "slow") or {}).get("state", "arriving") == "arriving"
    status = fw.wait_state("videos", "slow")
    assert "complete" == status["state"], status
    assert "Proceed to the next tab to label frames." == status["message"]
    assert 20 == status["frames_selected"]
    assert "labeled-data/slow" == status["bundle"]
    assert_exact_bundle(fw.bundle("slow"), 20)
    assert (fw.project / "videos" / "slow.mp4").read_bytes() == data
    assert not target.exists()
    assert 0 == fw.stop()


def test_status_goes_queued_processing_complete(fw: Framewatch) -> None:
    """With one worker, one video waits queued while the other is processed, progress climbing."""
    fw.config.write_text(fw.config.read_text().replace("max_workers = 2", "max_workers = 1"))
    seen: dict[str, list[tuple[str, float]]] = {"first": [], "second": []}
    pairs: set[tuple[str, str]] = set()
    done = threading.Event()

    def watch_status() -> None:
        while not done.is_set():
            now = {name: fw.status("videos", name) for name in seen}
            for name, status in now.items():
                states = seen[name]
                if status and (not states or states[-1] != (status["state"], status["progress"])):
                    states.append((status["state"], status["progress"]))
            pairs.add(tuple(str(s["state"]) if s else "-" for s in now.values()))  # type: ignore[arg-type]
            time.sleep(0.02)

    watcher = threading.Thread(target=watch_status, daemon=True)
    watcher.start()
    source = fw.root / "src"
    videos = [make_video(source, name, 3000, width=320, height=240) for name in seen]
    fw.start()
    for video in videos:
        drop(video, fw.inbox("videos"))
    fw.wait_state("videos", "first", timeout=180)
    fw.wait_state("videos", "second", timeout=180)
    done.set()
    watcher.join()
    for name, states in seen.items():
        final = fw.status("videos", name)
        assert final is not None
        if states[-1] != (final["state"], final["progress"]):
            states.append((final["state"], final["progress"]))
        order = [state for state, _ in states]
        assert "complete" == order[-1], (name, states)
        assert "processing" in order, (name, states)
        assert order.index("processing") < order.index("complete")
        progress = [p for state, p in states if state == "processing"]
        assert progress == sorted(progress), (name, states)
        assert len(set(progress)) >= 3, (name, states)
    assert {("processing", "queued"), ("queued", "processing")} & pairs, sorted(pairs)


def test_bad_files_fail_with_a_message_and_are_kept(fw: Framewatch) -> None:
    """Each bad drop ends failed in failed/videos/ with a message; a good one still completes."""
    inbox = fw.inbox("videos")
    source = fw.root / "src"
    (inbox / "text.mp4").write_text("this is not a video\n" * 100)
    (inbox / "empty.mkv").write_bytes(b"")
    whole = make_video(source, "whole", 200)
    (inbox / "truncated.mp4").write_bytes(whole.read_bytes()[: whole.stat().st_size // 3])
    drop(make_video(source, "short", 10), inbox)
    drop(make_video(source, "badjson", 100), inbox)
    (inbox / "badjson.json").write_text("{frames_per_video: 5")
    drop(make_video(source, "badrange", 100), inbox)
    (inbox / "badrange.json").write_text(json.dumps({"frame_range": [0.9, 0.1], "frames": 3}))
    drop(make_video(source, "good", 200), inbox)
    fw.extra_config += "\n[retry]\nmax_attempts = 1\n"  # a cut .mp4 waits for its index first
    fw.write_config()
    fw.start()
    expectations = {
        "text": ("text.mp4", r"could not be opened as a video"),
        "empty": ("empty.mkv", r"could not be opened as a video|holds no frame"),
        "truncated": ("truncated.mp4", r"has no index yet"),
        "short": ("short.mp4", r"asked for 20 frames, but the video holds only 6"),
        "badjson": ("badjson.json", r"not valid JSON"),
        "badrange": ("badrange.json", r"frame_range.*0 <= start < end <= 1"),
    }
    for name, (kept, pattern) in expectations.items():
        status = fw.wait_state("videos", name)
        assert "failed" == status["state"], status
        assert pytest.approx(0.0, abs=1.0) == status["progress"]
        import re

        assert re.search(pattern, status["message"]), status["message"]
        assert (fw.failed("videos") / kept).exists(), list(fw.failed("videos").iterdir())
    both = fw.status("videos", "badrange")
    assert both is not None
    assert 2 == len(both["problems"]), both  # the bad range and the unknown key, together
    assert "complete" == fw.wait_state("videos", "good")["state"]
    assert [] == list(inbox.iterdir())
    assert fw.process is not None and fw.process.poll() is None
    assert 0 == fw.stop()


def test_temporary_and_other_names_are_ignored(fw: Framewatch) -> None:
    """Partial downloads, hidden files and non-video files stay untouched in the inbox."""
    inbox = fw.inbox("videos")
    source = fw.root / "src"
    ignored = [
        ".mouse.mp4.AbC123",
        "mouse.mp4.part",
        "mouse.mp4.partial",
        "mouse.mp4.tmp",
        "mouse.mp4.crdownload",
        "~mouse.mp4",
        ".syncthing.mouse.mp4.tmp",
        "notes.txt",
        "mouse.h264",
    ]
    payload = make_video(source, "payload", 100).read_bytes()
    for name in ignored:
        (inbox / name).write_bytes(payload)
    drop(make_video(source, "real", 100), inbox, "REAL.MP4")
    fw.start()
    assert "complete" == fw.wait_state("videos", "REAL")["state"]
    time.sleep(1.0)
    assert sorted(ignored) == sorted(p.name for p in inbox.iterdir())
    assert ["REAL.json"] == [p.name for p in (fw.root / "status" / "videos").iterdir()]


def test_restart_finishes_what_a_killed_daemon_left(fw: Framewatch) -> None:
    """kill -9 during extraction; the next start redoes the item and publishes it once."""
    drop(make_video(fw.root / "src", "long", 6000, width=320, height=240), fw.inbox("videos"))
    fw.start()
    fw.wait_state("videos", "long", states=("processing",))
    fw.kill()
    assert not (fw.bundle("long") / "selected_frames.csv").exists()
    fw.start()
    status = fw.wait_state("videos", "long", timeout=180)
    assert "complete" == status["state"], status
    assert_exact_bundle(fw.bundle("long"), 20)
    assert 20 + 0 <= len(list(fw.bundle("long").glob("img*.png"))) <= 100
    assert ["long.mp4"] == [p.name for p in (fw.project / "videos").iterdir()]
    claims = fw.root / "work" / "claims"
    assert [] == [p for p in claims.rglob("*") if p.is_file() and p.name != "owner.json"]
    assert 0 == fw.stop()


def test_sigterm_puts_unfinished_work_back(fw: Framewatch) -> None:
    """SIGTERM with a zero grace period returns the claimed video to the inbox and exits 0."""
    fw.stop_grace_s = 0.0
    fw.write_config()
    drop(make_video(fw.root / "src", "long", 6000, width=320, height=240), fw.inbox("videos"))
    fw.start()
    fw.wait_state("videos", "long", states=("processing",))
    assert 0 == fw.stop()
    assert (fw.inbox("videos") / "long.mp4").exists()
    status = fw.status("videos", "long")
    assert status is not None and "queued" == status["state"], status
    assert not fw.bundle("long").exists()


def test_second_video_with_same_stem_adds_frames(fw: Framewatch) -> None:
    """A second drop of a video adds new frames, keeps every old file and the old CSV."""
    video = make_video(fw.root / "src", "mouse", 600)
    payload = video.read_bytes()
    drop(video, fw.inbox("videos"))
    result = fw.once()
    assert 0 == result.returncode, result.stdout + result.stderr
    bundle = fw.bundle("mouse")
    before = {p.name: p.read_bytes() for p in bundle.iterdir()}
    (fw.inbox("videos") / "mouse.mp4").write_bytes(payload)
    (fw.inbox("videos") / "mouse.json").write_text(json.dumps({"frames_per_video": 5}))
    result = fw.once()
    assert 0 == result.returncode, result.stdout + result.stderr
    after = {p.name: p.read_bytes() for p in bundle.iterdir()}
    for name, content in before.items():
        if name != "selected_frames.csv":
            assert content == after[name], name
    old_lists = [
        name
        for name in after
        if name.startswith("selected_frames.") and name != "selected_frames.csv"
    ]
    assert 1 == len(old_lists), sorted(after)
    assert before["selected_frames.csv"] == after[old_lists[0]]
    new = after["selected_frames.csv"].decode().splitlines()
    assert 5 == len(new)
    assert set() == set(new) & set(before["selected_frames.csv"].decode().splitlines())
    assert_exact_bundle(bundle, 5)
    kept_videos = sorted(p.name for p in (fw.project / "videos").iterdir())
    assert 2 == len(kept_videos), kept_videos


def test_once_exit_status_and_status_table(fw: Framewatch) -> None:
    """`once` exits 0 when all went well, 1 when an item failed; `status` lists both."""
    drop(make_video(fw.root / "src", "ok", 150), fw.inbox("videos"))
    first = fw.once()
    assert 0 == first.returncode, first.stdout + first.stderr
    (fw.inbox("videos") / "broken.avi").write_text("garbage")
    second = fw.once()
    assert 1 == second.returncode, second.stdout + second.stderr
    table = fw.cli("status")
    assert 0 == table.returncode
    rows = {line.split()[1]: line.split()[2] for line in table.stdout.splitlines()[1:]}
    assert {"ok": "complete", "broken": "failed"} == rows


def test_once_leaves_a_copy_in_progress(fw: Framewatch) -> None:
    """A file still growing while `once` looks is left in the inbox for the next pass."""
    fw.settle_s = 1.0
    fw.write_config()
    payload = make_video(fw.root / "src", "growing", 300).read_bytes()
    target = fw.inbox("videos") / "growing.mp4"
    stop = threading.Event()

    def grow() -> None:
        # Grows until `once` has returned, however slowly it starts on a loaded machine.
        with target.open("wb") as out:
            start = 0
            while not stop.is_set():
                out.write(payload[start : start + 2048] or bytes(2048))
                out.flush()
                start += 2048
                time.sleep(0.05)

    writer = threading.Thread(target=grow)
    writer.start()
    try:
        result = fw.once()
    finally:
        stop.set()
        writer.join()
    assert 0 == result.returncode, result.stdout + result.stderr
    assert target.exists()
    # Left for the next pass, and its status says it is still being copied (issue 16).
    assert (fw.status("videos", "growing") or {}).get("state", "arriving") == "arriving"


def test_real_recording_through_the_daemon(fw: Framewatch) -> None:
    """The openfield H.264 recording comes out as a complete bundle of exact frames."""
    source = shared_file("openfield/m3v1mp4.mp4")
    (fw.inbox("videos") / "openfield.mp4").write_bytes(source.read_bytes())
    result = fw.once()
    assert 0 == result.returncode, result.stdout + result.stderr
    status = fw.status("videos", "openfield")
    assert status is not None and "complete" == status["state"]
    assert 2330 == status["report"]["frame_count"]
    bundle = fw.bundle("openfield")
    capture = cv2.VideoCapture(str(source))
    wanted = {frame_index(p.name): p for p in bundle.glob("img*.png")}
    index = 0
    while wanted:
        ok, frame = capture.read()
        assert ok, f"video ended before frames {sorted(wanted)}"
        png = wanted.pop(index, None)
        if png is not None:
            assert (frame == cv2.imread(str(png))).all(), png.name
        index += 1


def test_odd_file_names_do_not_stop_the_daemon(fw: Framewatch) -> None:
    """Spaces, accents, a leading dash and bytes that are not UTF-8 all end complete."""
    inbox = fw.inbox("videos")
    payload = make_video(fw.root / "src", "payload", 60).read_bytes()
    names = [b"mouse 1 (copy).mp4", "souris-été.mp4".encode(), b"-dash.mp4", b"bad\xffbyte.mp4"]
    for raw in names:
        with open(os.fsencode(inbox) + b"/" + raw, "wb") as out:
            out.write(payload)
    fw.config.write_text(
        fw.config.read_text() + "[extract]\nframes_per_video = 3\ncontext_frames = 0\n"
    )
    fw.start()
    for raw in names:
        stem = os.fsdecode(raw)[: -len(".mp4")]
        assert "complete" == fw.wait_state("videos", stem)["state"], stem
        assert 3 == len(list(fw.bundle(stem).glob("img*.png")))
    assert fw.process is not None and fw.process.poll() is None
    assert 0 == fw.stop()
