"""Frame-list drops: STEM.csv of frame numbers or times becomes a bundle of exactly those frames.

Bundles are compared, pixel for pixel, with the recording decoded in order from the start.
Handler-level cases for every kind of bad list; one case through a real daemon, with the
video dropped beside the list.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from handlers.framelists import FrameListOptions, handle_framelist
from handlers.outcome import HandlerResult, InputError, ignore_progress
from tests.harness import Framewatch, shared_file

MIRROR = "mirror-mouse/test_vid.mp4"  # 250 fps: frame i is at i * 4 ms
CONTEXT = 1
Frames = dict[int, npt.NDArray[np.uint8]]


def decode_in_order(video: Path, last: int) -> Frames:
    capture = cv2.VideoCapture(str(video))
    frames: Frames = {}
    while len(frames) <= last:
        ok, frame = capture.read()
        assert ok
        frames[len(frames)] = frame
    capture.release()
    return frames


def run_list(
    tmp_path: Path, text: str, video: Path | None, stem: str = "test_vid"
) -> HandlerResult:
    listing = tmp_path / f"{stem}.csv"
    listing.write_text(text, encoding="utf-8")
    staging = tmp_path / "staging"
    staging.mkdir()
    options = FrameListOptions(
        context_frames=CONTEXT,
        video_candidates=(video,) if video else (),
        video_folder="project/videos",
    )
    return handle_framelist([listing], options, staging, ignore_progress)


def assert_exact_bundle(folder: Path, selected: list[int], frames: Frames) -> None:
    """The PNGs are exactly the selected frames and their context, as decoded in order."""
    wanted = sorted({i + d for i in selected for d in range(-CONTEXT, CONTEXT + 1)})
    pngs = sorted(p.name for p in folder.glob("*.png"))
    assert [f"img{i:08d}.png" for i in wanted] == pngs
    for index in wanted:
        image = cv2.imread(str(folder / f"img{index:08d}.png"), cv2.IMREAD_COLOR)
        assert np.array_equal(frames[index], image), index
    expected = "".join(f"img{i:08d}.png\n" for i in sorted(selected))
    assert expected == (folder / "selected_frames.csv").read_text()


@pytest.fixture(scope="module")
def mirror() -> tuple[Path, Frames]:
    video = shared_file(MIRROR)
    return video, decode_in_order(video, 701)


def test_numbers_give_exact_frames(tmp_path: Path, mirror: tuple[Path, Frames]) -> None:
    video, frames = mirror
    result = run_list(tmp_path, "frame\n700\n10\r\n\n355\n", video)
    assert [10, 355, 700] == result.selected
    assert [] == result.warnings
    assert_exact_bundle(tmp_path / "staging", [10, 355, 700], frames)


def test_times_give_exact_frames(tmp_path: Path, mirror: tuple[Path, Frames]) -> None:
    video, frames = mirror
    result = run_list(tmp_path, "time_s\n0.04\n1.2\n2.8\n", video)
    assert [10, 300, 700] == result.selected
    assert "time_s" == result.report["column"]
    assert_exact_bundle(tmp_path / "staging", [10, 300, 700], frames)


@pytest.mark.parametrize(
    ("text", "problems"),
    [
        (
            "frame\n5\n994\n",
            [
                "test_vid.csv line 3: frame 994 is past the end of test_vid.mp4, which has 994 "
                "frames (0 to 993)"
            ],
        ),
        (
            "frame\n5\n7\n5\n",
            ["test_vid.csv line 4 repeats frame 5 (already on line 2)"],
        ),
        (
            "time_s\n0.02\n0.022\n",
            [
                "test_vid.csv line 3: 0.022 s falls between frame 5 (0.0200 s) and frame 6 "
                "(0.0240 s) of test_vid.mp4; give the time of one frame, or use a 'frame' column"
            ],
        ),
        (
            "frames\n5\n",
            [
                "test_vid.csv line 1: expected the header 'frame' (frame numbers, from 0) or "
                "'time_s' (seconds from the start), but got 'frames'"
            ],
        ),
        (
            "frame\n5\nten\n2.5\n-1\n",
            [
                "test_vid.csv line 3: expected a frame number (0, 1, 2, ...), but got 'ten'",
                "test_vid.csv line 4: expected a frame number (0, 1, 2, ...), but got '2.5'",
                "test_vid.csv line 5: expected a frame number (0, 1, 2, ...), but got '-1'",
            ],
        ),
        (
            "time_s\n4.5\n",
            ["test_vid.csv line 2: 4.5 s is past the last frame of test_vid.mp4 (at 3.9720 s)"],
        ),
    ],
    ids=["out-of-range", "duplicate", "between-frames", "bad-header", "not-numbers", "late"],
)
def test_bad_lists_fail_naming_the_line(
    tmp_path: Path, mirror: tuple[Path, Frames], text: str, problems: list[str]
) -> None:
    video, _ = mirror
    with pytest.raises(InputError) as caught:
        run_list(tmp_path, text, video)
    assert problems == caught.value.problems
    assert [] == list((tmp_path / "staging").iterdir())


def test_list_without_its_video_fails(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        run_list(tmp_path, "frame\n5\n", None, stem="session9")
    assert [
        "session9.csv is a frame list for the video session9, but there is no session9.mp4 "
        "(or .avi, .mov, .mkv) beside it or in project/videos; drop the video with the list, "
        "or put it in the project's videos folder, then drop the list again"
    ] == caught.value.problems


def test_daemon_turns_a_list_dropped_with_its_video_into_a_bundle(
    tmp_path: Path, mirror: tuple[Path, Frames]
) -> None:
    video, frames = mirror
    with Framewatch(tmp_path / "fw") as fw:
        fw.start()
        inbox = fw.inbox("framelists")
        shutil.copyfile(video, inbox / "mouse1.mp4")
        (inbox / "mouse1.json").write_text(f'{{"context_frames": {CONTEXT}}}', encoding="utf-8")
        (inbox / "mouse1.csv").write_text("frame\n20\n400\n", encoding="utf-8")
        (inbox / "nomovie.csv").write_text("frame\n20\n", encoding="utf-8")
        done = fw.wait_state("framelists", "mouse1", timeout=120)
        missing = fw.wait_state("framelists", "nomovie", timeout=120)
        assert 0 == fw.stop()
    assert "complete" == done["state"], done
    assert_exact_bundle(fw.bundle("mouse1"), [20, 400], frames)
    assert (fw.project / "videos" / "mouse1.mp4").is_file()
    assert (fw.root / "archive" / "framelists" / "mouse1.csv").is_file()
    assert "failed" == missing["state"], missing
    assert "there is no nomovie.mp4" in missing["message"]
