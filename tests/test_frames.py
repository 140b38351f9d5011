"""Reading frames: the bounded scan, and an export that seeks but stays exact.

Exactness is checked the strict way: every exported frame is compared byte for byte with
the same frame from a plain sequential decode (``while cap.read()``), in several codecs and
containers, a variable-frame-rate file, and the real recordings in ../shared/data.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from handlers import bundle, frames
from handlers.frames import reduce_frame
from handlers.outcome import InputError
from tests.harness import shared_file
from tests.media import read_barcode, write_barcode_video

FRAMES = 400
FORCE_SEEKS = 8
"""A seek gap small enough that a 400-frame test video is crossed by many seeks."""

FFMPEG_MADE = {
    # H.264 with B-frames and a GOP of 30: frames decode out of order, seeks land on keyframes.
    "h264-mp4": ["-c:v", "libx264", "-g", "30", "-bf", "2", "-pix_fmt", "yuv420p"],
    # 10-bit: no 8-bit luma plane, so the scan converts to BGR.
    "h264-10bit-mp4": ["-c:v", "libx264", "-g", "30", "-pix_fmt", "yuv420p10le"],
    # Variable frame rate: every 7th and some 11th frames dropped, timestamps kept, so frame
    # N is not at N / fps and CAP_PROP_POS_FRAMES lands on the wrong frame.
    "vfr-h264-mp4": [
        "-vf", r"select='not(eq(mod(n\,7)\,3))*not(eq(mod(n\,11)\,5))'",
        "-fps_mode", "vfr", "-c:v", "libx264", "-g", "30", "-bf", "2",
    ],
}
REAL_RECORDINGS = ["openfield/m3v1mp4.mp4", "mirror-mouse/test_vid.mp4", "fly-pair/clip.mp4"]


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Barcode videos written by OpenCV, and (when ffmpeg is installed) made from them."""
    folder = tmp_path_factory.mktemp("videos")
    made = {
        codec: write_barcode_video(folder / codec, FRAMES, codec)
        for codec in ("mp4v-mp4", "mjpg-avi")
    }
    ffmpeg = shutil.which("ffmpeg")
    for name, arguments in FFMPEG_MADE.items():
        if ffmpeg:
            target = folder / f"{name}.mp4"
            subprocess.run(
                [ffmpeg, "-v", "error", "-y", "-i", str(made["mjpg-avi"]), *arguments,
                 str(target)],
                check=True,
            )
            made[name] = target
    return made


def video(videos: dict[str, Path], name: str) -> Path:
    """One of the test videos, or skip saying why it is missing."""
    if name not in videos:
        pytest.skip(f"{name} is made with ffmpeg, which is not installed")
    return videos[name]


def decode_in_order(path: Path) -> list[npt.NDArray[np.uint8]]:
    """Every frame from a plain sequential decode: what frame N means."""
    capture = cv2.VideoCapture(str(path))
    decoded = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        decoded.append(np.asarray(image, dtype=np.uint8))
    capture.release()
    return decoded


def export_to_dict(
    path: Path, wanted: list[int], timestamps: npt.NDArray[np.float64], seek_gap: int
) -> dict[int, npt.NDArray[np.uint8]]:
    """Run export_frames and collect what it hands to ``write``."""
    written: dict[int, npt.NDArray[np.uint8]] = {}
    frames.export_frames(
        path, wanted, written.__setitem__, timestamps=timestamps, seek_gap=seek_gap
    )
    return written


def spread_with_context(frame_count: int, picks: int, context: int = 2) -> list[int]:
    """``picks`` frames spread over the video, each with its context frames."""
    chosen = np.linspace(context, frame_count - context - 1, picks).round().astype(int)
    return bundle.with_context([int(i) for i in chosen], context, frame_count)


def mismatches(
    written: dict[int, npt.NDArray[np.uint8]], reference: list[npt.NDArray[np.uint8]]
) -> list[int]:
    """Indices whose exported frame is not byte for byte the sequentially decoded one."""
    return [i for i, image in written.items() if not np.array_equal(image, reference[i])]


ALL_CODECS = ["mp4v-mp4", "mjpg-avi", *FFMPEG_MADE]


@pytest.mark.parametrize("name", ALL_CODECS)
def test_scan_counts_every_frame_and_its_timestamp(videos: dict[str, Path], name: str) -> None:
    """The scan counts the frames a sequential decode gives and notes one timestamp each."""
    path = video(videos, name)
    scan = frames.scan_video(path)
    expected = len(decode_in_order(path))
    assert (expected, expected) == (scan.frame_count, scan.timestamps.size)
    assert frames.timestamps_identify_frames(scan.timestamps)


