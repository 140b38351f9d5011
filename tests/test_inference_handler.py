"""The inference handler on real files, without a daemon: bundles, options, every bad input."""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from handlers.inference import InferenceOptions, handle_inference
from handlers.outcome import HandlerResult, InputError, ignore_progress
from tests.media import read_barcode, write_barcode_video
from tests.synthetic_predictions import KEYPOINTS, clean_predictions, make_predictions, write_csv

FRAMES = 300
STEM = "mouse1"


def options_for(stem: str = STEM, **overrides: Any) -> InferenceOptions:
    """Options as the daemon builds them from the default config."""
    values: dict[str, Any] = {
        "frames_per_video": 10,
        "frame_range": (0.0, 1.0),
        "context_frames": 2,
        "likelihood_threshold": 0.9,
        "z_threshold": 3.0,
        "pca_variance": 0.99,
        "min_spacing_frames": 4,
        "stem": stem,
        **overrides,
    }
    return InferenceOptions(**values)


def make_drop(
    folder: Path, frames: int = FRAMES, members: int = 1, errors_per_kind: int = 2
) -> Path:
    """A drop for STEM in ``folder``: predictions (or ensemble members) and a barcode video."""
    folder.mkdir(parents=True, exist_ok=True)
    data = make_predictions(frames=frames, errors_per_kind=errors_per_kind, seed=5)
    for member in range(members):
        name = f"{STEM}.csv" if members == 1 else f"{STEM}.rng{member}.csv"
        xy = data.xy + np.random.default_rng(member).normal(0, 0.3, data.xy.shape)
        write_csv(folder / name, xy, data.likelihood)
    write_barcode_video(folder / STEM, frames)
    return folder


def run(folder: Path, tmp_path: Path, **overrides: Any) -> tuple[HandlerResult, Path]:
    """Run the handler on every file of ``folder`` into a fresh staging folder."""
    staging = tmp_path / "staging"
    staging.mkdir()
    files = sorted(folder.iterdir())
    return handle_inference(files, options_for(**overrides), staging, ignore_progress), staging


def read_rows(path: Path) -> list[list[str]]:
    with path.open(newline="") as handle:
        return list(csv.reader(handle))


def test_bundle_holds_exact_frames_and_the_models_guess(tmp_path: Path) -> None:
    """PNGs hold their frames, the CSV lists the chosen ones, predictions.csv their rows."""
    drop = make_drop(tmp_path / "drop")
    result, staging = run(drop, tmp_path)
    assert 10 == len(set(result.selected))
    for png in staging.glob("img*.png"):
        assert int(png.stem[3:]) == read_barcode(cv2.imread(str(png)))
    expected_pngs = {f for s in result.selected for f in range(s - 2, s + 3)}
    assert expected_pngs == {int(p.stem[3:]) for p in staging.glob("img*.png")}
    listed = (staging / "selected_frames.csv").read_text().split()
    assert [f"img{f:08d}.png" for f in result.selected] == listed
    rows = read_rows(staging / "predictions.csv")
    source = read_rows(drop / f"{STEM}.csv")
    assert source[:3] == rows[:3]
    assert [f"labeled-data/{STEM}/img{f:08d}.png" for f in result.selected] == [
        r[0] for r in rows[3:]
    ]
    for row, frame in zip(rows[3:], result.selected, strict=True):
        expected = [float(cell) for cell in source[3 + frame][1:]]
        assert expected == pytest.approx([float(cell) for cell in row[1:]], abs=1e-3)


def test_choice_honours_frame_range_and_frames_already_labeled(tmp_path: Path) -> None:
    """Only frames inside frame_range and its context margins, never one already labeled."""
    drop = make_drop(tmp_path / "drop")
    labeled = frozenset(range(150, 300, 2))
    result, _ = run(drop, tmp_path, frame_range=(0.5, 1.0), exclude_frames=labeled)
    assert 10 == len(result.selected)
    assert all(150 <= f < FRAMES - 2 and f not in labeled for f in result.selected)


def test_ensemble_disagreement_points_at_the_frame(tmp_path: Path) -> None:
    """A frame where one ensemble member strays is chosen; the guess is the members' mean."""
    drop = make_drop(tmp_path / "drop", members=3, errors_per_kind=0)
    member = drop / f"{STEM}.rng1.csv"
    rows = read_rows(member)
    line = rows[3 + 123]
    line[1:3] = [str(float(line[1]) + 40), str(float(line[2]) - 40)]
    with member.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    result, staging = run(drop, tmp_path, frames_per_video=3)
    assert 123 in result.selected
    assert "ensemble_spread" in result.report["signals"]["computed"]
    guess = {r[0]: r for r in read_rows(staging / "predictions.csv")[3:]}[
        f"labeled-data/{STEM}/img{123:08d}.png"
    ]
    xs = [float(read_rows(drop / f"{STEM}.rng{m}.csv")[3 + 123][1]) for m in range(3)]
    assert float(np.mean(xs)) == pytest.approx(float(guess[1]), abs=1e-3)


