"""Reading a frame list: ``frame`` (numbers from 0) or ``time_s`` (seconds), one a line.

Each function is pure and returns every problem it finds, naming the line, so one failed
attempt tells the lab everything to fix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

HEADERS = ("frame", "time_s")
TIME_TOLERANCE_MS = 0.5
"""How far a time may be from a frame's timestamp and still name it: times written to the
millisecond (0.033 for frame 1 at 30 fps) match; a time between two frames does not."""


@dataclass(frozen=True)
class FrameList:
    """The list as written: which column, and each value with its line number."""

    column: str
    values: list[tuple[int, float]]


def read_list(text: str, name: str) -> tuple[FrameList | None, list[str]]:
    """The header and values of a frame list, or every problem with its lines.

    Blank lines, Windows line endings, spaces and a trailing comma-free single column are fine.
    """
    lines = [(number, raw.strip()) for number, raw in enumerate(text.splitlines(), 1)]
    lines = [(number, line) for number, line in lines if line]
    if not lines:
        return None, [f"{name} is empty; expected a header line 'frame' or 'time_s', then values"]
    header_line, header = lines[0]
    column = header.lower().strip('"')
    if column not in HEADERS:
        return None, [
            f"{name} line {header_line}: expected the header 'frame' (frame numbers, from 0) "
            f"or 'time_s' (seconds from the start), but got {header!r}"
        ]
    values: list[tuple[int, float]] = []
    problems: list[str] = []
    for number, line in lines[1:]:
        value = parse_value(line, column)
        if value is None:
            what = "a frame number (0, 1, 2, ...)" if column == "frame" else "a time in seconds"
            problems.append(f"{name} line {number}: expected {what}, but got {line!r}")
        else:
            values.append((number, value))
    if not values and not problems:
        problems.append(f"{name} lists no {column} values after its header")
    return FrameList(column, values), problems


def parse_value(text: str, column: str) -> float | None:
    """The number on a line, or None when it is not one (a frame must be a whole number >= 0)."""
    try:
        value = float(text.strip('"'))
    except ValueError:
        return None
    if not math.isfinite(value) or value < 0:
        return None
    if column == "frame" and not value.is_integer():
        return None
    return value


def frame_at_time(seconds: float, timestamps_ms: npt.NDArray[np.float64]) -> int | tuple[int, int]:
    """The frame whose timestamp is ``seconds`` (within TIME_TOLERANCE_MS), else the two
    frames it falls between (-1 before the first, len after the last)."""
    target = seconds * 1000.0
    after = int(np.searchsorted(timestamps_ms, target))
    for candidate in (after - 1, after):
        near = 0 <= candidate < timestamps_ms.size
        if near and abs(timestamps_ms[candidate] - target) <= TIME_TOLERANCE_MS:
            return candidate
    return after - 1, after


def frames_of_list(
    frame_list: FrameList,
    name: str,
    video: str,
    frame_count: int,
    timestamps_ms: npt.NDArray[np.float64],
) -> tuple[list[int], list[str]]:
    """The frames the list names, in order, and every problem naming its line."""
    chosen: list[int] = []
    first_line: dict[int, int] = {}
    problems: list[str] = []
    for number, value in frame_list.values:
        where = f"{name} line {number}"
        if frame_list.column == "frame":
            index = int(value)
            if index >= frame_count:
                problems.append(
                    f"{where}: frame {index} is past the end of {video}, which has "
                    f"{frame_count} frames (0 to {frame_count - 1})"
                )
                continue
        else:
            found = frame_at_time(value, timestamps_ms)
            if isinstance(found, tuple):
                problems.append(time_problem(where, value, video, found, timestamps_ms))
                continue
            index = found
        if index in first_line:
            problems.append(f"{where} repeats frame {index} (already on line {first_line[index]})")
            continue
        first_line[index] = number
        chosen.append(index)
    return chosen, problems


def time_problem(
    where: str,
    seconds: float,
    video: str,
    between: tuple[int, int],
    timestamps_ms: npt.NDArray[np.float64],
) -> str:
    """Why a time names no frame: past the end, or between two frames (named with times)."""
    before, after = between
    if after >= timestamps_ms.size:
        end = timestamps_ms[-1] / 1000
        return f"{where}: {seconds:g} s is past the last frame of {video} (at {end:.4f} s)"
    if before < 0:
        start = timestamps_ms[0] / 1000
        return f"{where}: {seconds:g} s is before the first frame of {video} (at {start:.4f} s)"
    return (
        f"{where}: {seconds:g} s falls between frame {before} "
        f"({timestamps_ms[before] / 1000:.4f} s) and frame {after} "
        f"({timestamps_ms[after] / 1000:.4f} s) of {video}; give the time of one frame, "
        "or use a 'frame' column"
    )