@pytest.mark.parametrize("name", ALL_CODECS)
def test_export_that_seeks_is_byte_exact(videos: dict[str, Path], name: str) -> None:
    """Frames exported with checked seeks are the sequentially decoded frames, byte for byte."""
    path = video(videos, name)
    scan = frames.scan_video(path)
    reference = decode_in_order(path)
    wanted = spread_with_context(scan.frame_count, 12)
    written = export_to_dict(path, wanted, scan.timestamps, FORCE_SEEKS)
    assert wanted == sorted(written)
    assert [] == mismatches(written, reference)


@pytest.mark.parametrize("name", ["mp4v-mp4", "h264-mp4"])
def test_exported_frames_carry_their_own_index(videos: dict[str, Path], name: str) -> None:
    """Each exported frame shows its own index in its barcode."""
    path = video(videos, name)
    scan = frames.scan_video(path)
    wanted = spread_with_context(scan.frame_count, 10)
    written = export_to_dict(path, wanted, scan.timestamps, FORCE_SEEKS)
    assert wanted == [read_barcode(written[i]) for i in wanted]


def test_variable_frame_rate_defeats_an_unchecked_seek(videos: dict[str, Path]) -> None:
    """On the VFR file CAP_PROP_POS_FRAMES lands on wrong frames: the exactness test means it."""
    path = video(videos, "vfr-h264-mp4")
    reference = [read_barcode(image) for image in decode_in_order(path)]
    wrong = 0
    for target in range(20, len(reference), 40):
        capture = cv2.VideoCapture(str(path))
        capture.set(cv2.CAP_PROP_POS_FRAMES, target)
        ok, image = capture.read()
        capture.release()
        wrong += int(not ok or read_barcode(np.asarray(image, np.uint8)) != reference[target])
    assert wrong > 0


def test_export_without_timestamps_decodes_in_order(videos: dict[str, Path]) -> None:
    """Without the scan's timestamps the export never seeks, and is exact."""
    path = video(videos, "mp4v-mp4")
    reference = decode_in_order(path)
    wanted = spread_with_context(len(reference), 6)
    written = export_to_dict(path, wanted, np.empty(0), FORCE_SEEKS)
    assert [] == mismatches(written, reference)


def test_seek_landing_on_an_unknown_timestamp_is_not_trusted(videos: dict[str, Path]) -> None:
    """When no landing matches the scan's timestamps, the export restarts in order, exact."""
    path = video(videos, "mp4v-mp4")
    scan = frames.scan_video(path)
    reference = decode_in_order(path)
    wanted = spread_with_context(scan.frame_count, 6)
    written: dict[int, npt.NDArray[np.uint8]] = {}
    summary = frames.export_frames(
        path, wanted, written.__setitem__, timestamps=scan.timestamps + 0.5,
        seek_gap=FORCE_SEEKS,
    )
    assert (0, 1, []) == (summary.verified_landings, summary.restarts,
                          mismatches(written, reference))


def test_every_seek_lands_verified_on_a_constant_rate_file(videos: dict[str, Path]) -> None:
    """On an ordinary file every seek's landing matches the scan: no restart is needed."""
    path = video(videos, "h264-mp4")
    scan = frames.scan_video(path)
    summary = frames.export_frames(
        path, spread_with_context(scan.frame_count, 8), lambda index, image: None,
        timestamps=scan.timestamps, seek_gap=FORCE_SEEKS,
    )
    # Eight picks: the first sits at frame 2 and is decoded to; the seven others are sought.
    assert (7, 7, 0) == (summary.seeks, summary.verified_landings, summary.restarts)


@pytest.mark.parametrize(
    ("timestamps", "expected"),
    [
        ([0.0, 33.3, 66.7], True),
        ([5.0], True),
        ([], False),
        ([0.0, 0.0, 0.0], False),
        ([0.0, 40.0, 33.3], False),
        ([0.0, float("nan"), 66.7], False),
    ],
    ids=["increasing", "one-frame", "none", "all-zero", "out-of-order", "nan"],
)
def test_timestamps_identify_frames_only_when_strictly_increasing(
    timestamps: list[float], expected: bool
) -> None:
    """Only strictly increasing, finite timestamps may be used to say which frame is which."""
    assert expected == frames.timestamps_identify_frames(np.asarray(timestamps))


def test_export_past_the_end_names_the_file(videos: dict[str, Path]) -> None:
    """A wanted frame beyond the last one raises InputError naming the video."""
    path = video(videos, "mp4v-mp4")
    scan = frames.scan_video(path)
    with pytest.raises(InputError, match=r"mp4v-mp4\.mp4 ended after 400 frames"):
        export_to_dict(path, [5, FRAMES + 3], scan.timestamps, FORCE_SEEKS)