def test_metric_file_written_by_the_model_is_used(tmp_path: Path) -> None:
    """A spike in STEM_temporal_norm.csv at frame 77 of clean predictions makes 77 a choice.

    Clean, because real errors (a swap, a keypoint off its limbs) rightly outrank a metric
    spike on a frame whose keypoints look fine.
    """
    drop = make_drop(tmp_path / "drop", errors_per_kind=0)
    norm = np.full((FRAMES, len(KEYPOINTS)), 1.0) + np.random.default_rng(0).uniform(
        0, 1, (FRAMES, 8)
    )
    norm[77] = 500.0
    lines = [",".join(["", *KEYPOINTS])]
    lines += [",".join([str(i), *(f"{v:.3f}" for v in row)]) for i, row in enumerate(norm)]
    (drop / f"{STEM}_temporal_norm.csv").write_text("\n".join(lines) + "\n")
    result, _ = run(drop, tmp_path, frames_per_video=3)
    assert 77 in result.selected
    assert ["temporal_norm"] == result.report["signals"]["from_files"]


def test_messy_real_world_values_are_accepted(tmp_path: Path) -> None:
    """Missing keypoints, likelihoods above 1 and constant columns still make a bundle."""
    drop = make_drop(tmp_path / "drop")
    rows = read_rows(drop / f"{STEM}.csv")
    for row in rows[3 + 40 : 3 + 60]:
        row[4:7] = ["", "", "0.0"]
    for row in rows[3:]:
        row[3] = "1.734"
        row[7:9] = ["12.5", "99.0"]
    with (drop / f"{STEM}.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    result, _ = run(drop, tmp_path)
    assert 10 == len(set(result.selected))


def test_folder_drop_is_walked(tmp_path: Path) -> None:
    """A claimed folder STEM/ is read as the files inside it."""
    drop = make_drop(tmp_path / STEM)
    staging = tmp_path / "staging"
    staging.mkdir()
    result = handle_inference([drop], options_for(), staging, ignore_progress)
    assert 10 == len(result.selected)


def test_video_already_in_the_project_is_used(tmp_path: Path) -> None:
    """Without a video in the drop, the project's STEM video the daemon found is used."""
    drop = make_drop(tmp_path / "drop")
    project_video = tmp_path / "videos" / f"{STEM}.mp4"
    project_video.parent.mkdir()
    shutil.move(drop / f"{STEM}.mp4", project_video)
    result, _ = run(drop, tmp_path, video_candidates=(project_video,))
    assert f"{STEM}.mp4" == result.report["video"]


# ----- bad input: every problem, worded so the user can act -------------------------------


def rewrite(path: Path, change: Callable[[list[list[str]]], list[list[str]]]) -> None:
    rows = change(read_rows(path))
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)


def no_header(drop: Path) -> None:
    rewrite(drop / f"{STEM}.csv", lambda rows: rows[3:])


def unknown_coords(drop: Path) -> None:
    rewrite(
        drop / f"{STEM}.csv",
        lambda rows: [*rows[:2], [c.replace("likelihood", "score") for c in rows[2]], *rows[3:]],
    )


def text_cells(drop: Path) -> None:
    def change(rows: list[list[str]]) -> list[list[str]]:
        rows[10][2] = "n/a"
        rows[20][5] = "12,5 px"
        return rows

    rewrite(drop / f"{STEM}.csv", change)


def fewer_video_frames(drop: Path) -> None:
    write_barcode_video(drop / STEM, 250)


def no_video(drop: Path) -> None:
    (drop / f"{STEM}.mp4").unlink()


def members_disagree_on_keypoints(drop: Path) -> None:
    rewrite(
        drop / f"{STEM}.rng1.csv",
        lambda rows: [rows[0], [c.replace("a_nose", "a_snout") for c in rows[1]], *rows[2:]],
    )


def members_disagree_on_length(drop: Path) -> None:
    rewrite(drop / f"{STEM}.rng1.csv", lambda rows: rows[:-20])


def metric_of_another_model(drop: Path) -> None:
    lines = ["," + ",".join(["tail_tip", *KEYPOINTS[1:]])]
    lines += [",".join([str(i), *["1.0"] * 8]) for i in range(FRAMES)]
    (drop / f"{STEM}_pca_singleview_error.csv").write_text("\n".join(lines) + "\n")


def several_at_once(drop: Path) -> None:
    text_cells(drop)
    no_video(drop)


