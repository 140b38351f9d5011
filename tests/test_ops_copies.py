"""Hostile copies (issue 15): writers that hide their writes, pause, reopen or resume.

Every test drives a real daemon and checks what a rig user relies on: a recording is
published whole, from all of its frames, or not at all.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

from handlers.bundle import frame_index
from tests.harness import Framewatch
from tests.media import write_barcode_video
from tests.ops import bundle_selected, events

FAST = "\n[extract]\nframes_per_video = 4\ncontext_frames = 1\n"
CHUNKS = 6


def mjpg_video(folder: Path, name: str, frames: int) -> bytes:
    """The bytes of an MJPG .avi made by OpenCV (it decodes up to where a copy stopped)."""
    folder.mkdir(parents=True, exist_ok=True)
    return write_barcode_video(folder / name, frames, codec="mjpg-avi").read_bytes()


def pieces(data: bytes, count: int) -> list[tuple[int, bytes]]:
    step = -(-len(data) // count)
    return [(start, data[start : start + step]) for start in range(0, len(data), step)]


def test_writer_that_sets_mtime_back_is_not_taken_until_done(fw: Framewatch) -> None:
    """A copier that zero-fills the file, then writes it in place and sets the old mtime back
    after every write (size and mtime never change): taken only once the writes stop."""
    fw.settle_s = 1.0
    fw.extra_config = FAST
    fw.write_config()
    data = mjpg_video(fw.root / "src", "hidden", 240)
    fw.start()
    target = fw.inbox("videos") / "hidden.avi"
    target.write_bytes(bytes(len(data)))  # the final size, all written, no holes
    old = (1_600_000_000, 1_600_000_000)
    os.utime(target, old)
    fd = os.open(target, os.O_WRONLY)
    try:
        for offset, chunk in pieces(data, 16):
            for _ in range(2):  # several writes per piece: the copy goes on for ~5 s
                os.pwrite(fd, chunk, offset)
                os.fsync(fd)
                os.utime(target, old)
                time.sleep(0.15)
                assert target.exists(), "taken while still being written"
    finally:
        os.close(fd)
    status = fw.wait_state("videos", "hidden", timeout=120)
    assert "complete" == status["state"], status
    assert data == (fw.project / "videos" / "hidden.avi").read_bytes()
    assert 0 == fw.stop()


@pytest.mark.parametrize("sizing", ["truncate", "fallocate"])
def test_sized_first_copy_is_not_taken_while_unfilled(fw: Framewatch, sizing: str) -> None:
    """A copier that sizes the file first and fills it in place, pausing longer than settle_s
    between pieces: not taken while part of it is unwritten, then published whole."""
    fw.settle_s = 0.6
    fw.extra_config = FAST
    fw.write_config()
    data = mjpg_video(fw.root / "src", "sized", 300)
    target = fw.inbox("videos") / "sized.avi"
    with target.open("wb") as out:
        if sizing == "truncate":
            out.truncate(len(data))
        else:
            os.posix_fallocate(out.fileno(), 0, len(data))
    fd = os.open(target, os.O_RDONLY)
    try:
        if os.lseek(fd, 0, os.SEEK_HOLE) >= len(data):
            pytest.skip(f"this filesystem does not report a {sizing}d range as a hole")
    finally:
        os.close(fd)
    fw.start()
    fd = os.open(target, os.O_WRONLY)
    try:
        for offset, chunk in pieces(data, CHUNKS):
            os.pwrite(fd, chunk, offset)
            os.fsync(fd)
            if offset + len(chunk) < len(data):
                time.sleep(fw.settle_s * 3)  # a stall well beyond settle_s
                assert target.exists(), f"taken while unfilled ({offset + len(chunk)} bytes in)"
                status = fw.status("videos", "sized")
                assert status is not None and "Still being copied" in status["message"], status
    finally:
        os.close(fd)
    status = fw.wait_state("videos", "sized", timeout=120)
    assert "complete" == status["state"], status
    assert data == (fw.project / "videos" / "sized.avi").read_bytes()
    assert 1 == len(events(fw, "claimed", name="sized"))
    assert 0 == fw.stop()


RETRY = (
    FAST + "\n[retry]\nfirst_delay_s = 2\nmax_delay_s = 2\njitter = 0\nmax_attempts = {attempts}\n"
)


def test_copy_stalled_at_half_is_not_published_and_is_taken_whole(fw: Framewatch) -> None:
    """A copier holding the file open stalls at half, longer than settle_s (the claim takes
    the file), then writes the rest into the claimed file: no bundle of the half; the file
    goes back to settle, and the bundle is made from all 600 frames."""
    fw.settle_s = 0.6
    fw.extra_config = RETRY.format(attempts=8)
    fw.write_config()
    data = mjpg_video(fw.root / "src", "stalled", 600)
    fw.start()
    target = fw.inbox("videos") / "stalled.avi"
    with target.open("wb") as out:
        out.write(data[: len(data) // 2])
        out.flush()
        waiting = fw.wait_state("videos", "stalled", ("queued",), timeout=60)
        fw.wait_for(
            lambda: (
                "of the 600 frames" in (fw.status("videos", "stalled") or {}).get("message", "")
            ),
            60,
            "the status to say the recording is short",
        )
        assert not fw.bundle("stalled").exists()
        out.write(data[len(data) // 2 :])  # the copier wakes up and finishes, same open file
    status = fw.wait_state("videos", "stalled", timeout=120)
    assert "complete" == status["state"], (status, waiting)
    assert 600 == status["report"]["frame_count"]
    assert data == (fw.project / "videos" / "stalled.avi").read_bytes()
    assert 1 == len(events(fw, "complete", name="stalled"))
    assert events(fw, "changed after claim; put back to settle again", name="stalled")
    assert 0 == fw.stop()


def test_recording_that_stays_short_fails_saying_both_numbers(fw: Framewatch) -> None:
    """A copy cut at half for good: looked at again, then failed naming both frame counts;
    the file is kept in failed/ and nothing is published."""
    fw.settle_s = 0.3
    fw.extra_config = RETRY.format(attempts=2)
    fw.write_config()
    data = mjpg_video(fw.root / "src", "cut", 600)
    (fw.inbox("videos") / "cut.avi").write_bytes(data[: len(data) // 2])
    fw.start()
    status = fw.wait_state("videos", "cut", timeout=120)
    assert "failed" == status["state"], status
    assert re.search(r"only \d+ of the 600 frames", status["message"]), status
    assert 2 == len(events(fw, "started", name="cut"))
    assert (fw.failed("videos") / "cut.avi").read_bytes() == data[: len(data) // 2]
    assert not fw.bundle("cut").exists()
    assert 0 == fw.stop()


def wait_short(fw: Framewatch, name: str, frames: int) -> None:
    fw.wait_for(
        lambda: f"of the {frames} frames" in (fw.status("videos", name) or {}).get("message", ""),
        60,
        "the status to say the recording is short",
    )


def superseded(fw: Framewatch, name: str) -> list[Path]:
    return sorted((fw.root / "archive" / "superseded" / "videos").glob(f"{name}*"))


def test_rsync_partial_resumed_is_joined_to_its_first_part(fw: Framewatch) -> None:
    """rsync --partial cut at a third leaves the part under the final name (taken: it is
    short); resumed, rsync writes the whole file under a hidden name and renames it over the
    name. The whole file is the rest of the first part: one intact recording, one bundle from
    all 600 frames, and the part kept aside, named in the status."""
    fw.settle_s = 0.6
    fw.extra_config = RETRY.format(attempts=8)
    fw.write_config()
    data = mjpg_video(fw.root / "src", "rs", 600)
    part = data[: len(data) // 3]
    fw.start()
    inbox = fw.inbox("videos")
    (inbox / "rs.avi").write_bytes(part)
    wait_short(fw, "rs", 600)
    hidden = inbox / ".rs.avi.Xy12Ab"
    hidden.write_bytes(data)
    hidden.rename(inbox / "rs.avi")
    status = fw.wait_state("videos", "rs", timeout=120)
    assert "complete" == status["state"], status
    assert 600 == status["report"]["frame_count"]
    assert data == (fw.project / "videos" / "rs.avi").read_bytes()
    kept = superseded(fw, "rs")
    assert [part] == [path.read_bytes() for path in kept]
    assert any("is the rest of the copy" in w and str(kept[0]) in w for w in status["warnings"])
    assert ["rs"] == sorted(p.name for p in (fw.project / "labeled-data").iterdir())
    assert not list((fw.root / "failed").rglob("rs*"))
    assert 1 == len(events(fw, "rest of an earlier copy", name="rs"))
    assert 0 == fw.stop()


def test_copier_reopening_by_path_after_a_stall_gives_one_recording(fw: Framewatch) -> None:
    """A copier writes a third, stalls (the file is taken: short), then reopens the path and
    writes the rest at its offsets (dd seek=N conv=notrunc): the new file starts with a hole
    where the first third was. It is joined to the first third, not taken as a second half."""
    fw.settle_s = 0.6
    fw.extra_config = RETRY.format(attempts=8)
    fw.write_config()
    data = mjpg_video(fw.root / "src", "dd", 600)
    third = len(data) // 3
    fw.start()
    target = fw.inbox("videos") / "dd.avi"
    target.write_bytes(data[:third])
    wait_short(fw, "dd", 600)
    assert not target.exists()
    fd = os.open(target, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for offset, chunk in pieces(data[third:], 4):
            os.pwrite(fd, chunk, third + offset)
            os.fsync(fd)
            time.sleep(0.1)
    finally:
        os.close(fd)
    status = fw.wait_state("videos", "dd", timeout=120)
    assert "complete" == status["state"], status
    assert 600 == status["report"]["frame_count"]
    assert data == (fw.project / "videos" / "dd.avi").read_bytes()
    assert [data[:third]] == [path.read_bytes() for path in superseded(fw, "dd")]
    assert ["dd"] == sorted(p.name for p in (fw.project / "labeled-data").iterdir())
    assert 0 == fw.stop()


def without_frame_counts(data: bytes) -> bytes:
    """An .avi whose header does not say how many frames it holds (both counts zero), as a
    capture program writes until it closes the file: a part of it decodes as a whole."""
    patched = bytearray(data)
    for tag, at in ((b"avih", 16), (b"strh", 32)):
        start = patched.find(tag) + 8 + at
        patched[start : start + 4] = bytes(4)
    return bytes(patched)


def test_rest_of_a_published_part_replaces_it_and_its_bundle(fw: Framewatch) -> None:
    """A part that says nothing of its length is published; the whole file then arrives under
    its name (rsync --partial resumed). The part and its bundle are set aside, the whole
    recording takes its place in project/videos, and one bundle is made from it."""
    fw.settle_s = 0.6
    fw.extra_config = FAST
    fw.write_config()
    data = without_frame_counts(mjpg_video(fw.root / "src", "pub", 300))
    part = data[: len(data) // 3]
    fw.start()
    inbox = fw.inbox("videos")
    (inbox / "pub.avi").write_bytes(part)
    first = fw.wait_state("videos", "pub", timeout=120)
    assert "complete" == first["state"], first
    assert first["report"]["frame_count"] < 150
    hidden = inbox / ".pub.avi.Qw34Er"
    hidden.write_bytes(data)
    hidden.rename(inbox / "pub.avi")
    status = fw.wait_for(
        lambda: (
            (s := fw.status("videos", "pub"))
            and s.get("report", {}).get("frame_count") == 300
            and s
        ),
        120,
        "the bundle of the whole recording",
    )
    assert "complete" == status["state"], status
    assert data == (fw.project / "videos" / "pub.avi").read_bytes()
    aside = fw.root / "archive" / "superseded" / "videos"
    assert part == (aside / "pub.avi").read_bytes()
    assert (aside / "bundles" / "pub").is_dir()
    assert any(str(aside / "bundles" / "pub") in w for w in status["warnings"])
    assert ["pub"] == sorted(p.name for p in (fw.project / "labeled-data").iterdir())
    frames = {frame_index(row.split(",")[0]) for row in bundle_selected(fw, "pub")} - {None}
    assert max(f for f in frames if f is not None) >= 150  # past the part's end: the whole
    pngs = {frame_index(path.name) for path in fw.bundle("pub").glob("img*.png")}
    assert pngs == {f + d for f in frames if f is not None for d in (-1, 0, 1)}, "part's frames"
    assert 0 == fw.stop()


def test_mp4_without_its_index_yet_waits_and_is_taken_whole(fw: Framewatch) -> None:
    """An .mp4 copy that stalls before its index (moov, written last) cannot be opened; it is
    not failed as damaged but waits, and when the copier writes on into the taken file it
    goes back to settle and is published from all its frames; nothing lands in failed/."""
    fw.settle_s = 0.6
    fw.extra_config = RETRY.format(attempts=8)
    fw.write_config()
    (fw.root / "src").mkdir()
    data = write_barcode_video(fw.root / "src" / "nomoov", 300).read_bytes()
    assert data.find(b"moov") > len(data) // 2
    fw.start()
    target = fw.inbox("videos") / "nomoov.mp4"
    with target.open("wb") as out:
        out.write(data[: len(data) // 2])
        out.flush()
        fw.wait_for(
            lambda: "has no index yet" in (fw.status("videos", "nomoov") or {}).get("message", ""),
            60,
            "the status to say the index is missing",
        )
        assert "queued" == fw.status("videos", "nomoov")["state"]  # type: ignore[index]
        out.write(data[len(data) // 2 :])
    status = fw.wait_state("videos", "nomoov", timeout=120)
    assert "complete" == status["state"], status
    assert 300 == status["report"]["frame_count"]
    assert data == (fw.project / "videos" / "nomoov.mp4").read_bytes()
    assert not (fw.root / "failed").exists() or not list((fw.root / "failed").rglob("nomoov*"))
    assert 0 == fw.stop()


def test_mp4_that_never_gets_its_index_fails_saying_so(fw: Framewatch) -> None:
    """An .mp4 cut before its index for good is failed after its looks, saying the index is
    missing (not that it is no video), and kept in failed/."""
    fw.settle_s = 0.3
    fw.extra_config = RETRY.format(attempts=2)
    fw.write_config()
    (fw.root / "src").mkdir()
    data = write_barcode_video(fw.root / "src" / "cutmp4", 120).read_bytes()
    (fw.inbox("videos") / "cutmp4.mp4").write_bytes(data[: len(data) // 2])
    fw.start()
    status = fw.wait_state("videos", "cutmp4", timeout=120)
    assert "failed" == status["state"], status
    assert "has no index yet" in status["message"], status
    assert 2 == len(events(fw, "started", name="cutmp4"))
    assert (fw.failed("videos") / "cutmp4.mp4").read_bytes() == data[: len(data) // 2]
    assert 0 == fw.stop()


def restart(fw: Framewatch, kill: bool) -> None:
    """Stop the daemon (SIGTERM, or kill -9) and start a new one on the same root."""
    if kill:
        fw.kill()
    else:
        assert 0 == fw.stop()
    started = len(events(fw, "watching"))
    fw.start()
    fw.wait_for(lambda: len(events(fw, "watching")) > started, 60, "the new daemon to watch")


def test_rest_after_a_restart_is_joined_to_the_published_part(fw: Framewatch) -> None:
    """The part of a copy is published, the daemon is restarted, then rsync --partial resumed
    renames the whole file over the name: the new daemon still knows the part (the memory of
    what was taken is kept in work/rejoin/), sets it and its bundle aside, and makes one
    bundle from the whole recording."""
    fw.settle_s = 0.6
    fw.extra_config = FAST
    fw.write_config()
    data = without_frame_counts(mjpg_video(fw.root / "src", "rp", 300))
    part = data[: len(data) // 3]
    fw.start()
    inbox = fw.inbox("videos")
    (inbox / "rp.avi").write_bytes(part)
    first = fw.wait_state("videos", "rp", timeout=120)
    assert "complete" == first["state"] and first["report"]["frame_count"] < 150, first
    restart(fw, kill=False)
    hidden = inbox / ".rp.avi.Zx56Cv"
    hidden.write_bytes(data)
    hidden.rename(inbox / "rp.avi")
    status = fw.wait_for(
        lambda: (
            (s := fw.status("videos", "rp")) and s.get("report", {}).get("frame_count") == 300 and s
        ),
        120,
        "the bundle of the whole recording",
    )
    assert "complete" == status["state"], status
    assert data == (fw.project / "videos" / "rp.avi").read_bytes()
    assert ["rp.avi"] == sorted(p.name for p in (fw.project / "videos").iterdir())
    aside = fw.root / "archive" / "superseded" / "videos"
    assert part == (aside / "rp.avi").read_bytes()
    assert (aside / "bundles" / "rp").is_dir()
    assert any("is the rest of the copy" in w for w in status["warnings"]), status
    assert ["rp"] == sorted(p.name for p in (fw.project / "labeled-data").iterdir())
    assert 0 == fw.stop()


def test_rest_after_a_crash_is_joined_to_the_part_still_waiting(fw: Framewatch) -> None:
    """A third of a copy is taken (short, it waits), the daemon is killed (kill -9) and
    restarted, then the copier reopens the path and writes the rest at its offsets: the new
    daemon adopts the waiting part, recognises the sparse new file as its rest, and publishes
    one intact recording."""
    fw.settle_s = 0.6
    fw.extra_config = RETRY.format(attempts=8)
    fw.write_config()
    data = mjpg_video(fw.root / "src", "dk", 600)
    third = len(data) // 3
    fw.start()
    target = fw.inbox("videos") / "dk.avi"
    target.write_bytes(data[:third])
    wait_short(fw, "dk", 600)
    restart(fw, kill=True)
    fw.wait_for(lambda: events(fw, "adopted", name="dk"), 60, "the part to be adopted")
    fd = os.open(target, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for offset, chunk in pieces(data[third:], 4):
            os.pwrite(fd, chunk, third + offset)
            os.fsync(fd)
            time.sleep(0.1)
    finally:
        os.close(fd)
    status = fw.wait_for(
        lambda: (s := fw.status("videos", "dk")) and s["state"] in ("complete", "failed") and s,
        120,
        "the recording to be done",
    )
    assert "complete" == status["state"], status
    assert 600 == status["report"]["frame_count"]
    assert data == (fw.project / "videos" / "dk.avi").read_bytes()
    assert [data[:third]] == [path.read_bytes() for path in superseded(fw, "dk")]
    assert ["dk"] == sorted(p.name for p in (fw.project / "labeled-data").iterdir())
    assert 0 == fw.stop()


APP_PROJECT = "schema_version: 1\nview_names: []\nkeypoint_names:\n  - nose\n  - tail_base\n"
QUEUE = "CollectedData.unlabeled.jsonl"


def test_rest_of_a_published_part_takes_its_frames_off_the_app_queue(fw: Framewatch) -> None:
    """In a Lightning Pose app project, the part of a copy is published and its frames are
    queued to label; one is labeled meanwhile. When the rest replaces the part, the part's
    frames still waiting leave the queue (their images went aside with its bundle); the
    labeled one and another video's lines stay; every queued frame of the video is an image
    of the new bundle."""
    fw.settle_s = 0.6
    fw.extra_config = FAST
    fw.write_config()
    fw.project.mkdir(parents=True, exist_ok=True)
    (fw.project / "project.yaml").write_text(APP_PROJECT)
    data = without_frame_counts(mjpg_video(fw.root / "src", "lq", 300))
    fw.start()
    inbox = fw.inbox("videos")
    (inbox / "lq.avi").write_bytes(data[: len(data) // 3])
    first = fw.wait_state("videos", "lq", timeout=120)
    assert "complete" == first["state"], first
    queue = fw.project / QUEUE
    old = [json.loads(line)["frame_path"] for line in queue.read_text().splitlines()]
    assert len(old) >= 2, old
    labeled = old[0]
    with (fw.project / "CollectedData.csv").open("a") as labels:
        labels.write(f"{labeled},10,20,30,40\n")
    other = json.dumps({"frame_path": "labeled-data/other/img00000007.png", "predictions": None})
    queue.write_text(queue.read_text() + other + "\n")
    hidden = inbox / ".lq.avi.Rt78Yu"
    hidden.write_bytes(data)
    hidden.rename(inbox / "lq.avi")
    status = fw.wait_for(
        lambda: (
            (s := fw.status("videos", "lq")) and s.get("report", {}).get("frame_count") == 300 and s
        ),
        120,
        "the bundle of the whole recording",
    )
    assert "complete" == status["state"], status
    assert any("taken off the queue" in w for w in status["warnings"]), status
    paths = [json.loads(line)["frame_path"] for line in queue.read_text().splitlines()]
    assert labeled in paths and "labeled-data/other/img00000007.png" in paths, paths
    mine = [p for p in paths if p.startswith("labeled-data/lq/") and p != labeled]
    assert mine and all((fw.project / p).is_file() for p in mine), paths
    assert 0 == fw.stop()


def test_mp4_written_on_inside_failed_is_put_back_and_taken_whole(fw: Framewatch) -> None:
    """An .mp4 copy stalls before its index and is failed for it at once (max_attempts 1);
    the copier, still holding the file open, then finishes it inside failed/. The file is put
    back in the inbox, taken again and published from all its frames; failed/ ends empty."""
    fw.settle_s = 0.6
    fw.extra_config = RETRY.format(attempts=1)
    fw.write_config()
    (fw.root / "src").mkdir()
    data = write_barcode_video(fw.root / "src" / "late", 300).read_bytes()
    fw.start()
    target = fw.inbox("videos") / "late.mp4"
    with target.open("wb") as out:
        out.write(data[: len(data) // 2])
        out.flush()
        failed = fw.wait_state("videos", "late", timeout=120)
        assert "failed" == failed["state"] and "has no index yet" in failed["message"], failed
        assert (fw.failed("videos") / "late.mp4").is_file()
        out.write(data[len(data) // 2 :])
    status = fw.wait_for(
        lambda: (s := fw.status("videos", "late")) and s["state"] == "complete" and s,
        120,
        "the whole recording to be published",
    )
    assert 300 == status["report"]["frame_count"], status
    assert data == (fw.project / "videos" / "late.mp4").read_bytes()
    assert not list(fw.failed("videos").iterdir())
    assert events(fw, "written on in failed/; put back", name="late.mp4")
    assert 0 == fw.stop()
