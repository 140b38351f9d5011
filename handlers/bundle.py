"""The files of a labeling bundle, named the way Lightning Pose and Label Studio expect."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

SELECTED_CSV = "selected_frames.csv"
FRAME_NAME = re.compile(r"^img(\d{8})\.png$")
# A frame the Lightning Pose app extracted itself is a .jpg of the same name.
TAKEN_NAME = re.compile(r"^img(\d{8})\.(?:png|jpg)$")


def frame_filename(index: int) -> str:
    """``img%08d.png`` for frame ``index``."""
    return f"img{index:08d}.png"


def frame_index(name: str) -> int | None:
    """The frame index in an ``img%08d.png`` name, or None if the name is not one."""
    match = FRAME_NAME.match(name)
    return int(match.group(1)) if match else None


def with_context(selected: Iterable[int], context: int, frame_count: int) -> list[int]:
    """Every selected frame plus ``context`` neighbours on each side, inside the video."""
    wanted = {
        neighbour
        for index in selected
        for neighbour in range(index - context, index + context + 1)
        if 0 <= neighbour < frame_count
    }
    return sorted(wanted)


def write_png(path: Path, image: npt.NDArray[np.uint8]) -> None:
    """Encode ``image`` as PNG and write it, raising OSError (with errno) when it cannot.

    Written by Python rather than ``cv2.imwrite``, which only returns False: a full disk or a
    refused folder must raise an OSError whose errno the daemon knows to wait out and retry.
    """
    encoded, png = cv2.imencode(".png", image)
    if not encoded:
        raise OSError(f"could not encode {path.name} as PNG")
    path.write_bytes(png.tobytes())


def write_selected_csv(folder: Path, selected: Iterable[int]) -> str:
    """Write ``selected_frames.csv``: one file name a line, sorted, no header."""
    lines = "".join(frame_filename(index) + "\n" for index in sorted(set(selected)))
    (folder / SELECTED_CSV).write_text(lines, encoding="utf-8")
    return SELECTED_CSV


def existing_frames(folder: Path) -> frozenset[int]:
    """Frame indices already present as PNGs or JPEGs in a labeled-data folder (empty if none)."""
    if not folder.is_dir():
        return frozenset()
    found = (TAKEN_NAME.match(entry.name) for entry in folder.iterdir())
    return frozenset(int(match.group(1)) for match in found if match)


def dated_names(names: Sequence[str], dated: bool) -> list[str]:
    """``names``, or each with the same UTC time before its suffix: a second bundle in one
    folder must not replace the first one's reports."""
    if not dated:
        return list(names)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return [f"{Path(name).stem}.{stamp}{Path(name).suffix}" for name in names]