def test_a_failing_write_stops_the_export(videos: dict[str, Path]) -> None:
    """An error raised by ``write`` (on the writer thread) reaches the caller."""
    path = video(videos, "mp4v-mp4")

    def refuse(index: int, image: npt.NDArray[np.uint8]) -> None:
        raise OSError(f"disk full at frame {index}")

    with pytest.raises(OSError, match="disk full at frame 10"):
        frames.export_frames(path, [10, 11], refuse)


@pytest.mark.parametrize(
    ("expected_frames", "capacity", "stride"),
    [(0, 16, 1), (15, 16, 1), (16, 16, 2), (54_000, 16_384, 4), (324_000, 16_384, 32)],
    ids=["unknown", "fits", "exactly-full", "30-min", "3-hours"],
)
def test_initial_stride_keeps_fewer_samples_than_capacity(
    expected_frames: int, capacity: int, stride: int
) -> None:
    """The starting stride is the smallest power of two that keeps the sample under capacity."""
    assert stride == frames.initial_stride(expected_frames, capacity)


def test_sample_is_bounded_and_evenly_spaced(videos: dict[str, Path]) -> None:
    """A small max_samples keeps fewer samples, every k-th frame, with motion from frame k-1."""
    path = video(videos, "mp4v-mp4")
    scan = frames.scan_video(path, max_samples=16)
    stride = int(scan.indices[1] - scan.indices[0])
    assert list(range(0, FRAMES, stride)) == scan.indices.tolist()
    assert scan.indices.size < 16
    reference = decode_in_order(path)
    expected_motion = [
        0.0 if i == 0 else float(np.abs(
            frames.motion_thumb(reference[i]) - frames.motion_thumb(reference[i - 1])
        ).mean())
        for i in scan.indices
    ]
    # The scan measures on the luma plane (levels 16-235), the reference on full-range grey.
    ratios = np.asarray(expected_motion[1:]) / scan.motion[1:]
    assert (0.0, True) == (float(scan.motion[0]), bool(np.all((ratios > 1.0) & (ratios < 1.3))))


def test_sample_fits_the_byte_budget(
    videos: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Larger reduced frames mean fewer samples: their bytes stay within MAX_SAMPLE_BYTES."""
    monkeypatch.setattr(frames, "MAX_SAMPLE_BYTES", 16 * 2048)
    path = video(videos, "mp4v-mp4")
    scan = frames.scan_video(path, reduce=lambda image: np.zeros(2048, dtype=np.uint8))
    assert (True, 2048) == (scan.thumbs.nbytes <= 16 * 2048, scan.thumbs.shape[1])


def test_luma_features_follow_the_grey_image(videos: dict[str, Path]) -> None:
    """Features come from the decoder's luma plane (not BGR), and follow the grey image."""
    path = video(videos, "mp4v-mp4")
    scan = frames.scan_video(path)
    grey = np.stack([reduce_frame(image) for image in decode_in_order(path)])
    correlation = np.corrcoef(grey.astype(float).ravel(), scan.thumbs.astype(float).ravel())
    # Luma spans levels 16-235 and grey 0-255: close, but never the same bytes.
    assert (True, False) == (correlation[0, 1] > 0.99, np.array_equal(grey, scan.thumbs))


def test_ten_bit_video_is_converted_to_bgr_for_features(videos: dict[str, Path]) -> None:
    """A format without an 8-bit luma plane is reduced from BGR, exactly as decoded."""
    path = video(videos, "h264-10bit-mp4")
    scan = frames.scan_video(path)
    expected = np.stack([reduce_frame(image) for image in decode_in_order(path)])
    assert np.array_equal(expected, scan.thumbs)


@pytest.mark.parametrize("relative", REAL_RECORDINGS, ids=lambda r: r.split("/")[0])
def test_real_recordings_export_byte_exact(relative: str) -> None:
    """On real recordings, frames exported with checked seeks equal the sequential decode."""
    path = shared_file(relative)
    scan = frames.scan_video(path)
    wanted = spread_with_context(scan.frame_count, 8)
    written = export_to_dict(path, wanted, scan.timestamps, seek_gap=30)
    capture = cv2.VideoCapture(str(path))
    different, index = [], 0
    while True:
        ok, image = capture.read()
        if not ok:
            break
        if index in written and not np.array_equal(written[index], image):
            different.append(index)
        index += 1
    capture.release()
    assert (scan.frame_count, wanted, []) == (index, sorted(written), different)
