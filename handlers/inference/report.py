"""The report of an inference bundle: why each frame was chosen, in files a person can open.

Two files go into every inference bundle beside the frames (named so no tool takes them for
frames, and not listed in selected_frames.csv; in a Lightning Pose app project the daemon
puts them in ``<project>/.framewatch/STEM/``, as for video bundles):

- ``selection.json``: the method, its parameters, and per chosen frame its score, its error
  episode (the run of flagged frames it belongs to) and the signals that flagged it, with
  their keypoints, strongest first;
- ``contact_sheet.png``: each chosen frame cropped to the animals, with the model's keypoints
  drawn on it (the flagged ones ringed red) and the reason written under it, so a person sees
  at a glance what the model got wrong.

A second bundle for the same video names its report with its UTC time
(``selection.20261125T093000Z.json``), so the first one's is kept.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from handlers.bundle import dated_names, write_png

REPORT_JSON = "selection.json"
CONTACT_SHEET = "contact_sheet.png"
TILE_WIDTH = 240
"""Width of one tile on the contact sheet, in pixels."""
TILE_HEIGHT = 200
SHEET_COLUMNS = 5
LABEL_LINES = 3
LINE_HEIGHT = 15
CROP_MARGIN = 0.6
"""The crop around the keypoints is widened by this share of its size on every side ..."""
MIN_CROP_PX = 80
"""... and is at least this many pixels across, so a single animal keeps its surroundings."""
ANIMAL_BGR = ((255, 160, 0), (0, 200, 0), (200, 0, 200), (0, 200, 255))
FLAGGED_BGR = (0, 0, 255)


def episode_bounds(flagged: npt.NDArray[np.bool_], frame: int, gap: int) -> tuple[int, int] | None:
    """First and last frame of the run of flagged frames around ``frame`` (gaps up to ``gap``
    bridged), or None when ``frame`` is not flagged: the error episode a person should check."""
    if not flagged[frame]:
        return None
    marked = np.flatnonzero(flagged)
    position = int(np.searchsorted(marked, frame))
    breaks = np.flatnonzero(np.diff(marked) > gap + 1)
    first = marked[breaks[breaks < position][-1] + 1] if np.any(breaks < position) else marked[0]
    after = breaks[breaks >= position]
    last = marked[after[0]] if after.size else marked[-1]
    return int(first), int(last)


def frame_reason(flags: Mapping[str, Sequence[str]], score: float) -> list[str]:
    """Up to LABEL_LINES short lines saying why a frame was chosen (strongest signal first)."""
    if not flags:
        return [f"score {score:.2f}: no flag,", "closest to one"]
    lines = []
    for name, keypoints in list(flags.items())[: LABEL_LINES - 1]:
        more = f" +{len(keypoints) - 2}" if len(keypoints) > 2 else ""
        lines.append(f"{name}: {', '.join(keypoints[:2])}{more}")
    return lines


def selection_record(
    method: str,
    parameters: Mapping[str, Any],
    video: str,
    frame_count: int,
    chosen: Sequence[int],
    scores: npt.NDArray[np.float64],
    flags: Mapping[int, Mapping[str, Sequence[str]]],
    spacing: int,
) -> dict[str, Any]:
    """The content of ``selection.json``; ``flags`` from ``hardness.describe_flags``."""
    flagged = scores >= 2.0
    frames = []
    for frame in chosen:
        bounds = episode_bounds(flagged, frame, spacing)
        frames.append(
            {
                "index": int(frame),
                "score": round(float(scores[frame]), 3),
                "episode": list(bounds) if bounds else None,
                "why": {name: list(names) for name, names in flags[frame].items()},
            }
        )
    return {
        "method": method,
        "parameters": dict(parameters),
        "video": {"name": video, "frame_count": frame_count},
        "scores": "a frame with a flag scores 1 + its weighted flags, one without less than 1; "
        "an episode is a run of frames scoring 2 or more",
        "frames": frames,
    }


def keypoint_crop(shape: tuple[int, ...], points: npt.NDArray[np.float64]) -> tuple[int, ...]:
    """(top, bottom, left, right) of a crop around ``points`` (x, y rows; NaN ignored)."""
    height, width = shape[:2]
    seen = points[np.all(np.isfinite(points), axis=1)]
    if seen.size == 0:
        return 0, height, 0, width
    low, high = seen.min(axis=0), seen.max(axis=0)
    centre = (low + high) / 2
    half = np.maximum((high - low) * (0.5 + CROP_MARGIN), MIN_CROP_PX / 2)
    half = np.full(2, half.max())  # square, so animals keep their proportions
    x0, y0 = np.clip(np.floor(centre - half), 0, [width - 1, height - 1]).astype(int)
    x1, y1 = np.clip(np.ceil(centre + half), [x0 + 1, y0 + 1], [width, height]).astype(int)
    return int(y0), int(y1), int(x0), int(x1)


def keypoint_tile(
    image: npt.NDArray[np.uint8],
    points: npt.NDArray[np.float64],
    animal: Sequence[int],
    flagged: Sequence[int],
    reason: Sequence[str],
    title: str,
) -> npt.NDArray[np.uint8]:
    """One tile: the frame cropped to the keypoints, each drawn in its animal's colour (a
    flagged one ringed red), on a fixed-size cell with ``title`` and ``reason`` below."""
    if image.ndim == 2:
        image = np.asarray(cv2.cvtColor(image, cv2.COLOR_GRAY2BGR), dtype=np.uint8)
    top, bottom, left, right = keypoint_crop(image.shape, points)
    crop = image[top:bottom, left:right]
    scale = min(TILE_WIDTH / crop.shape[1], TILE_HEIGHT / crop.shape[0])
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    picture = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
    cell = np.full((TILE_HEIGHT + LINE_HEIGHT * (LABEL_LINES + 1), TILE_WIDTH, 3), 255, np.uint8)
    cell[: size[1], : size[0]] = picture
    for k, (x, y) in enumerate(points):
        if not (np.isfinite(x) and np.isfinite(y)):
            continue
        at = (round((x - left) * scale), round((y - top) * scale))
        colour = ANIMAL_BGR[animal[k] % len(ANIMAL_BGR)]
        cv2.circle(cell, at, 3, colour, -1, cv2.LINE_AA)
        if k in flagged:
            cv2.circle(cell, at, 7, FLAGGED_BGR, 1, cv2.LINE_AA)
    cell[TILE_HEIGHT:] = 255
    for line, text in enumerate([title, *reason]):
        y = TILE_HEIGHT + LINE_HEIGHT * (line + 1) - 3
        cv2.putText(cell, text, (3, y), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
    return cell


def contact_sheet(
    tiles: Mapping[int, npt.NDArray[np.uint8]], columns: int = SHEET_COLUMNS
) -> npt.NDArray[np.uint8]:
    """The tiles in rows of ``columns``, in frame order, with a thin gap between cells."""
    order = sorted(tiles)
    if not order:
        return np.full((LINE_HEIGHT, TILE_WIDTH, 3), 255, dtype=np.uint8)
    cell_h, cell_w = tiles[order[0]].shape[:2]
    rows = -(-len(order) // columns)
    wide = min(columns, len(order))
    sheet = np.full((rows * (cell_h + 2), wide * (cell_w + 2), 3), 200, np.uint8)
    for position, index in enumerate(order):
        top, left = (position // columns) * (cell_h + 2), (position % columns) * (cell_w + 2)
        sheet[top : top + cell_h, left : left + cell_w] = tiles[index]
    return sheet


def report_names(dated: bool) -> tuple[str, str]:
    """File names of the JSON and the contact sheet; dated when asked."""
    json_name, sheet_name = dated_names((REPORT_JSON, CONTACT_SHEET), dated)
    return json_name, sheet_name


def write_report(
    folder: Path,
    record: Mapping[str, Any],
    tiles: Mapping[int, npt.NDArray[np.uint8]],
    dated: bool = False,
) -> list[str]:
    """Write selection.json and the contact sheet into ``folder`` (staging); their names."""
    json_name, sheet_name = report_names(dated)
    (folder / json_name).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    write_png(folder / sheet_name, contact_sheet(tiles))
    return [json_name, sheet_name]
