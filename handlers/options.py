"""Option types shared by the config file, sidecars and handlers."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator


def _check_frame_range(value: tuple[float, float]) -> tuple[float, float]:
    start, end = value
    if not 0.0 <= start < end <= 1.0:
        raise ValueError(f"expected two fractions 0 <= start < end <= 1, but got [{start}, {end}]")
    return value


FrameRange = Annotated[tuple[float, float], AfterValidator(_check_frame_range)]
"""The (start, end) fraction of a video to choose frames from."""
