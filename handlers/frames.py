"""Reading frames: one pass that decodes every frame and reduces a sample, and an exact export.

Frame N is always "frame N as decoded in order from the start": the scan counts frames as
they come out of the decoder. The export may seek, but never trusts where a seek lands: the
scan records every frame's presentation timestamp, and after a seek each decoded frame must
carry the timestamp the scan saw at that index (``CAP_PROP_POS_FRAMES`` alone lands on the
wrong frame for some codecs and for files with a variable frame rate). When the timestamps
cannot tell frames apart, or a check fails, the export decodes in order from the start.

Speed (see README "Long videos and speed"): decoding is the floor, so the scan grabs every
frame but converts only the sampled ones, and reads the decoder's own luma plane instead of
converting to BGR; the export seeks across long gaps instead of decoding the file again.
Memory is bounded by MAX_SAMPLE_BYTES of reduced frames plus 8 bytes of timestamp a frame.
"""

from __future__ import annotations

import contextlib
import os
import struct
import tempfile
from array import array
from collections import deque
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from handlers.bundle import frame_filename, write_png
from handlers.outcome import IncompleteInput, InputError
from handlers.sheet import sheet_tile

VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv"})
"""The containers taken as videos."""

THUMB_SIZE = (32, 32)
"""Width and height of the whole-frame part."""


