"""The bundle's report: selection.json, the contact sheet and the timeline."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from handlers.bundle import SELECTED_CSV, frame_index
from handlers.outcome import ignore_progress
from handlers.video import VideoOptions, handle_video, report
from tests.media import write_barcode_video

REPORT_FILES = {report.REPORT_JSON, report.CONTACT_SHEET, report.TIMELINE}


def options(n: int, exclude: frozenset[int] = frozenset()) -> VideoOptions:
    return VideoOptions(
        frames_per_video=n, frame_range=(0.0, 1.0), context_frames=1, exclude_frames=exclude
    )


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 300-frame barcode video."""
    return write_barcode_video(tmp_path_factory.mktemp("clip") / "clip", 300)


@pytest.mark.parametrize(
    ("indices", "gap", "expected"),
    [
        ([], 1, []),
        ([5], 1, [[5, 5]]),
        ([1, 2, 3, 7, 8], 1, [[1, 3], [7, 8]]),
        ([0, 4, 8, 20], 4, [[0, 8], [20, 20]]),
    ],
    ids=["none", "one", "two-runs", "sampled-every-4th"],
)
def test_frame_spans(indices: list[int], gap: int, expected: list[list[int]]) -> None:
    """Frame indices become [first, last] runs, neighbours up to ``gap`` apart merged."""
    assert expected == report.frame_spans(indices, gap)


def test_contact_sheet_lays_tiles_in_rows_of_five() -> None:
    """Seven 200x150 tiles make two rows of five cells, each with a label strip below."""
    tiles = {i * 10: np.full((150, 200, 3), i * 30, dtype=np.uint8) for i in range(7)}
    sheet = report.contact_sheet(tiles)
    assert (2 * (150 + report.LABEL_HEIGHT), 5 * 200, 3) == sheet.shape
    assert 60 == int(sheet[10, 2 * 200 + 10, 0])


def test_timeline_ticks_sit_where_the_frames_are() -> None:
    """A chosen frame halfway through the video is drawn in red halfway along the bar."""
    image = report.timeline(1001, [500], [], [[0, 100]])
    middle = 20 + round((1200 - 40) * 500 / 1000)
    assert (40, 40, 220) == tuple(int(v) for v in image[60, middle])
    assert report.INTRUSION_BGR == tuple(int(v) for v in image[95, 30])


def test_every_bundle_carries_the_report(clip: Path, tmp_path: Path) -> None:
    """selection.json, contact_sheet.png and timeline.png are written, listed, not in the CSV."""
    result = handle_video([clip], options(8), tmp_path, ignore_progress)
    names = {path.name for path in tmp_path.iterdir()}
    csv = (tmp_path / SELECTED_CSV).read_text().splitlines()
    assert (REPORT_FILES, REPORT_FILES) == (REPORT_FILES & names, REPORT_FILES & set(result.files))
    assert [] == [line for line in csv if frame_index(line) is None]


def test_selection_json_says_what_was_chosen_and_how_well(clip: Path, tmp_path: Path) -> None:
    """The record lists the chosen frames with their place in the video, and finite measures."""
    result = handle_video([clip], options(8), tmp_path, ignore_progress)
    record = json.loads((tmp_path / report.REPORT_JSON).read_text())
    assert result.selected == [frame["index"] for frame in record["frames"]]
    assert [round(i / 300, 4) for i in result.selected] == [f["position"] for f in record["frames"]]
    assert (8, 300) == (record["parameters"]["frames_per_video"], record["video"]["frame_count"])
    measures = record["measures"]
    assert 0 < measures["coverage_mean"] <= measures["coverage_worst"]
    assert measures["redundancy"] > 0
    assert record["method"] == result.report["method"]


def test_contact_sheet_shows_each_chosen_frame(clip: Path, tmp_path: Path) -> None:
    """The sheet holds one labelled cell per chosen frame (8 frames: two rows of five cells)."""
    handle_video([clip], options(8), tmp_path, ignore_progress)
    sheet = cv2.imread(str(tmp_path / report.CONTACT_SHEET))
    tile_h = round(120 * report.TILE_WIDTH / 160)
    assert (2 * (tile_h + report.LABEL_HEIGHT), 5 * report.TILE_WIDTH) == sheet.shape[:2]


def test_a_second_bundle_dates_its_report(clip: Path, tmp_path: Path) -> None:
    """When frames are already labeled, the report's names carry a UTC time, so none clash."""
    result = handle_video([clip], options(5, frozenset({10, 20})), tmp_path, ignore_progress)
    dated = sorted(name for name in result.files if frame_index(name) is None)
    assert [SELECTED_CSV] == [name for name in dated if name in REPORT_FILES | {SELECTED_CSV}]
    assert ["contact_sheet", "selection", "timeline"] == sorted(
        name.split(".")[0] for name in dated if name != SELECTED_CSV
    )
