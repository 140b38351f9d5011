"""A Lightning Pose app project (project.yaml in the project folder) gets its label file and its
queue of frames to label from a real daemon, and the real app (lightning-pose-app, in a venv of
its own: .ci/run makes it) lists those frames, serves them with their context, shows the model's
guess and finds no problem file; a frame saved in the app is never queued again."""

from __future__ import annotations

import csv
import json
import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import cv2
import pytest

from handlers.bundle import frame_index
from tests.harness import REPO, Framewatch
from tests.media import read_barcode, write_barcode_video
from tests.synthetic_predictions import make_predictions, write_csv

PROJECT_YAML = """schema_version: 1
view_names: []
keypoint_names:
  - nose
  - tail_base
"""

QUEUE = "CollectedData.unlabeled.jsonl"


def app_python() -> Path | None:
    """The interpreter of the venv holding lightning-pose-app, if there is one."""
    named = os.environ.get("FRAMEWATCH_LPAPP_PYTHON")
    path = Path(named) if named else REPO / ".venv-lpapp" / "bin" / "python"
    return path if path.is_file() else None


def ask_app(fw: Framewatch, *args: str) -> Any:
    """Run tests/lpapp_probe.py with the app's own Python; its JSON answer."""
    python = app_python()
    assert python is not None
    done = subprocess.run(
        [str(python), str(REPO / "tests" / "lpapp_probe.py"), args[0], str(fw.project),
         str(fw.root / "lp-system"), *args[1:]],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert 0 == done.returncode, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def queued(fw: Framewatch) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (fw.project / QUEUE).read_text().splitlines()]


def selected(fw: Framewatch, stem: str) -> list[str]:
    """The selected frames of ``stem``'s bundles as app paths, from selected_frames.csv."""
    names = (fw.project / ".framewatch" / stem / "selected_frames.csv").read_text().split()
    return [f"labeled-data/{stem}/{name}" for name in names]


def drop_video(fw: Framewatch, stem: str, frames: int = 200, seed: str = "") -> None:
    (fw.root / "src").mkdir(parents=True, exist_ok=True)
    video = write_barcode_video(fw.root / "src" / f"{stem}{seed}.mp4", frames)
    os.replace(video, fw.inbox("videos") / f"{stem}.mp4")


def test_video_drop_queues_its_frames_in_the_app_project(fw: Framewatch) -> None:
    """The selected frames are queued once each; labeled-data/STEM holds frames only."""
    fw.project.mkdir(parents=True, exist_ok=True)
    (fw.project / "project.yaml").write_text(PROJECT_YAML)
    fw.start()
    drop_video(fw, "mouse1")
    status = fw.wait_state("videos", "mouse1")
    assert "complete" == status["state"], status

    header = (fw.project / "CollectedData.csv").read_text().splitlines()
    assert 3 == len(header)
    assert "nose" in header[1] and "tail_base" in header[1]
    entries = queued(fw)
    paths = [entry["frame_path"] for entry in entries]
    assert 20 == len(paths) == len(set(paths))
    assert all(entry["predictions"] is None for entry in entries)
    bundle = fw.bundle("mouse1")
    for path in paths:
        png = fw.project / path
        assert frame_index(png.name) == read_barcode(cv2.imread(str(png))), path
    assert {p.suffix for p in bundle.iterdir()} == {".png"}
    assert sorted(paths) == selected(fw, "mouse1")
    # the app may run as another user: the queue is made with the umask's mode, not 0600
    umask = os.umask(0)
    os.umask(umask)
    assert 0o666 & ~umask == stat.S_IMODE((fw.project / QUEUE).stat().st_mode)

    drop_video(fw, "mouse1", seed="b")
    fw.wait_for(
        lambda: len((fw.project / QUEUE).read_text().splitlines()) >= 40,
        timeout=240,
        what="the second drop's frames queued",
    )
    lines = (fw.project / QUEUE).read_text().splitlines()
    assert len(lines) == len(set(lines)), "a frame was queued twice"


@pytest.mark.skipif(
    app_python() is None,
    reason="lightning-pose-app is not installed: .ci/run makes .venv-lpapp "
    "(or set FRAMEWATCH_LPAPP_PYTHON to a Python that has it)",
)
def test_the_real_app_lists_serves_and_keeps_the_frames(fw: Framewatch) -> None:
    """A video drop and a model-output drop into a project: the app's own routes list exactly
    the selected frames to label, serve each with its context frames n-2..n+2, show the
    model's guess, and report no problem file; a frame saved through the app stays out of the
    queue when the same video is dropped again."""
    keypoints = ["a_nose", "a_tail", "b_nose"]  # a part of the model's 8; "a_tail" as is
    fw.project.mkdir(parents=True, exist_ok=True)
    (fw.project / "project.yaml").write_text(
        "schema_version: 1\nview_names: []\nkeypoint_names: [a_nose, a_tail, b_nose]\n"
    )
    fw.start()
    drop_video(fw, "mouse1")
    data = make_predictions(frames=200, errors_per_kind=1, seed=9)
    inbox = fw.inbox("inference")
    write_csv(inbox / ".mouse2.csv", data.xy, data.likelihood, scorer="lp-model")
    write_barcode_video(inbox / "mouse2", 200)
    os.replace(inbox / ".mouse2.csv", inbox / "mouse2.csv")
    assert "complete" == fw.wait_state("videos", "mouse1")["state"]
    assert "complete" == fw.wait_state("inference", "mouse2")["state"]

    seen = ask_app(fw, "check")
    assert {} == seen["issues"]
    assert ["CollectedData.csv"] == seen["label_files"]
    assert [] == seen["missing_frames"]
    paths = [entry["frame_path"] for entry in seen["queue"]]
    assert sorted(paths) == sorted(selected(fw, "mouse1") + selected(fw, "mouse2"))
    with (fw.project / ".framewatch" / "mouse2" / "predictions.csv").open() as handle:
        rows = {row[0]: row for row in list(csv.reader(handle))[3:]}
    columns = {name: 1 + 3 * index for index, name in enumerate(
        f"{a}_{p}" for a in "ab" for p in ("nose", "left_ear", "right_ear", "tail"))}  # fmt: skip
    for entry in seen["queue"]:
        guess = entry["predictions"]
        if entry["frame_path"].startswith("labeled-data/mouse1/"):
            assert guess is None
            continue
        assert "lp-model" == guess["model_name"]
        row = rows[entry["frame_path"]]
        assert keypoints == [p["keypoint_name"] for p in guess["predictions"]]
        for point in guess["predictions"]:
            column = columns[point["keypoint_name"]]
            assert (float(row[column]), float(row[column + 1])) == (point["x"], point["y"])

    first = selected(fw, "mouse1")
    saved = first[0]
    ask_app(fw, "save", saved)
    assert saved not in [entry["frame_path"] for entry in queued(fw)]
    drop_video(fw, "mouse1", seed="b")
    fw.wait_for(
        lambda: (
            selected(fw, "mouse1") != first
            and (fw.status("videos", "mouse1") or {}).get("state") == "complete"
        ),
        timeout=240,
        what="the second mouse1 bundle",
    )
    second = selected(fw, "mouse1")  # the newer list replaces the older (kept dated)
    assert 20 == len(second) and not set(first) & set(second), "a frame was chosen again"
    again = ask_app(fw, "check")
    paths = [entry["frame_path"] for entry in again["queue"]]
    assert saved not in paths
    assert len(paths) == len(set(paths))
    assert set(paths) == set(first + second + selected(fw, "mouse2")) - {saved}
    assert {} == again["issues"]
    assert [] == again["missing_frames"]
