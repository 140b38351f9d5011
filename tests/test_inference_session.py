"""Model outputs of a multi-view session: the cross-view scoring with known answers, the
handler on real views and predictions (../shared/data/multiview-mouse), and a real daemon."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from handlers.inference.session import (
    InferenceSessionOptions,
    handle_inference_session,
    session_poses,
    session_scores,
)
from handlers.outcome import InputError
from tests.harness import Framewatch, shared_file
from tests.test_sessions import SESSION_CONFIG, SIZE, cut_clip, decode_all

VIEWS = ("back", "mid", "side", "top")
FRAMES = 60
SCALE = SIZE[0] / 1280  # the clips are 1280x1024 scaled to 320x256
ERROR_VIEW = "side"
ERROR_FRAMES = range(30, 34)


def cut_predictions(
    source: Path, target: Path, count: int, shift_px: float = 0.0, shifted: range = range(0)
) -> Path:
    """The first ``count`` rows of a predictions CSV, positions scaled like the clips; on the
    rows of ``shifted`` the first three keypoints (Nose, Ear_R, Ear_L) moved ``shift_px`` right
    and down: the head put off the body, a model error in this view only."""
    with source.open(newline="") as handle:
        rows = list(csv.reader(handle))
    coords = rows[2]
    out = rows[:3]
    for row in rows[3 : 3 + count]:
        frame = int(row[0])
        cells = [row[0]]
        for column, text in enumerate(row[1:], start=1):
            if coords[column] in ("x", "y") and text:
                moved = frame in shifted and column <= 3 * 3
                value = float(text) * SCALE + (shift_px if moved else 0.0)
                text = f"{value:.3f}"
            cells.append(text)
        out.append(cells)
    with target.open("w", newline="") as handle:
        csv.writer(handle).writerows(out)
    return target


@pytest.fixture(scope="module")
def session_drop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """minimal_<view>.mp4 (60 frames, 320x256) and minimal_<view>.csv; side's model puts the
    head 40 px off the body on frames 30-33, the only error injected."""
    folder = tmp_path_factory.mktemp("mv-inference")
    for view in VIEWS:
        cut_clip(
            shared_file(f"multiview-mouse/minimal_{view}.mp4"),
            folder / f"minimal_{view}.mp4",
            0,
            FRAMES,
        )
        shift = 40.0 if view == ERROR_VIEW else 0.0
        cut_predictions(
            shared_file(f"multiview-mouse/minimal_{view}.csv"),
            folder / f"minimal_{view}.csv",
            FRAMES,
            shift,
            ERROR_FRAMES if view == ERROR_VIEW else range(0),
        )
    return folder


def options(views: list[str], **extra: object) -> InferenceSessionOptions:
    values: dict[str, object] = {
        "session": "minimal",
        "views": views,
        "frames_per_video": 3,
        "frame_range": (0.0, 1.0),
        "context_frames": 1,
        "likelihood_threshold": 0.9,
        "z_threshold": 3.0,
        "pca_variance": 0.99,
        "min_spacing_frames": 4,
        **extra,
    }
    return InferenceSessionOptions(**values)  # type: ignore[arg-type]


def test_a_frame_wrong_in_one_view_scores_as_wrong_in_the_session() -> None:
    """The session score is the worst view's, read at each view's own frame (its offset)."""
    top = np.array([0.2, 0.3, 0.1, 0.4, 0.2, 0.3])
    side = np.array([0.1, 0.2, 0.2, 0.1, 5.0, 0.1])  # side's frame 4 is wrong
    scores = session_scores([top, side], [0, 2], 4)  # side started 2 frames earlier
    assert scores.tolist() == [0.2, 0.3, 5.0, 0.4]  # session frame 2 = side frame 4


def test_each_views_poses_weigh_the_same() -> None:
    """A camera with ten times the pixels does not decide how far apart two poses are."""
    rng = np.random.default_rng(0)
    small, large = rng.normal(size=(20, 4)), 10 * rng.normal(size=(20, 4))
    joint = session_poses([small, large], [0, 0], 20)
    spreads = [
        float(np.sqrt(np.mean(np.var(part, axis=0)))) for part in (joint[:, :4], joint[:, 4:])
    ]
    assert spreads == pytest.approx([1.0, 1.0])


def noop(fraction: float, message: str) -> None:
    """A progress callback that reports nowhere."""


def chosen_frames(folder: Path) -> list[int]:
    return [int(line[3:11]) for line in (folder / "selected_frames.csv").read_text().split()]


def test_an_error_in_one_view_only_is_found_and_exported_from_every_view(
    session_drop: Path, tmp_path: Path
) -> None:
    """Side's model is wrong on frames 30-33 only. The session choice has a frame there, the
    same frames in every view, each PNG exact, each view's own predictions beside them; a
    choice from the other three views alone has none there (so the error is found only by
    scoring across views)."""
    files = sorted(session_drop.iterdir())
    result = handle_inference_session(files, options(list(VIEWS)), tmp_path / "s", lambda *_: None)
    assert any(f in ERROR_FRAMES for f in result.selected), result.selected
    assert len(result.selected) == 3
    for view in VIEWS:
        folder = tmp_path / "s" / f"minimal_{view}"
        assert chosen_frames(folder) == result.selected
        reference = decode_all(session_drop / f"minimal_{view}.mp4")
        for png in folder.glob("img*.png"):
            assert np.array_equal(reference[int(png.stem[3:])], cv2.imread(str(png))), png
        with (folder / "predictions.csv").open(newline="") as handle:
            rows = list(csv.reader(handle))
        assert [r[0] for r in rows[3:]] == [
            f"labeled-data/minimal_{view}/img{f:08d}.png" for f in result.selected
        ]
        record = json.loads((folder / "session.json").read_text())
        assert record["frames"] == result.selected
        assert record["views"][view]["predictions"] == [f"minimal_{view}.csv"]
    hit = next(c for c in result.report["chosen"] if c["frame"] in ERROR_FRAMES)
    assert hit["views_by_score"][0] == ERROR_VIEW
    others = [v for v in VIEWS if v != ERROR_VIEW]
    alone = handle_inference_session(files, options(others), tmp_path / "o", lambda *_: None)
    assert not any(f in ERROR_FRAMES for f in alone.selected), alone.selected


def test_views_of_different_lengths_fail_naming_every_count(
    session_drop: Path, tmp_path: Path
) -> None:
    short = tmp_path / "drop"
    short.mkdir()
    for view in ("side", "top"):
        (short / f"minimal_{view}.mp4").symlink_to(session_drop / f"minimal_{view}.mp4")
    cut_predictions(
        shared_file("multiview-mouse/minimal_side.csv"), short / "minimal_side.csv", FRAMES
    )
    cut_predictions(shared_file("multiview-mouse/minimal_top.csv"), short / "minimal_top.csv", 50)
    with pytest.raises(InputError) as failed:
        handle_inference_session(
            sorted(short.iterdir()), options(["side", "top"]), tmp_path / "s", lambda *_: None
        )
    text = " ".join(failed.value.problems)
    assert "view top" in text and "50 rows" in text  # top's rows against its video's 60 frames


def drop_file(fw: Framewatch, source: Path, name: str) -> None:
    """Copy ``source`` into the inference inbox as ``name``, appearing in one rename."""
    staged = fw.root / "src" / name
    staged.parent.mkdir(parents=True, exist_ok=True)
    staged.write_bytes(source.read_bytes())
    os.replace(staged, fw.inbox("inference") / name)


def test_a_session_of_model_outputs_through_the_daemon(tmp_path: Path, session_drop: Path) -> None:
    """Views' outputs dropped apart: nothing is taken until all four are in; then one status,
    the same frames in every view (one in side's error), each view's predictions beside them."""
    config = SESSION_CONFIG.replace("frames_per_video = 5", "frames_per_video = 3")
    with Framewatch(tmp_path / "fw", extra_config=config) as fw:
        fw.start()
        for view in ("top", "side"):
            drop_file(fw, session_drop / f"minimal_{view}.mp4", f"minimal_{view}.mp4")
            drop_file(fw, session_drop / f"minimal_{view}.csv", f"minimal_{view}.csv")
        waiting = fw.wait_for(
            lambda: (s := fw.status("inference", "minimal")) and s.get("views_present") and s,
            30,
            "the session to say which views are missing",
        )
        assert "arriving" == waiting["state"]
        assert ["back", "mid"] == waiting["views_missing"]
        assert not (fw.project / "labeled-data" / "minimal_top").exists()
        for view in ("mid", "back"):
            drop_file(fw, session_drop / f"minimal_{view}.mp4", f"minimal_{view}.mp4")
            drop_file(fw, session_drop / f"minimal_{view}.csv", f"minimal_{view}.csv")
        status = fw.wait_state("inference", "minimal")
        assert "complete" == status["state"], status
        assert list(VIEWS) == status["views"]
        assert 3 == status["frames_selected"]
        chosen = [chosen_frames(fw.bundle(f"minimal_{view}")) for view in VIEWS]
        assert all(chosen[0] == other for other in chosen), chosen
        assert any(f in ERROR_FRAMES for f in chosen[0]), chosen[0]
        for view in VIEWS:
            assert fw.status("inference", f"minimal_{view}") is None
            with (fw.bundle(f"minimal_{view}") / "predictions.csv").open(newline="") as handle:
                index = [row[0] for row in csv.reader(handle)][3:]
            assert [f"labeled-data/minimal_{view}/img{f:08d}.png" for f in chosen[0]] == index
            assert (fw.project / "videos" / f"minimal_{view}.mp4").is_file()
        assert not list(fw.inbox("inference").iterdir())


def test_a_folder_per_view_is_read_as_that_views_outputs(
    session_drop: Path, tmp_path: Path
) -> None:
    """``minimal_top/`` and ``minimal_side/``, each holding its view's video and predictions."""
    folders = []
    for view in ("top", "side"):
        folder = tmp_path / "inbox" / f"minimal_{view}"
        folder.mkdir(parents=True)
        for suffix in (".mp4", ".csv"):
            (folder / f"minimal_{view}{suffix}").symlink_to(
                session_drop / f"minimal_{view}{suffix}"
            )
        folders.append(folder)
    result = handle_inference_session(folders, options(["top", "side"]), tmp_path / "s", noop)
    assert ["top", "side"] == result.report["views"]
    for view in ("top", "side"):
        assert chosen_frames(tmp_path / "s" / f"minimal_{view}") == result.selected
