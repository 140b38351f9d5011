"""A Lightning Pose app project (project.yaml in the project folder) gets its label file and its
queue of frames to label from a real daemon, and nothing the app's file check flags."""

from __future__ import annotations

import json
import os

import cv2

from handlers.bundle import frame_index
from tests.harness import Framewatch
from tests.media import read_barcode, write_barcode_video

PROJECT_YAML = """schema_version: 1
view_names: []
keypoint_names:
  - nose
  - tail_base
"""


def test_video_drop_queues_its_frames_in_the_app_project(fw: Framewatch) -> None:
    """The selected frames are queued once each; labeled-data/STEM holds frames only."""
    fw.project.mkdir(parents=True, exist_ok=True)
    (fw.project / "project.yaml").write_text(PROJECT_YAML)
    fw.start()
    (fw.root / "src").mkdir(parents=True)
    video = write_barcode_video(fw.root / "src" / "mouse1.mp4", 200)
    os.replace(video, fw.inbox("videos") / "mouse1.mp4")
    status = fw.wait_state("videos", "mouse1")
    assert "complete" == status["state"], status

    header = (fw.project / "CollectedData.csv").read_text().splitlines()
    assert 3 == len(header)
    assert "nose" in header[1] and "tail_base" in header[1]
    lines = (fw.project / "CollectedData.unlabeled.jsonl").read_text().splitlines()
    queued = [json.loads(line) for line in lines]
    paths = [entry["frame_path"] for entry in queued]
    assert 20 == len(paths) == len(set(paths))
    assert all(entry["predictions"] is None for entry in queued)
    bundle = fw.bundle("mouse1")
    for path in paths:
        png = fw.project / path
        assert frame_index(png.name) == read_barcode(cv2.imread(str(png))), path
    assert {p.suffix for p in bundle.iterdir()} == {".png"}
    reports = fw.project / "framewatch" / "mouse1"
    selected = (reports / "selected_frames.csv").read_text().split()
    assert sorted(p.rsplit("/", 1)[1] for p in paths) == selected

    second = write_barcode_video(fw.root / "src" / "mouse1b.mp4", 200)
    os.replace(second, fw.inbox("videos") / "mouse1.mp4")
    fw.wait_for(
        lambda: len((fw.project / "CollectedData.unlabeled.jsonl").read_text().splitlines()) >= 40,
        timeout=240,
        what="the second drop's frames queued",
    )
    lines = (fw.project / "CollectedData.unlabeled.jsonl").read_text().splitlines()
    assert len(lines) == len(set(lines)), "a frame was queued twice"