def metric_and_length(drop: Path) -> None:
    metric_of_another_model(drop)
    fewer_video_frames(drop)


BAD_INPUTS = [
    pytest.param(no_header, 1, ["expected three header rows", f"{STEM}.csv"], id="no-header-rows"),
    pytest.param(unknown_coords, 1, ["unknown coords 'score'"], id="unknown-coords"),
    pytest.param(text_cells, 1, ["expected numbers", "'n/a'", "'12,5 px'"], id="non-numeric"),
    pytest.param(
        fewer_video_frames, 1, [f"has {FRAMES} rows", "has 250 frames"], id="row-count-vs-video"
    ),
    pytest.param(no_video, 1, ["no video for mouse1", "videos-folder-we-searched"], id="no-video"),
    pytest.param(
        members_disagree_on_keypoints,
        2,
        ["disagree on keypoints", "a_snout"],
        id="ensemble-keypoints",
    ),
    pytest.param(
        members_disagree_on_length,
        2,
        ["disagree on length", f"{FRAMES} frames", f"{FRAMES - 20}"],
        id="ensemble-length",
    ),
    pytest.param(
        metric_of_another_model, 1, ["'tail_tip'", "another model"], id="metric-keypoints"
    ),
    pytest.param(several_at_once, 1, ["expected numbers", "no video"], id="every-problem-at-once"),
    pytest.param(metric_and_length, 1, ["'tail_tip'", "has 250 frames"], id="metric-and-row-count"),
]


@pytest.mark.parametrize(("spoil", "members", "phrases"), BAD_INPUTS)
def test_bad_input_fails_naming_every_problem(
    tmp_path: Path, spoil: Callable[[Path], None], members: int, phrases: list[str]
) -> None:
    """A bad drop raises InputError whose problems say what is wrong, with file and numbers."""
    drop = make_drop(tmp_path / "drop", members=members)
    spoil(drop)
    with pytest.raises(InputError) as caught:
        run(drop, tmp_path, video_folder="videos-folder-we-searched")
    text = " ".join(caught.value.problems)
    assert [] == [phrase for phrase in phrases if phrase not in text], text


def test_too_few_frames_in_range_fails_with_the_numbers(tmp_path: Path) -> None:
    """Asking for more frames than the range holds fails saying how many it holds."""
    drop = make_drop(tmp_path / "drop", frames=40, errors_per_kind=0)
    with pytest.raises(InputError, match="holds only 36 frames"):
        run(drop, tmp_path, frames_per_video=50)


def test_frames_chosen_inside_long_swaps_when_the_likelihood_says_nothing(
    tmp_path: Path,
) -> None:
    """A 60-frame identity swap and a 40-frame head/tail swap, likelihood low everywhere:
    most chosen frames fall inside the swaps, and both swaps get frames.

    The known answer of a real model's typical failure: the errors last, so a choice that sees
    only where a swap starts and ends, or trusts a likelihood below 0.9 on every frame, misses.
    """
    frames = 600
    rng = np.random.default_rng(11)
    xy, likelihood = clean_predictions(rng, frames, 600.0)
    identity, head_tail = range(150, 210), range(400, 440)
    xy[150:210] = np.concatenate([xy[150:210, 4:], xy[150:210, :4]], axis=1)
    xy[400:440, [0, 3]] = xy[400:440, [3, 0]]
    drop = tmp_path / "drop"
    drop.mkdir()
    write_csv(drop / f"{STEM}.csv", xy, likelihood * 0.1)
    write_barcode_video(drop / STEM, frames)
    result, staging = run(drop, tmp_path, frames_per_video=10)
    chosen = result.selected
    inside = [f for f in chosen if f in identity or f in head_tail]
    assert len(inside) >= 7, chosen
    assert any(f in identity for f in chosen) and any(f in head_tail for f in chosen), chosen
    for png in (staging / f"img{f:08d}.png" for f in chosen):
        assert int(png.stem[3:]) == read_barcode(cv2.imread(str(png)))
    record = json.loads((staging / "selection.json").read_text())
    assert chosen == [entry["index"] for entry in record["frames"]]
    for entry in record["frames"]:
        span = identity if entry["index"] in identity else head_tail
        if entry["index"] in span:
            assert "swap" in entry["why"], entry
            first, last = entry["episode"]
            # The episode is the swap, give or take a few flagged frames beside it.
            assert first <= span[0] + 5 and span[-1] - 5 <= last, entry
            assert last - first < len(span) + 40, entry
    sheet = cv2.imread(str(staging / "contact_sheet.png"))
    assert sheet is not None and sheet.shape[0] > 2 * sheet.shape[1] / 5 * 0.8  # two rows
    assert {"selection.json", "contact_sheet.png"} <= set(result.files)
