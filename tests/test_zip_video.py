"""Zips checked against their video: real recordings, frames decoded in order from the start.

Handler-level cases call ``handle_zip`` with the video where the daemon would pass it
(``<project>/videos/STEM.mp4``); one case goes through a real daemon.
"""

from __future__ import annotations

import shutil
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from handlers.outcome import HandlerResult, InputError, ignore_progress
from handlers.zips import ZipOptions, handle_zip
from tests.harness import Framewatch, shared_file

OPENFIELD = "openfield/m3v1mp4.mp4"
MIRROR = "mirror-mouse/test_vid.mp4"
SELECTED = (40, 47)
CONTEXT = 2
Recording = tuple[Path, list[npt.NDArray[np.uint8]]]
FRAMES = sorted({i + d for i in SELECTED for d in range(-CONTEXT, CONTEXT + 1)})


def decode_in_order(video: Path, last: int) -> list[npt.NDArray[np.uint8]]:
    """Frames 0..last of ``video`` read one after the other from the start (no seeking)."""
    capture = cv2.VideoCapture(str(video))
    frames = []
    while len(frames) <= last:
        ok, frame = capture.read()
        assert ok, f"{video} ended before frame {last}"
        frames.append(frame)
    capture.release()
    return frames


def encode(image: npt.NDArray[np.uint8], jpeg_quality: int | None = None) -> bytes:
    """PNG bytes of ``image``, after a JPEG round trip at ``jpeg_quality`` when given."""
    if jpeg_quality is not None:
        _, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
        image = cv2.imdecode(jpeg, cv2.IMREAD_COLOR)
    _, data = cv2.imencode(".png", image)
    return data.tobytes()


def make_zip(path: Path, pictures: dict[int, bytes], selected: Sequence[int] = SELECTED) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for index, data in sorted(pictures.items()):
            archive.writestr(f"img{index:08d}.png", data)
        archive.writestr("selected_frames.csv", "".join(f"img{i:08d}.png\n" for i in selected))
    return path


def run_zip(tmp_path: Path, zip_path: Path, video: Path | None) -> HandlerResult:
    staging = tmp_path / "staging"
    staging.mkdir()
    options = ZipOptions(
        max_uncompressed_bytes=10**9,
        max_files=1000,
        max_ratio=1000,
        context_frames=CONTEXT,
        existing_bundle=tmp_path / "labeled-data" / zip_path.stem,
        video_candidates=(video,) if video else (),
        video_folder=str(tmp_path / "project" / "videos"),
    )
    return handle_zip([zip_path], options, staging, ignore_progress)


@pytest.fixture(scope="module")
def openfield() -> Recording:
    video = shared_file(OPENFIELD)
    return video, decode_in_order(video, max(FRAMES) + 1)


def test_exact_frames_pass(tmp_path: Path, openfield: Recording) -> None:
    video, frames = openfield
    zip_path = make_zip(tmp_path / "m3v1mp4.zip", {i: encode(frames[i]) for i in FRAMES})
    result = run_zip(tmp_path, zip_path, video)
    assert [] == result.warnings
    assert list(SELECTED) == result.selected
    assert {"video": "m3v1mp4.mp4", "identical": len(FRAMES), "mismatched": 0}.items() <= (
        result.report["video_check"].items()
    )


def test_frame_shifted_by_one_fails_naming_it(tmp_path: Path, openfield: Recording) -> None:
    video, frames = openfield
    pictures = {i: encode(frames[i]) for i in FRAMES}
    pictures[47] = encode(frames[48])  # a player one frame ahead
    zip_path = make_zip(tmp_path / "m3v1mp4.zip", pictures)
    with pytest.raises(InputError) as caught:
        run_zip(tmp_path, zip_path, video)
    assert [
        "img00000047.png is frame 48 of m3v1mp4.mp4: off by one (later in the video); "
        "export frame 47 again, counting frames from 0 in order"
    ] == caught.value.problems


def test_jpeg_round_trip_passes_with_a_warning(tmp_path: Path, openfield: Recording) -> None:
    video, frames = openfield
    pictures = {i: encode(frames[i], jpeg_quality=90) for i in FRAMES}
    zip_path = make_zip(tmp_path / "m3v1mp4.zip", pictures)
    result = run_zip(tmp_path, zip_path, video)
    assert 1 == len(result.warnings)
    assert result.warnings[0].startswith(
        f"{len(FRAMES)} of {len(FRAMES)} frames are not exact copies of their frames in "
        "m3v1mp4.mp4 but the same picture after lossy handling"
    ), result.warnings
    assert "lowest PSNR" in result.warnings[0]
    assert result.report["video_check"]["lowest_psnr_db"] >= 30


def test_zip_from_another_video_fails(tmp_path: Path, openfield: Recording) -> None:
    video, _ = openfield
    other = decode_in_order(shared_file(MIRROR), max(FRAMES))
    zip_path = make_zip(tmp_path / "m3v1mp4.zip", {i: encode(other[i]) for i in FRAMES})
    with pytest.raises(InputError) as caught:
        run_zip(tmp_path, zip_path, video)
    assert len(FRAMES) == len(caught.value.problems)
    assert caught.value.problems[0].startswith(
        "img00000038.png is not from this video: it matches none of frames 33 to 43 of m3v1mp4.mp4"
    ), caught.value.problems


