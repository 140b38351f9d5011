"""A multi-view Lightning Pose app project (``view_names`` in project.yaml) fed by a real
daemon with a session of real views (../shared/data/multiview-mouse, cut short), then a session
of the model's outputs for them; the real app's own code (its routes, plus ports of its browser
code that groups label files by view and builds multi-view frames from line i of every view's
queue) lists every chosen moment as one multi-view frame holding every view."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.harness import Framewatch, shared_file
from tests.media import write_barcode_video
from tests.test_inference_session import cut_predictions
from tests.test_labeler_lightning_pose import app_python, ask_app
from tests.test_sessions import cut_clip

VIEWS = ("top", "side", "back", "mid")  # the four cameras of the real session
FRAMES = 60
PROJECT_YAML = """schema_version: 1
view_names:
  - top
  - side
  - back
  - mid
keypoint_names: [Nose, Head, Trunk]
"""
CONFIG = "[extract]\nframes_per_video = 4\ncontext_frames = 2\n"


@pytest.fixture(scope="module")
def views(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """minimal_<view>.mp4 of the four views (60 frames, 320x256) and the model's predictions."""
    folder = tmp_path_factory.mktemp("mv-app")
    for view in VIEWS:
        cut_clip(
            shared_file(f"multiview-mouse/minimal_{view}.mp4"),
            folder / f"minimal_{view}.mp4",
            0,
            FRAMES,
        )
        cut_predictions(
            shared_file(f"multiview-mouse/minimal_{view}.csv"),
            folder / f"minimal_{view}.csv",
            FRAMES,
        )
    return folder


def put(fw: Framewatch, kind: str, source: Path) -> None:
    """Copy ``source`` into an inbox, appearing in one rename."""
    staged = fw.root / "src" / source.name
    staged.parent.mkdir(parents=True, exist_ok=True)
    staged.write_bytes(source.read_bytes())
    os.replace(staged, fw.inbox(kind) / source.name)


def moments(fw: Framewatch) -> set[str]:
    """Every session frame chosen so far, as the app's multi-view key."""
    keys = set()
    for stem in ("minimal_top",):
        folder = fw.project / ".framewatch" / stem
        for listing in folder.glob("selected_frames*.csv"):
            keys |= {f"labeled-data/minimal_*/{name}" for name in listing.read_text().split()}
    return keys


@pytest.mark.skipif(
    app_python() is None,
    reason="lightning-pose-app is not installed: .ci/run makes .venv-lpapp "
    "(or set FRAMEWATCH_LPAPP_PYTHON to a Python that has it)",
)
def test_the_real_app_shows_each_chosen_moment_as_one_multiview_frame(
    tmp_path: Path, views: Path
) -> None:
    with Framewatch(tmp_path / "fw", extra_config=CONFIG) as fw:
        fw.project.mkdir(parents=True, exist_ok=True)
        (fw.project / "project.yaml").write_text(PROJECT_YAML)
        fw.start()
        for view in VIEWS:
            put(fw, "videos", views / f"minimal_{view}.mp4")
        assert "complete" == fw.wait_state("videos", "minimal")["state"]
        for view in VIEWS:  # the model's outputs; the videos are the project's now
            put(fw, "inference", views / f"minimal_{view}.csv")
        status = fw.wait_state("inference", "minimal")
        assert "complete" == status["state"], status

        seen = ask_app(fw, "mvcheck")
        assert {} == seen["issues"]
        assert {"CollectedData_*.csv": list(VIEWS)} == {
            key: sorted(group, key=VIEWS.index) for key, group in seen["label_file_groups"].items()
        }
        assert [] == seen["missing_frames"]
        frames = seen["mv_frames"]
        assert 8 == len(frames)  # 4 moments from the videos, 4 from the model's outputs
        for frame in frames:
            assert set(VIEWS) == set(frame["paths"]), frame
            assert {frame["key"]} == set(frame["view_keys"].values()), frame
        guessed = {f["key"] for f in frames if all(f["guesses"].values())}
        assert 4 == len(guessed)  # the model-output moments carry the model's guess in every view
        assert {f["key"] for f in frames} == moments(fw)

        ask_app(fw, "mvsave", "0")  # label the first multi-view frame in the app
        after = ask_app(fw, "mvcheck")
        assert [f["key"] for f in frames[1:]] == [f["key"] for f in after["mv_frames"]]
        for frame in after["mv_frames"]:
            assert {frame["key"]} == set(frame["view_keys"].values()), frame
        assert {} == after["issues"]


def test_a_single_video_in_a_multiview_project_is_refused_naming_the_session_files(
    tmp_path: Path,
) -> None:
    """mouse1.mp4 in a project with view_names [top, side, back, mid]: failed with a message
    that says how to drop it as a session; no CollectedData.csv (the app flags it), the file
    kept."""
    with Framewatch(tmp_path / "fw", extra_config=CONFIG) as fw:
        fw.project.mkdir(parents=True, exist_ok=True)
        (fw.project / "project.yaml").write_text(PROJECT_YAML)
        fw.start()
        (fw.root / "src").mkdir(parents=True)
        video = write_barcode_video(fw.root / "src" / "mouse1.mp4", 30)
        os.replace(video, fw.inbox("videos") / "mouse1.mp4")
        status = fw.wait_state("videos", "mouse1")
        assert "failed" == status["state"], status
        assert "multi-view" in status["message"]
        assert "mouse1_top.mp4, mouse1_side.mp4" in status["message"]
        assert not (fw.project / "CollectedData.csv").exists()
        assert not (fw.project / "labeled-data" / "mouse1").exists()
        assert (fw.failed("videos") / "mouse1.mp4").is_file()
