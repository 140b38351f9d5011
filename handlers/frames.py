"""Reading frames: one streaming pass that reduces every frame, and an exact export.

Frame N is always "frame N as decoded in order from the start": the scan counts frames as
they come out of the decoder, and the export decodes in order rather than trusting
``CAP_PROP_POS_FRAMES``, which lands on the wrong frame for some codecs and for files with a
variable frame rate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from handlers.features import reduce_frame
from handlers.outcome import InputError

MAX_SAMPLES = 16384
"""Reduced frames kept at most; a longer video keeps every 2nd, 4th, ... frame instead."""


@dataclass(frozen=True)
class VideoScan:
    """What one pass over a video learned, in memory bounded by MAX_SAMPLES.

    Attributes:
        frame_count: frames that decoded, counted from the start.
        height, width: size of the decoded frames.
        indices: frame index of each kept sample, increasing.
        thumbs: one reduced grey frame per sample, uint8, shape (samples, h*w).
        motion: mean absolute change from the previous frame, per sample.
    """

    frame_count: int
    height: int
    width: int
    indices: npt.NDArray[np.int64]
    thumbs: npt.NDArray[np.uint8]
    motion: npt.NDArray[np.float32]


@contextmanager
def open_video(path: Path) -> Iterator[cv2.VideoCapture]:
    """Open a video for decoding, or raise InputError saying why it cannot be read."""
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise InputError(
                [
                    f"{path.name} could not be opened as a video: it is not a video file, or "
                    "it is damaged or incomplete. Copy the recording again (as .mp4, .avi, "
                    ".mov or .mkv)."
                ]
            )
        yield capture
    finally:
        capture.release()


class _StrideSampler:
    """Keeps every ``stride``-th item, doubling the stride whenever the buffer fills."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.stride = 1
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


def scan_video(
    path: Path,
    progress: Callable[[float], None] = lambda fraction: None,
    max_samples: int = MAX_SAMPLES,
) -> VideoScan:
    """Decode every frame once, keeping a bounded, evenly spaced sample of reduced frames.

    Raises:
        InputError: the file does not open or no frame decodes.
    """
    with open_video(path) as capture:
        expected = max(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), 0)
        sampler = _StrideSampler(max_samples)
        previous: npt.NDArray[np.int16] | None = None
        shape = (0, 0)
        index = 0
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            shape = frame.shape[:2]
            thumb = reduce_frame(frame)
            current = thumb.astype(np.int16)
            if sampler.wants(index):
                change = 0.0 if previous is None else float(np.abs(current - previous).mean())
                sampler.add(index, thumb, change)
            previous = current
            index += 1
            if expected and index % 256 == 0:
                progress(min(index / expected, 1.0))
    if index == 0:
        raise InputError(
            [
                f"{path.name} holds no frame that can be decoded: the file is empty, "
                "truncated or damaged. Copy the recording again."
            ]
        )
    return VideoScan(
        frame_count=index,
        height=shape[0],
        width=shape[1],
        indices=np.asarray(sampler.indices, dtype=np.int64),
        thumbs=np.stack(sampler.thumbs),
        motion=np.asarray(sampler.motion, dtype=np.float32),
    )


def export_frames(
    path: Path,
    wanted: Sequence[int],
    write: Callable[[int, npt.NDArray[np.uint8]], None],
    progress: Callable[[float], None] = lambda fraction: None,
) -> None:
    """Decode in order from the start and hand each wanted frame to ``write(index, frame)``.

    Decoding up to the last wanted frame is slower than seeking, but it is the only order that
    is exact for every codec and container; ``grab`` skips the colour conversion of the rest.

    Raises:
        InputError: the video ends before a wanted frame (it changed since it was scanned).
    """
    targets = sorted(set(wanted))
    if not targets:
        return
    last = targets[-1]
    pending = iter(targets)
    target = next(pending)
    with open_video(path) as capture:
        for index in range(last + 1):
            if not capture.grab():
                raise InputError(
                    [f"{path.name} ended at frame {index}, before frame {last} it was chosen from"]
                )
            if index != target:
                continue
            ok, frame = capture.retrieve()
            if not ok:
                raise InputError([f"{path.name}: frame {index} could not be decoded"])
            write(index, frame)
            progress(index / last if last else 1.0)
            target = next(pending, -1)
