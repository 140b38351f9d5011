"""How model outputs in inbox/inference/ group into arrivals, and the options they get."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.config import Settings
from daemon.kinds import KINDS, read_sidecar
from handlers.inference import file_role

KIND = KINDS["inference"]


def touch(folder: Path, *names: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_text("x")


def arrivals(inbox: Path) -> dict[str, list[str]]:
    """Each arrival's name and the names of its entries, first entry first."""
    return {a.name: [e.name for e in a.entries] for a in KIND.find_arrivals("inference", inbox)}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("m1.csv", ("predictions", "m1")),
        ("m1.rng0.csv", ("predictions", "m1.rng0")),
        ("m1_pca_singleview_error.csv", ("metric:pca_singleview", "m1")),
        ("m1.rng2_temporal_norm.csv", ("metric:temporal_norm", "m1.rng2")),
        ("m1_pca_multiview_error.csv", ("metric:pca_multiview", "m1")),
        ("m1.MP4", ("video", "m1")),
        ("m1.json", ("sidecar", "m1")),
        ("notes.txt", None),
    ],
    ids=[
        "predictions",
        "member",
        "pca-single",
        "member-metric",
        "pca-multi",
        "video",
        "sidecar",
        "other",
    ],
)
def test_file_role(name: str, expected: tuple[str, str] | None) -> None:
    """Each file name of a drop says what it is and which stem it belongs to."""
    assert expected == file_role(name)


def test_loose_files_group_by_stem_with_the_predictions_first(tmp_path: Path) -> None:
    """Members, metrics, video and sidecar of one stem are one arrival led by a CSV."""
    touch(
        tmp_path,
        "m1.mp4",
        "m1.rng0.csv",
        "m1.rng1.csv",
        "m1_temporal_norm.csv",
        "m1.json",
        "m2.csv",
    )
    expected = {
        "m1": ["m1.rng0.csv", "m1.json", "m1.mp4", "m1.rng1.csv", "m1_temporal_norm.csv"],
        "m2": ["m2.csv"],
    }
    assert expected == arrivals(tmp_path)


def test_a_group_without_predictions_is_not_an_arrival_yet(tmp_path: Path) -> None:
    """A video and metrics alone wait for their predictions; partial copies are ignored."""
    touch(tmp_path, "m1.mp4", "m1_temporal_norm.csv", "m2.csv.part", ".m3.csv")
    assert {} == arrivals(tmp_path)


def test_a_stem_with_a_dot_keeps_its_own_csv(tmp_path: Path) -> None:
    """``run.2.csv`` beside ``run.2.mp4`` is the predictions of run.2, not a member of run."""
    touch(tmp_path, "run.2.mp4", "run.2.csv")
    assert {"run.2": ["run.2.csv", "run.2.mp4"]} == arrivals(tmp_path)


def test_a_folder_is_one_arrival_once_it_holds_predictions(tmp_path: Path) -> None:
    """``inference/STEM/`` with STEM.rng0.csv inside is claimed whole; an empty one waits."""
    touch(tmp_path / "m1", "m1.rng0.csv", "m1.mp4")
    (tmp_path / "m2").mkdir()
    touch(tmp_path / "m3", "other.csv")
    assert {"m1": ["m1"]} == arrivals(tmp_path)


def test_sidecar_inside_a_folder_drop_is_read(tmp_path: Path) -> None:
    """A folder drop's STEM/STEM.json sets its options like a loose sidecar does."""
    touch(tmp_path / "m1", "m1.csv")
    (tmp_path / "m1" / "m1.json").write_text('{"frames_per_video": 7}')
    assert {"frames_per_video": 7} == read_sidecar([tmp_path / "m1"])


def test_options_carry_the_project_videos_and_labeled_frames(tmp_path: Path) -> None:
    """build_options passes the frames already labeled and where it looked for the video."""
    settings = Settings(root=tmp_path)
    videos = settings.folder("project") / "videos"
    touch(videos, "m1.MP4", "m1.20260101T000000Z.mp4", "m10.mp4")
    bundle = settings.folder("project") / "labeled-data" / "m1"
    touch(bundle, "img00000005.png", "img00000107.png")
    options = KIND.build_options(settings, {"likelihood_threshold": 0.5}, bundle)
    assert (videos / "m1.MP4",) == options.video_candidates  # type: ignore[attr-defined]
    assert str(videos) == options.video_folder  # type: ignore[attr-defined]
    assert frozenset({5, 107}) == options.exclude_frames  # type: ignore[attr-defined]
    assert 0.5 == options.likelihood_threshold  # type: ignore[attr-defined]


def test_keep_folder_sends_the_video_to_the_project_and_the_rest_to_the_archive(
    tmp_path: Path,
) -> None:
    """A video joins project/videos; predictions and a folder drop go to archive/inference."""
    settings = Settings(root=tmp_path)
    touch(tmp_path / "in", "m1.mp4", "m1.csv")
    (tmp_path / "in" / "m2").mkdir()
    expected = [
        settings.folder("project") / "videos",
        settings.folder("archive") / "inference",
        settings.folder("archive") / "inference",
    ]
    paths = [tmp_path / "in" / "m1.mp4", tmp_path / "in" / "m1.csv", tmp_path / "in" / "m2"]
    assert expected == [KIND.keep_folder(settings, path) for path in paths]
