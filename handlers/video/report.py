"""The bundle's report: how the frames were chosen and how well, in files a person can open.

Three files go into every video bundle beside the frames (named so no tool takes them for
frames, and not listed in selected_frames.csv):

- ``selection.json``: the method, its parameters, the measures that need no ground truth
  (coverage and redundancy in the embedding the choice used), what was set aside, and where
  in the video each chosen frame lies;
- ``contact_sheet.png``: the chosen frames as labelled thumbnails, to judge them at a glance;
- ``timeline.png``: where the chosen frames lie in the video, and what was set aside.

A second bundle for the same folder names its report with its UTC time
(``selection.20261125T093000Z.json``), so the first one's is kept.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from handlers import sheet
from handlers.bundle import dated_names, write_png
from handlers.frames import VideoScan
from handlers.video.selection import Selection

REPORT_JSON = "selection.json"
CONTACT_SHEET = "contact_sheet.png"
TIMELINE = "timeline.png"

TIMELINE_SIZE = (1200, 150)
# The contact sheet is drawn for every kind (handlers/sheet.py); its names stay here as well.
TILE_WIDTH, SHEET_COLUMNS, LABEL_HEIGHT = sheet.TILE_WIDTH, sheet.SHEET_COLUMNS, sheet.LABEL_HEIGHT
sheet_tile, contact_sheet = sheet.sheet_tile, sheet.contact_sheet

CHOSEN_BGR = (40, 40, 220)
FLICKER_BGR = (0, 200, 255)
INTRUSION_BGR = (200, 120, 40)


def framewatch_version() -> str:
    """The installed framewatch version, or 'unknown' when running from an uninstalled tree."""
    try:
        return metadata.version("framewatch")
    except metadata.PackageNotFoundError:
        return "unknown"


def frame_spans(indices: list[int], gap: int) -> list[list[int]]:
    """Runs of frame indices, merged where neighbours are at most ``gap`` apart: [[first, last]]."""
    spans: list[list[int]] = []
    for index in sorted(indices):
        if spans and index - spans[-1][1] <= gap:
            spans[-1][1] = index
        else:
            spans.append([index, index])
    return spans


def sample_step(scan: VideoScan) -> int:
    """Frames between two samples of the scan (1 unless the video was long)."""
    if scan.indices.size < 2:
        return 1
    return int(np.min(np.diff(scan.indices)))


def frame_time_s(scan: VideoScan, index: int) -> float | None:
    """Seconds from the start of the video to frame ``index``, when the scan knows it."""
    if index < scan.timestamps.size:
        return round(float(scan.timestamps[index]) / 1000.0, 3)
    return None


def _finite(value: float) -> float | None:
    return round(value, 4) if math.isfinite(value) else None


def selection_record(
    method: str, parameters: Mapping[str, Any], choice: Selection, scan: VideoScan
) -> dict[str, Any]:
    """The content of ``selection.json``."""
    step = sample_step(scan)
    return {
        "framewatch": framewatch_version(),
        "method": method,
        "parameters": dict(parameters),
        "video": {
            "frame_count": scan.frame_count,
            "frame_size": [scan.width, scan.height],
            "samples": int(scan.indices.size),
            "sample_step": step,
        },
        "measures": {
            "space": "embedding the choice used (a sample's mean squared distance from the "
            "centre is 1); lower coverage is better, higher redundancy is better",
            "coverage_mean": _finite(choice.coverage_mean),
            "coverage_worst": _finite(choice.coverage_worst),
            "redundancy": _finite(choice.redundancy),
            "candidates": choice.candidates,
        },
        "set_aside": {
            "flicker_frames": frame_spans(choice.flicker, step),
            "intrusion_frames": frame_spans(choice.intrusion, step),
        },
        "frames": [
            {
                "index": index,
                "position": round(index / max(scan.frame_count, 1), 4),
                "time_s": frame_time_s(scan, index),
            }
            for index in choice.frames
        ],
    }


def timeline(
    frame_count: int,
    chosen: list[int],
    flicker: list[list[int]],
    intrusion: list[list[int]],
    size: tuple[int, int] = TIMELINE_SIZE,
) -> npt.NDArray[np.uint8]:
    """The video as a bar: a red tick per chosen frame; set-aside spans ([first, last]) below."""
    width, height = size
    image = np.full((height, width, 3), 255, dtype=np.uint8)
    left, right, top, bottom = 20, width - 20, 30, height - 50

    def x_of(index: int) -> int:
        return left + round((right - left) * index / max(frame_count - 1, 1))

    cv2.rectangle(image, (left, top), (right, bottom), (225, 225, 225), -1)
    for spans, colour in ((intrusion, INTRUSION_BGR), (flicker, FLICKER_BGR)):
        for first, last in spans:
            corners = (x_of(first) - 1, bottom - 12), (x_of(last) + 1, bottom)
            cv2.rectangle(image, *corners, colour, -1)
    for index in chosen:
        cv2.line(image, (x_of(index), top), (x_of(index), bottom - 14), CHOSEN_BGR, 2)
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(image, "0", (left, bottom + 18), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    end_label = str(frame_count - 1)
    cv2.putText(
        image,
        end_label,
        (right - 9 * len(end_label), bottom + 18),
        font,
        0.45,
        (0, 0, 0),
        1,
        cv2.LINE_AA,
    )
    legend = (
        f"{len(chosen)} chosen (red) of {frame_count} frames;  set aside: "
        f"intrusions (blue) {len(intrusion)}, flicker (yellow) {len(flicker)}"
    )
    cv2.putText(image, legend, (left, 20), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return image


def report_names(dated: bool) -> tuple[str, str, str]:
    """File names of the JSON, the contact sheet and the timeline; dated when asked."""
    json_name, sheet_name, timeline_name = dated_names(
        (REPORT_JSON, CONTACT_SHEET, TIMELINE), dated
    )
    return json_name, sheet_name, timeline_name


def write_report(
    folder: Path,
    record: Mapping[str, Any],
    tiles: Mapping[int, npt.NDArray[np.uint8]],
    dated: bool = False,
) -> list[str]:
    """Write selection.json, the contact sheet and the timeline into ``folder``; their names."""
    json_name, sheet_name, timeline_name = report_names(dated)
    (folder / json_name).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    write_png(folder / sheet_name, contact_sheet(tiles))
    set_aside = record["set_aside"]
    bar = timeline(
        int(record["video"]["frame_count"]),
        [int(frame["index"]) for frame in record["frames"]],
        set_aside["flicker_frames"],
        set_aside["intrusion_frames"],
    )
    write_png(folder / timeline_name, bar)
    return [json_name, sheet_name, timeline_name]
