"""The video handler on its own: real video files, real OpenCV, no daemon."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from handlers.bundle import SELECTED_CSV, frame_index
from handlers.outcome import IncompleteInput, InputError, ignore_progress
from handlers.video import VideoOptions, handle_video
from tests.harness import shared_file
from tests.media import CODECS, read_barcode, write_barcode_video


def options(
    n: int = 10,
    frame_range: tuple[float, float] = (0.0, 1.0),
    context: int = 2,
    exclude: frozenset[int] = frozenset(),
) -> VideoOptions:
    return VideoOptions(
        frames_per_video=n, frame_range=frame_range, context_frames=context, exclude_frames=exclude
    )


def selected_from_csv(folder: Path) -> list[int]:
    lines = (folder / SELECTED_CSV).read_text().splitlines()
    return [int(line[3:11]) for line in lines]


def decode_all(path: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            return frames
        frames.append(frame)


@pytest.fixture(scope="module", params=sorted(CODECS))
def barcode_video(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp(request.param)
    return write_barcode_video(folder / "clip", 400, codec=request.param)


def test_every_png_holds_the_frame_its_name_says(barcode_video: Path, tmp_path: Path) -> None:
    """Each img%08d.png decodes to the frame whose barcode carries that same index."""
    result = handle_video([barcode_video], options(n=12), tmp_path, ignore_progress)
    pngs = sorted(tmp_path.glob("img*.png"))
    assert len(pngs) >= 12
    for png in pngs:
        assert frame_index(png.name) == read_barcode(cv2.imread(str(png)))
    assert sorted(result.selected) == selected_from_csv(tmp_path)


def test_bundle_has_selected_frames_and_their_context(barcode_video: Path, tmp_path: Path) -> None:
    """N distinct selected frames, each with its two neighbours on either side, listed sorted."""
    result = handle_video([barcode_video], options(n=15, context=2), tmp_path, ignore_progress)
    selected = selected_from_csv(tmp_path)
    assert 15 == len(set(selected))
    assert selected == sorted(selected)
    written = {frame_index(p.name) for p in tmp_path.glob("img*.png")}
    expected = {i + d for i in selected for d in range(-2, 3)}
    assert expected == written
    assert result.selected == selected


def test_same_input_gives_same_frames(barcode_video: Path, tmp_path: Path) -> None:
    """Running twice on one video with one config chooses the same frames."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = handle_video([barcode_video], options(n=8), tmp_path / "a", ignore_progress)
    second = handle_video([barcode_video], options(n=8), tmp_path / "b", ignore_progress)
    assert first.selected == second.selected


@pytest.mark.parametrize(
    "frame_range",
    [(0.0, 0.25), (0.5, 1.0), (0.4, 0.45)],
    ids=["first-quarter", "second-half", "narrow"],
)
def test_frames_come_from_the_frame_range(frame_range: tuple[float, float], tmp_path: Path) -> None:
    """Every selected frame lies inside frame_range of a 400-frame video.

    Context frames may reach past the range (but never past the video): the range says where
    frames to label come from, the context is there for the model.
    """
    video = write_barcode_video(tmp_path / "clip", 400)
    staging = tmp_path / "out"
    staging.mkdir()
    result = handle_video([video], options(n=10, frame_range=frame_range), staging, ignore_progress)
    low, high = frame_range[0] * 400, frame_range[1] * 400
    assert 10 == len(result.selected)
    assert all(low <= index < high for index in result.selected), (frame_range, result.selected)
    assert selected_from_csv(staging) == result.selected


def test_narrow_range_with_exactly_n_frames_returns_all_of_them(tmp_path: Path) -> None:
    """A window that holds exactly N frames (after the context margin) gives exactly those N."""
    video = write_barcode_video(tmp_path / "clip", 100)
    staging = tmp_path / "out"
    staging.mkdir()
    # frames 0..99; context 2 leaves 2..97 = 96 frames.
    result = handle_video([video], options(n=96, context=2), staging, ignore_progress)
    assert list(range(2, 98)) == result.selected


def test_too_few_frames_fails_saying_how_many_there_are(tmp_path: Path) -> None:
    """Asking for more frames than the window holds fails with the number it holds."""
    video = write_barcode_video(tmp_path / "clip", 30)
    staging = tmp_path / "out"
    staging.mkdir()
    with pytest.raises(InputError, match=r"asked for 40 frames, but the video holds only 26"):
        handle_video([video], options(n=40, context=2), staging, ignore_progress)


def test_frames_already_labeled_are_not_chosen_again(barcode_video: Path, tmp_path: Path) -> None:
    """exclude_frames keeps earlier selections out of a new one."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = handle_video([barcode_video], options(n=10), tmp_path / "a", ignore_progress)
    again = handle_video(
        [barcode_video],
        options(n=10, exclude=frozenset(first.selected)),
        tmp_path / "b",
        ignore_progress,
    )
    assert 10 == len(again.selected)
    assert set() == set(first.selected) & set(again.selected)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", r"could not be opened|holds no frame"),
        (b"this is a text file, not a video\n" * 50, r"could not be opened|holds no frame"),
    ],
    ids=["empty-file", "text-file"],
)
def test_a_file_that_is_not_a_video_is_an_input_error(
    content: bytes, message: str, tmp_path: Path
) -> None:
    """A non-video named .mp4 raises InputError naming the file, not a crash."""
    video = tmp_path / "mouse.mp4"
    video.write_bytes(content)
    (tmp_path / "out").mkdir()
    with pytest.raises(InputError, match=message) as caught:
        handle_video([video], options(), tmp_path / "out", ignore_progress)
    assert "mouse.mp4" in str(caught.value)


def test_a_truncated_video_is_refused_naming_both_frame_counts(tmp_path: Path) -> None:
    """Half an AVI, whose header promises 300 frames: never a bundle of the half (issue 15)."""
    whole = write_barcode_video(tmp_path / "whole", 300, codec="mjpg-avi")
    cut = tmp_path / "cut.avi"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    (tmp_path / "out").mkdir()
    with pytest.raises(IncompleteInput, match="of the 300 frames") as caught:
        handle_video([cut], options(n=10), tmp_path / "out", ignore_progress)
    assert 0 < caught.value.decoded < 300 == caught.value.promised
    assert [] == list((tmp_path / "out").glob("img*.png"))


@pytest.mark.parametrize(
    "relative",
    ["mirror-mouse/test_vid.mp4", "fly-pair/clip.mp4"],
    ids=["mirror-mouse-h264", "fly-pair"],
)
def test_real_recordings_export_exact_frames(relative: str, tmp_path: Path) -> None:
    """On real H.264 recordings, each PNG equals that frame of a plain in-order decode."""
    video = shared_file(relative)
    result = handle_video([video], options(n=10), tmp_path, ignore_progress)
    reference = decode_all(video)
    assert len(reference) == result.report["frame_count"]
    for png in tmp_path.glob("img*.png"):
        image = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
        expected = reference[frame_index(png.name)]
        assert expected.shape == image.shape
        assert np.array_equal(expected, image), png.name


def test_progress_climbs_to_one(barcode_video: Path, tmp_path: Path) -> None:
    """The progress callback reports increasing fractions ending at 1.0."""
    seen: list[float] = []
    handle_video([barcode_video], options(n=5), tmp_path, lambda f, m: seen.append(f))
    assert seen == sorted(seen)
    assert 1.0 == seen[-1]
    assert len(seen) >= 3
