"""Option types shared by the config file, sidecars and handlers."""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import AfterValidator


def _check_frame_range(value: tuple[float, float]) -> tuple[float, float]:
    start, end = value
    if not 0.0 <= start < end <= 1.0:
        raise ValueError(f"expected two fractions 0 <= start < end <= 1, but got [{start}, {end}]")
    return value


FrameRange = Annotated[tuple[float, float], AfterValidator(_check_frame_range)]
"""The (start, end) fraction of a video to choose frames from."""


def frame_window(
    frame_count: int, frame_range: tuple[float, float], context: int
) -> tuple[int, int]:
    """First and one-past-last frame that may be chosen.

    The window is the ``frame_range`` fraction of the video, shrunk by ``context`` frames at
    both ends so that every chosen frame has all its context frames in the video.
    """
    start = max(math.floor(frame_range[0] * frame_count), context)
    stop = min(math.ceil(frame_range[1] * frame_count), frame_count - context)
    return start, max(start, stop)