def reduce_frame(frame: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """A small grey version of a frame, averaged over areas so noise does not dominate."""
    grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
    return np.asarray(cv2.resize(grey, THUMB_SIZE, interpolation=cv2.INTER_AREA), np.uint8).ravel()


MAX_SAMPLES = 16384
"""Reduced frames kept at most; a longer video keeps every 2nd, 4th, ... frame instead."""

MAX_SAMPLE_BYTES = 12 * 2**20
"""Bytes of reduced frames kept at most: fewer samples when each is larger.

Choosing works on float copies of the sample (PCA), about 10 times this, on top of the
~180 MB that numpy, OpenCV and scikit-learn take once imported: the handler's peak memory
stays under 400 MB whatever the length of the video.
"""

SEEK_GAP = 300
"""Frames between two wanted frames above which the export seeks rather than decodes on.

A seek decodes from the keyframe before its target, typically up to one GOP (250 frames for
x264's default), so shorter gaps are cheaper to decode through.
"""

LUMA_FORMATS = frozenset(
    {
        "I420",
        "IYUV",
        "YV12",
        "J420",
        "NV12",
        "NV21",
        "Y42B",
        "422P",
        "444P",
        "Y444",
        "411P",
        "Y41B",
        "Y800",
        "GREY",
        "Y8  ",
    }
)
"""Decoder pixel formats (FourCC) whose first plane is 8-bit luma at full size.

For these the scan reads that plane as it comes out of the decoder (OpenCV's
``CAP_PROP_CONVERT_RGB=0``), which skips the colour conversion: 35-60% of a plain
``cap.read()`` at 640x480. Anything else (10-bit, RGB, palettes) is converted to BGR.
"""

WRITES_IN_FLIGHT = 4
"""Exported frames waiting to be written at most (each a full-size image in memory)."""

_NO_TIMESTAMPS: npt.NDArray[np.float64] = np.empty(0, dtype=np.float64)


@dataclass(frozen=True)
class VideoScan:
    """What one pass over a video learned, in memory bounded by MAX_SAMPLE_BYTES.

    Attributes:
        frame_count: frames that decoded, counted from the start.
        height, width: size of the decoded frames.
        indices: frame index of each kept sample, increasing.
        thumbs: one reduced frame per sample, uint8, shape (samples, h*w).
        motion: mean absolute change of the thumb from the previous frame's, per sample.
        timestamps: presentation time (ms) of every frame, as OpenCV reports it after
            decoding it; lets the export check where a seek landed. Empty when unknown.
    """

    frame_count: int
    height: int
    width: int
    indices: npt.NDArray[np.int64]
    thumbs: npt.NDArray[np.uint8]
    motion: npt.NDArray[np.float32]
    timestamps: npt.NDArray[np.float64] = field(default_factory=lambda: _NO_TIMESTAMPS)


def _cannot_open(path: Path) -> InputError:
    if lacks_index(path):
        return IncompleteInput(
            [
                f"{path.name} has no index yet (its 'moov' box, which an .mp4 or .mov gets "
                "last, is missing), so it cannot be opened: the copy is incomplete. Copy the "
                "whole recording again"
            ],
            missing=f"{path.name} has no index yet (its 'moov' box, written last, is missing)",
        )
    return InputError(
        [
            f"{path.name} could not be opened as a video: it is not a video file, or "
            "it is damaged or incomplete. Copy the recording again (as .mp4, .avi, "
            ".mov or .mkv)."
        ]
    )


ISO_FIRST_BOXES = frozenset({b"ftyp", b"wide", b"free", b"skip", b"mdat"})


def lacks_index(path: Path) -> bool:
    """True for an ISO media file (.mp4, .mov: first box ``ftyp``, ``mdat`` ...) whose top-level
    boxes hold no ``moov``, the index most writers put last: a copy that has not reached it.

    Such a file fails to open; unlike a damaged one it may be whole a moment later.
    """
    try:
        with path.open("rb") as handle:
            end = os.fstat(handle.fileno()).st_size
            offset = 0
            while offset + 8 <= end:
                handle.seek(offset)
                head = handle.read(16)
                size, kind = struct.unpack(">I4s", head[:8])
                if offset == 0 and kind not in ISO_FIRST_BOXES:
                    return False
                if kind == b"moov":
                    return False
                if size == 1 and len(head) == 16:
                    size = struct.unpack(">Q", head[8:16])[0]
                elif size == 0:
                    size = end - offset
                if size < 8:
                    return False  # not a box: not an ISO media file after all
                offset += size
    except OSError:
        return False
    return end >= 8


def _open_capture(path: Path, params: Sequence[int] = ()) -> cv2.VideoCapture:
    """FFmpeg first (the only backend with timestamps and luma planes), then any other."""
    with _utf8_path(path) as name:
        capture = cv2.VideoCapture(name, cv2.CAP_FFMPEG, list(params))
        if not capture.isOpened() and not params:
            capture.release()
            capture = cv2.VideoCapture(name)
    return capture


@contextlib.contextmanager
def _utf8_path(path: Path) -> Iterator[str]:
    """``path`` as text OpenCV can take; a file name that is not UTF-8 gets a symlink that is.

    Rig PCs do make such names (Latin-1 copies onto a share), and OpenCV crashes the whole
    process on them (SIGSEGV). The capture holds the file open, so the link may go after.
    """
    text = str(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        with tempfile.TemporaryDirectory(prefix="framewatch-") as folder:
            link = Path(folder) / ("video" + path.suffix.encode("ascii", "replace").decode())
            link.symlink_to(path.absolute())  # a non-UTF-8 target is fine for the kernel
            yield str(link)
        return
    yield text


def open_video(path: Path) -> contextlib.AbstractContextManager[cv2.VideoCapture]:
    """Open a video for decoding to BGR, or raise InputError saying why it cannot be read."""
    return _opened(_open_capture(path), path)


@contextlib.contextmanager
def _opened(capture: cv2.VideoCapture, path: Path) -> Iterator[cv2.VideoCapture]:
    """Yield ``capture`` if it opened (InputError naming ``path`` if not); always release it."""
    try:
        if not capture.isOpened():
            raise _cannot_open(path)
        yield capture
    finally:
        capture.release()


def _pixel_format(capture: cv2.VideoCapture) -> str:
    code = int(capture.get(cv2.CAP_PROP_CODEC_PIXEL_FORMAT))
    return code.to_bytes(4, "little", signed=False).decode("latin-1") if code > 0 else ""


@contextlib.contextmanager
def _quiet_opencv() -> Iterator[None]:
    """Silence OpenCV's per-frame warning that raw (unconverted) frames are experimental."""
    previous = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(previous)


@contextlib.contextmanager
def open_for_scan(path: Path) -> Iterator[cv2.VideoCapture]:
    """Open a video whose retrieved frames are its luma plane when the format allows, else BGR.

    Raises:
        InputError: the file does not open as a video.
    """
    with _quiet_opencv():
        capture = _open_capture(path, [cv2.CAP_PROP_CONVERT_RGB, 0])
        if not capture.isOpened() or _pixel_format(capture) not in LUMA_FORMATS:
            capture.release()
            capture = _open_capture(path)
        with _opened(capture, path) as opened:
            yield opened


def _retrieve(capture: cv2.VideoCapture) -> npt.NDArray[np.uint8] | None:
    """The frame last grabbed, as an 8-bit image, or None if it does not convert."""
    ok, image = capture.retrieve()
    return np.asarray(image, dtype=np.uint8) if ok and image is not None else None


def initial_stride(expected_frames: int, capacity: int) -> int:
    """The power-of-two stride that keeps fewer than ``capacity`` of ``expected_frames``.

    Starting there (rather than at 1 and doubling) gives the same samples without reducing
    frames that would later be dropped; the container's frame count is only a hint, so the
    sampler still doubles if the video turns out longer.
    """
    stride = 1
    while expected_frames > 0 and -(-expected_frames // stride) >= capacity:
        stride *= 2
    return stride


def _fit_to_budget(sampler: _StrideSampler, sample_bytes: int, expected_frames: int) -> None:
    """Lower the sampler's capacity so its samples fit MAX_SAMPLE_BYTES; restride to match."""
    sampler.capacity = max(2, min(sampler.capacity, MAX_SAMPLE_BYTES // max(sample_bytes, 1)))
    sampler.stride = max(sampler.stride, initial_stride(expected_frames, sampler.capacity))


class _StrideSampler:
    """Keeps every ``stride``-th item, doubling the stride whenever the buffer fills."""

    def __init__(self, capacity: int, stride: int = 1) -> None:
        self.capacity = capacity
        self.stride = stride
        self.indices: list[int] = []
        self.thumbs: list[npt.NDArray[np.uint8]] = []
        self.motion: list[float] = []

    def wants(self, index: int) -> bool:
        return index % self.stride == 0

    def add(self, index: int, thumb: npt.NDArray[np.uint8], motion: float) -> None:
        self.indices.append(index)
        self.thumbs.append(thumb)
        self.motion.append(motion)
        if len(self.indices) >= self.capacity:
            self.stride *= 2
            keep = [i for i, kept in enumerate(self.indices) if kept % self.stride == 0]
            self.indices = [self.indices[i] for i in keep]
            self.thumbs = [self.thumbs[i] for i in keep]
            self.motion = [self.motion[i] for i in keep]


MOTION_SIZE = (32, 32)
"""Grey size at which ``motion`` (change from the previous frame) is measured."""


def motion_thumb(frame: npt.NDArray[np.uint8]) -> npt.NDArray[np.int16]:
    """A small grey version of a frame (luma plane or BGR) for measuring change between frames.

    Every k-th pixel of every k-th row first (about 64 of each), then an area average: a
    tenth of the cost of averaging the whole frame, and change is measured all the same.
    """
    step = max(1, min(frame.shape[0], frame.shape[1]) // (2 * MOTION_SIZE[0]))
    small = np.ascontiguousarray(frame[::step, ::step])
    grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small
    return cv2.resize(grey, MOTION_SIZE, interpolation=cv2.INTER_AREA).astype(np.int16)


def _change(thumb: npt.NDArray[np.int16], previous: npt.NDArray[np.int16] | None) -> float:
    """Mean absolute difference of two motion thumbs; 0 when there is no previous frame."""
    return 0.0 if previous is None else float(np.abs(thumb - previous).mean())


Reduce = Callable[[npt.NDArray[np.uint8]], npt.NDArray[np.uint8]]
"""Turns one decoded frame into its feature vector (see handlers/features.py)."""


def scan_video(
    path: Path,
    progress: Callable[[float], None] = lambda fraction: None,
    max_samples: int = MAX_SAMPLES,
    reduce: Reduce = reduce_frame,
) -> VideoScan:
    """Decode every frame once, keeping a bounded, evenly spaced sample of reduced frames.

    Every frame is decoded (``grab``) and its timestamp noted; only the sampled frames and
    the frame before each (for ``motion``) are retrieved. ``reduce`` sees the sampled frames
    only, in order; as the decoder's luma plane (2-D) when the pixel format has one, else BGR.
    At most ``max_samples`` frames, and at most MAX_SAMPLE_BYTES of reduced frames, are kept.

    Raises:
        InputError: the file does not open or no frame decodes.
    """
    with open_for_scan(path) as capture:
        knows_time = _reports_stream_timestamps(capture)
        expected = max(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), 0)
        sampler = _StrideSampler(max_samples, initial_stride(expected, max_samples))
        timestamps = array("d")
        shape: tuple[int, ...] = (0, 0)
        previous: npt.NDArray[np.int16] | None = None
        previous_index = -1
        index = 0
        while capture.grab():
            if knows_time:
                timestamps.append(capture.get(cv2.CAP_PROP_POS_MSEC))
            sampled = sampler.wants(index)
            if sampled or sampler.wants(index + 1):
                frame = _retrieve(capture)
                if frame is not None:
                    shape = shape if shape[0] else frame.shape[:2]
                    thumb = motion_thumb(frame)
                    if sampled:
                        features = reduce(frame)
                        if not sampler.indices:
                            _fit_to_budget(sampler, features.nbytes, expected)
                        before = previous if previous_index == index - 1 else None
                        sampler.add(index, features, _change(thumb, before))
                    previous, previous_index = thumb, index
            index += 1
            if expected and index % 256 == 0:
                progress(min(index / expected, 1.0))
    if index == 0 or not sampler.indices:
        raise InputError(
            [
                f"{path.name} holds no frame that can be decoded: the file is empty, "
                "truncated or damaged. Copy the recording again."
            ]
        )
    if falls_short(index, expected):
        raise IncompleteInput(
            [
                f"{path.name}: only {index} of the {expected} frames its container promises "
                "decode; the copy may be incomplete. Copy the whole recording again"
            ],
            decoded=index,
            promised=expected,
        )
    return VideoScan(
        frame_count=index,
        height=int(shape[0]),
        width=int(shape[1]),
        indices=np.asarray(sampler.indices, dtype=np.int64),
        thumbs=np.stack(sampler.thumbs),
        motion=np.asarray(sampler.motion, dtype=np.float32),
        timestamps=np.frombuffer(timestamps, dtype=np.float64).copy(),
    )


# Containers' frame counts are estimates for some formats (Matroska: duration x rate): only a
# shortfall beyond this share, and a few frames, says the file holds less than it should.
SHORTFALL_SHARE = 0.05
SHORTFALL_FRAMES = 3
PLAUSIBLE_FRAMES = 100_000_000


def falls_short(decoded: int, promised: int) -> bool:
    """True when clearly fewer frames decoded than a plausible container count promised.

    A copy that stalled part way decodes up to where it stops, while the header (written
    first) still says the full count; publishing that would give a bundle of half a session.
    """
    if not 0 < promised < PLAUSIBLE_FRAMES:
        return False
    missing = promised - decoded
    return missing >= SHORTFALL_FRAMES and missing > SHORTFALL_SHARE * promised


def _reports_stream_timestamps(capture: cv2.VideoCapture) -> bool:
    """FFmpeg reports each frame's own presentation time; other backends count frames."""
    return bool(capture.getBackendName() == "FFMPEG")


def timestamps_identify_frames(timestamps: npt.NDArray[np.float64]) -> bool:
    """Whether every frame has its own timestamp, strictly increasing from the start.

    Only then does a frame's timestamp say which frame it is; files without timestamps
    (OpenCV then reports 0 or repeats one) are exported by decoding in order.
    """
    return bool(
        timestamps.size > 0
        and np.all(np.isfinite(timestamps))
        and (timestamps.size == 1 or np.all(np.diff(timestamps) > 0))
    )


class _SeekNotVerifiedError(Exception):
    """A seek landed on, or decoded forward to, a frame the scan does not place there."""


class _FrameCursor:
    """A capture and the index of the frame it last decoded, moved only by checked steps.

    ``position`` is exact at all times: it counts frames from the start of a fresh capture,
    and after a seek it is taken from the scan's timestamps, frame by frame.
    """

    def __init__(self, path: Path, timestamps: npt.NDArray[np.float64], seek_gap: int) -> None:
        self.path = path
        self.timestamps = timestamps
        self.seek_gap = seek_gap
        self.capture = self._reopen(None)
        self.can_seek = timestamps_identify_frames(timestamps) and _reports_stream_timestamps(
            self.capture
        )
        self.position = -1
        self.checking = False
        self.seeks = 0
        self.landed = 0
        self.restarts = 0

    def _reopen(self, old: cv2.VideoCapture | None) -> cv2.VideoCapture:
        if old is not None:
            old.release()
        capture = _open_capture(self.path)
        if not capture.isOpened():
            raise _cannot_open(self.path)
        return capture

    def close(self) -> None:
        self.capture.release()

    def frame(self, target: int) -> npt.NDArray[np.uint8]:
        """Frame ``target`` as decoded in order from the start.

        Raises:
            InputError: the video ends before ``target`` or the frame does not decode.
        """
        try:
            if self.can_seek and target - self.position > self.seek_gap:
                self._seek_before(target)
            self._decode_to(target)
        except _SeekNotVerifiedError:
            self._restart_in_order()
            self._decode_to(target)
        image = _retrieve(self.capture)
        if image is None:
            raise InputError([f"{self.path.name}: frame {target} could not be decoded"])
        return image

    def _grab_next(self) -> None:
        if not self.capture.grab():
            if self.checking:
                raise _SeekNotVerifiedError
            raise InputError(
                [
                    f"{self.path.name} ended after {self.position + 1} frames, before a "
                    "frame chosen from it (the file changed since it was read)."
                ]
            )
        self.position += 1
        if self.checking and not self._timestamp_matches(self.position):
            raise _SeekNotVerifiedError

    def _timestamp_matches(self, index: int) -> bool:
        if index >= self.timestamps.size:
            return False
        return bool(self.capture.get(cv2.CAP_PROP_POS_MSEC) == self.timestamps[index])

    def _decode_to(self, target: int) -> None:
        while self.position < target:
            self._grab_next()

    def _seek_before(self, target: int) -> None:
        """Seek to a frame at or before ``target`` and learn its index from its timestamp.

        The seek asks for ``target`` first; one that overshoots (variable frame rate) is
        asked again further back. ``position`` is set only from a timestamp match.
        """
        back = 0
        for _attempt in range(4):
            request = max(target - back, 0)
            if not self.capture.set(cv2.CAP_PROP_POS_FRAMES, request):
                break
            self.seeks += 1
            if not self.capture.grab():
                break
            landed = self._locate(self.capture.get(cv2.CAP_PROP_POS_MSEC))
            if landed is None:
                break
            if landed <= target:
                self.landed += 1
                self.position = landed
                self.checking = True
                return
            back = 2 * back + 2 * (landed - target) + 1
        raise _SeekNotVerifiedError

    def _locate(self, timestamp: float) -> int | None:
        index = int(np.searchsorted(self.timestamps, timestamp))
        if index < self.timestamps.size and self.timestamps[index] == timestamp:
            return index
        return None

    def _restart_in_order(self) -> None:
        """Give up seeking in this file: decode from the first frame, counting."""
        self.restarts += 1
        self.can_seek = False
        self.checking = False
        self.capture = self._reopen(self.capture)
        self.position = -1


class _BackgroundWriter:
    """Runs ``write`` on a thread so PNG encoding overlaps decoding; a few frames at a time."""

    def __init__(self, write: Callable[[int, npt.NDArray[np.uint8]], None]) -> None:
        self.write = write
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="export-write")
        self.pending: deque[Future[None]] = deque()

    def submit(self, index: int, image: npt.NDArray[np.uint8]) -> None:
        while len(self.pending) >= WRITES_IN_FLIGHT:
            self.pending.popleft().result()
        self.pending.append(self.pool.submit(self.write, index, image))

    def finish(self) -> None:
        """Wait for every write; re-raise the first that failed."""
        try:
            while self.pending:
                self.pending.popleft().result()
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)


@dataclass(frozen=True)
class ExportSummary:
    """How the export reached its frames: for the bundle's report.

    Attributes:
        seeks: seeks asked of the decoder.
        verified_landings: seeks whose landing frame matched the scan's timestamps.
        restarts: times a check failed and decoding restarted from the first frame.
    """

    seeks: int = 0
    verified_landings: int = 0
    restarts: int = 0


def export_frames(
    path: Path,
    wanted: Sequence[int],
    write: Callable[[int, npt.NDArray[np.uint8]], None],
    progress: Callable[[float], None] = lambda fraction: None,
    timestamps: npt.NDArray[np.float64] = _NO_TIMESTAMPS,
    seek_gap: int = SEEK_GAP,
) -> ExportSummary:
    """Hand each wanted frame, as decoded in order from the start, to ``write(index, frame)``.

    With the scan's ``timestamps``, gaps longer than ``seek_gap`` frames are crossed by a
    seek whose landing is checked frame by frame against them; without them, or when a
    check fails, frames are decoded in order from the start. ``write`` runs on a worker
    thread, in index order. Returns how the frames were reached.

    Raises:
        InputError: the video ends before a wanted frame (it changed since it was scanned).
    """
    targets = sorted(set(wanted))
    if not targets:
        return ExportSummary()
    cursor = _FrameCursor(path, timestamps, seek_gap)
    writer = _BackgroundWriter(write)
    try:
        for done, target in enumerate(targets, start=1):
            writer.submit(target, cursor.frame(target))
            progress(done / len(targets))
    finally:
        cursor.close()
        writer.finish()
    return ExportSummary(cursor.seeks, cursor.landed, cursor.restarts)


@dataclass
class BundleExport:
    """What ``export_into`` wrote: frame file names in index order, the contact-sheet tiles
    by frame index, and how the frames were reached."""

    names: list[str] = field(default_factory=list)
    tiles: dict[int, npt.NDArray[np.uint8]] = field(default_factory=dict)
    summary: ExportSummary = field(default_factory=ExportSummary)


def export_into(
    folder: Path,
    path: Path,
    wanted: Sequence[int],
    progress: Callable[[float], None],
    timestamps: npt.NDArray[np.float64] = _NO_TIMESTAMPS,
    tiled: Collection[int] = (),
    tile: Callable[[int, npt.NDArray[np.uint8]], npt.NDArray[np.uint8]] | None = None,
) -> BundleExport:
    """Export ``wanted`` frames of ``path`` into ``folder`` as ``img%08d.png``, keeping a
    contact-sheet tile of each frame in ``tiled``: how every handler writes a bundle's frames.

    ``tile(index, image)`` draws a tile (default: the frame shrunk, ``sheet.sheet_tile``).

    Raises:
        InputError: the video ends before a wanted frame (it changed since it was scanned).
        OSError: a frame could not be written (full disk, refused folder).
    """
    tiled = frozenset(tiled)
    done = BundleExport()

    def write(index: int, image: npt.NDArray[np.uint8]) -> None:
        name = frame_filename(index)
        write_png(folder / name, image)
        done.names.append(name)
        if index in tiled:
            done.tiles[index] = sheet_tile(image) if tile is None else tile(index, image)

    done.summary = export_frames(path, wanted, write, progress, timestamps=timestamps)
    return done