def test_without_video_warns(tmp_path: Path, openfield: Recording) -> None:
    _, frames = openfield
    zip_path = make_zip(tmp_path / "m3v1mp4.zip", {i: encode(frames[i]) for i in FRAMES})
    result = run_zip(tmp_path, zip_path, None)
    assert [
        "the frames could not be checked against a video: no video named after the zip beside "
        f"it or in {tmp_path / 'project' / 'videos'}; drop the recording with the zip, or put it "
        "there, to have every frame checked"
    ] == result.warnings


def test_daemon_refuses_a_shifted_zip_and_takes_the_exact_one(
    tmp_path: Path, openfield: Recording
) -> None:
    video, frames = openfield
    with Framewatch(tmp_path / "fw") as fw:
        videos = fw.project / "videos"
        videos.mkdir(parents=True)
        for stem in ("good", "shifted"):
            shutil.copyfile(video, videos / f"{stem}.mp4")
        built = tmp_path / "built"
        built.mkdir()
        make_zip(built / "good.zip", {i: encode(frames[i]) for i in FRAMES})
        shifted = {i: encode(frames[i]) for i in FRAMES}
        shifted[40] = encode(frames[39])
        make_zip(built / "shifted.zip", shifted)
        fw.start()
        for stem in ("good", "shifted"):
            (built / f"{stem}.zip").rename(fw.inbox("zips") / f"{stem}.zip")
        good = fw.wait_state("zips", "good", timeout=120)
        bad = fw.wait_state("zips", "shifted", timeout=120)
        assert 0 == fw.stop()
    assert "complete" == good["state"], good
    assert [] == good["warnings"]
    assert "failed" == bad["state"], bad
    assert "img00000040.png is frame 39 of shifted.mp4: off by one (earlier" in bad["message"]
    assert not fw.bundle("shifted").exists()
    assert (fw.failed("zips") / "shifted.zip").is_file()


def test_daemon_checks_a_zip_against_the_video_dropped_with_it(
    tmp_path: Path, openfield: Recording
) -> None:
    """The video dropped beside its zip (or a moment after it, while the zip settles) is the
    one the frames are checked against: a shifted zip fails naming its frame, an exact one
    completes checked; each video then joins project/videos."""
    video, frames = openfield
    with Framewatch(tmp_path / "fw", settle_s=1.5) as fw:
        built = tmp_path / "built"
        built.mkdir()
        make_zip(built / "same.zip", {i: encode(frames[i]) for i in FRAMES})
        shifted = {i: encode(frames[i]) for i in FRAMES}
        shifted[47] = encode(frames[48])
        make_zip(built / "later.zip", shifted)
        for stem in ("same", "later"):
            shutil.copyfile(video, built / f"{stem}.mp4")
        inbox = fw.inbox("zips")
        fw.start()
        for name in ("same.zip", "same.mp4", "later.zip"):
            (built / name).rename(inbox / name)
        time.sleep(0.5)  # the video comes after its zip, within the zip's settle window
        (built / "later.mp4").rename(inbox / "later.mp4")
        same = fw.wait_state("zips", "same", timeout=120)
        later = fw.wait_state("zips", "later", timeout=120)
        assert 0 == fw.stop()
    assert "complete" == same["state"], same
    assert [] == same["warnings"]
    assert len(FRAMES) == same["report"]["video_check"]["identical"]
    assert (fw.project / "videos" / "same.mp4").is_file()
    assert "failed" == later["state"], later
    assert "img00000047.png is frame 48 of later.mp4: off by one" in later["message"]
    assert not fw.bundle("later").exists()
    assert (fw.failed("zips") / "later.mp4").is_file()


FLY = "fly-pair/clip.mp4"  # two flies, nearly still: neighbouring frames at 70-90 dB


def test_near_still_shifted_and_lossy_frame_is_named(tmp_path: Path) -> None:
    """In a nearly still stretch a JPEG round trip changes a frame far more than the next
    frame differs from it, so a shifted frame saved lossily is only a hair closer (in dB) to
    its true frame than to its number. It must still be named, not accepted as "lossy"; the
    same zip without the shift passes with the lossy warning."""
    video = shared_file(FLY)
    frames = decode_in_order(video, max(FRAMES) + 1)
    lossy = {i: encode(frames[i], jpeg_quality=90) for i in FRAMES}
    (tmp_path / "a").mkdir()
    plain = make_zip(tmp_path / "a" / "clip.zip", lossy)
    result = run_zip(tmp_path / "a", plain, video)
    assert 1 == len(result.warnings) and "after lossy handling" in result.warnings[0]
    shifted = {**lossy, 47: encode(frames[48], jpeg_quality=90)}
    (tmp_path / "b").mkdir()
    zip_path = make_zip(tmp_path / "b" / "clip.zip", shifted)
    with pytest.raises(InputError) as caught:
        run_zip(tmp_path / "b", zip_path, video)
    assert 1 == len(caught.value.problems), caught.value.problems
    assert caught.value.problems[0].startswith(
        "img00000047.png is frame 48 of clip.mp4: off by one (later in the video)"
    )
