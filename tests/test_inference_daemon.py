"""Model-output drops through a real daemon: ``framewatch run`` and ``framewatch once``."""

from __future__ import annotations

import csv
import json
import shutil
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.harness import Framewatch, copy_slowly, shared_file
from tests.media import read_barcode, write_barcode_video
from tests.synthetic_predictions import KEYPOINTS, make_predictions, write_csv


def decoded_frames(video: Path, wanted: set[int]) -> dict[int, np.ndarray]:
    """The wanted frames of ``video``, decoded in order from the start (the reference)."""
    found = {}
    capture = cv2.VideoCapture(str(video))
    index = 0
    while index <= max(wanted):
        ok, frame = capture.read()
        assert ok, f"{video.name} ended at frame {index}"
        if index in wanted:
            found[index] = frame
        index += 1
    capture.release()
    return found


def assert_bundle_exact(bundle: Path, video: Path, frames_selected: int) -> list[int]:
    """Every PNG equals its frame decoded in order; the CSVs list the selected frames."""
    pngs = {int(p.stem[3:]): p for p in bundle.glob("img*.png")}
    reference = decoded_frames(video, set(pngs))
    mismatched = [
        i for i, p in pngs.items() if not np.array_equal(reference[i], cv2.imread(str(p)))
    ]
    assert [] == mismatched
    selected = [int(line[3:11]) for line in (bundle / "selected_frames.csv").read_text().split()]
    assert frames_selected == len(set(selected))
    assert set(selected) <= set(pngs)
    with (bundle / "predictions.csv").open(newline="") as handle:
        index = [row[0] for row in csv.reader(handle)][3:]
    assert [f"labeled-data/{bundle.name}/img{f:08d}.png" for f in selected] == index
    return selected


def drop_fly_pair(fw: Framewatch) -> Path:
    """Loose files, each copied under a hidden name first and renamed into the inbox.

    The sidecar keeps the choice in the first 40 % (frames 0-599 of 1500): it checks that
    frame_range holds, and decoding 1024x1024 frames to the end twice would be slow.
    """
    video, predictions = shared_file("fly-pair/clip.mp4"), shared_file("fly-pair/clip.csv")
    (fw.inbox("inference") / "clip.json").write_text(json.dumps({"frame_range": [0.0, 0.4]}))
    for source in (video, predictions):
        shutil.copy(source, fw.inbox("inference") / f".{source.name}.partial")
    for source in (video, predictions):
        (fw.inbox("inference") / f".{source.name}.partial").rename(
            fw.inbox("inference") / source.name
        )
    return video


def drop_ensemble(fw: Framewatch) -> Path:
    """A folder holding the video, the five members' predictions and a sidecar."""
    source = shared_file("mirror-mouse-ensemble/180607_004.mp4")
    drop = fw.inbox("inference") / "180607_004"
    shutil.copytree(source.parent, drop)
    (drop / "180607_004.json").write_text(json.dumps({"frames_per_video": 12}))
    return source


REAL_DROPS = {
    "fly-pair": (drop_fly_pair, "clip", 20, ["clip.csv"]),
    "mirror-mouse-ensemble": (
        drop_ensemble,
        "180607_004",
        12,
        [f"180607_004.rng{i}.csv" for i in range(5)],
    ),
}


@pytest.mark.parametrize("how", ["run", "once"])
def test_real_drops_become_exact_bundles(fw: Framewatch, how: str) -> None:
    """Real clips with real predictions (scores above 1, missing keypoints, an ensemble)."""
    if how == "run":
        fw.start()
    videos = {name: drop(fw) for name, (drop, *_) in REAL_DROPS.items()}
    if how == "run":
        statuses = {
            name: fw.wait_state("inference", stem, timeout=180)
            for name, (_, stem, *_) in REAL_DROPS.items()
        }
        assert 0 == fw.stop()
    else:
        result = fw.once()
        assert 0 == result.returncode, result.stdout[-3000:]
        statuses = {
            n: fw.status("inference", stem) or {} for n, (_, stem, *_) in REAL_DROPS.items()
        }
    for dataset, (_, name, frames_selected, predictions) in REAL_DROPS.items():
        status = statuses[dataset]
        assert "complete" == status["state"], status
        assert predictions == status["report"]["predictions"]
        selected = assert_bundle_exact(fw.bundle(name), videos[dataset], frames_selected)
        if dataset == "fly-pair":
            assert max(selected) < 600
    archived = fw.root / "archive" / "inference"
    assert (fw.project / "videos" / "clip.mp4").is_file()
    assert (archived / "clip.csv").is_file()
    assert "ensemble_spread" in statuses["mirror-mouse-ensemble"]["report"]["signals"]["computed"]
    assert (fw.project / "videos" / "180607_004.mp4").is_file()  # out of the folder drop
    assert (archived / "180607_004" / "180607_004.rng0.csv").is_file()


def synthetic_drop(
    folder: Path, stem: str, frames: int = 200, video_frames: int | None = None
) -> None:
    """Predictions for ``stem`` (with a few errors) and, unless 0, a barcode video."""
    folder.mkdir(parents=True, exist_ok=True)
    data = make_predictions(frames=frames, errors_per_kind=1, seed=9)
    write_csv(folder / f"{stem}.csv", data.xy, data.likelihood)
    if video_frames != 0:
        write_barcode_video(folder / stem, video_frames or frames)


def test_bad_drops_fail_with_a_message_and_their_files_kept(fw: Framewatch) -> None:
    """Each bad drop ends failed, saying what to fix, with its files in failed/inference/."""
    inbox = fw.inbox("inference")
    synthetic_drop(inbox, "good")
    synthetic_drop(inbox, "noheader")
    lines = (inbox / "noheader.csv").read_text().splitlines()
    (inbox / "noheader.csv").write_text("\n".join(lines[3:]) + "\n")
    synthetic_drop(inbox, "short", video_frames=150)
    synthetic_drop(inbox, "novideo", video_frames=0)
    synthetic_drop(inbox / "ensemble", "ensemble")
    data = make_predictions(frames=200, errors_per_kind=0, seed=1)
    (inbox / "ensemble" / "ensemble.csv").rename(inbox / "ensemble" / "ensemble.rng0.csv")
    write_csv(inbox / "ensemble" / "ensemble.rng1.csv", data.xy[:, :6], data.likelihood[:, :6])
    synthetic_drop(inbox, "sidecar")
    (inbox / "sidecar.json").write_text(json.dumps({"frames_per_video": 5, "bogus": 1}))
    result = fw.once()
    assert 1 == result.returncode
    expected = {
        "good": ("complete", "Proceed to the next tab"),
        "noheader": ("failed", "expected three header rows"),
        "short": ("failed", "has 200 rows (frames), but the video short.mp4 has 150 frames"),
        "novideo": ("failed", str(fw.project / "videos")),
        "ensemble": ("failed", "disagree on keypoints"),
        "sidecar": ("failed", "sidecar key 'bogus' is not an option here"),
    }
    actual = {}
    for name, (_, phrase) in expected.items():
        status = fw.status("inference", name) or {}
        actual[name] = (
            status.get("state"),
            phrase if phrase in status.get("message", "") else status,
        )
    assert expected == actual
    failed = fw.failed("inference")
    kept = sorted(p.relative_to(failed).as_posix() for p in failed.rglob("*") if p.is_file())
    assert [
        "ensemble/ensemble.mp4",
        "ensemble/ensemble.rng0.csv",
        "ensemble/ensemble.rng1.csv",
        "noheader.csv",
        "noheader.mp4",
        "novideo.csv",
        "short.csv",
        "short.mp4",
        "sidecar.csv",
        "sidecar.json",
        "sidecar.mp4",
    ] == kept
    assert [] == sorted(p.name for p in inbox.iterdir())


def test_predictions_for_a_video_dropped_earlier(fw: Framewatch) -> None:
    """Predictions alone find the project's video, skip frames labeled before, keep old CSVs."""
    fw.start()
    video = write_barcode_video(fw.root / "mouse7", 300)
    video.rename(fw.inbox("videos") / video.name)
    assert "complete" == fw.wait_state("videos", "mouse7")["state"]
    before = {p.name for p in fw.bundle("mouse7").glob("img*.png")}
    first_list = (fw.bundle("mouse7") / "selected_frames.csv").read_text()
    synthetic_drop(fw.root / "drop", "mouse7", frames=300, video_frames=0)
    (fw.root / "drop" / "mouse7.csv").rename(fw.inbox("inference") / "mouse7.csv")
    status = fw.wait_state("inference", "mouse7")
    assert "complete" == status["state"], status
    bundle = fw.bundle("mouse7")
    chosen = (bundle / "selected_frames.csv").read_text().split()
    assert 20 == len(chosen)
    assert set() == set(chosen) & before
    for png in bundle.glob("img*.png"):
        assert int(png.stem[3:]) == read_barcode(cv2.imread(str(png)))
    dated = list(bundle.glob("selected_frames.*.csv"))
    assert [first_list] == [p.read_text() for p in dated]
    assert "mouse7.mp4" == status["report"]["video"]
    assert 0 == fw.stop()


def test_drop_waits_until_every_file_of_it_is_copied(fw: Framewatch) -> None:
    """While the video of a drop still grows, its settled CSV is not taken on its own."""
    synthetic_drop(fw.root / "src", "slow", frames=300)
    fw.start()
    target = fw.inbox("inference") / "slow.mp4"
    copier = threading.Thread(
        target=copy_slowly, args=(fw.root / "src" / "slow.mp4", target), kwargs={"chunks": 10}
    )
    copier.start()
    fw.wait_for(target.exists, 10, "the copy to start")
    shutil.copy(fw.root / "src" / "slow.csv", fw.inbox("inference") / "slow.csv")
    seen_early = []
    while copier.is_alive():
        seen_early.append(fw.status("inference", "slow"))
        time.sleep(0.1)
    copier.join()
    # Seen as arriving while the video grows (issue 16), never taken before it is whole.
    early_states = {status["state"] for status in seen_early if status is not None}
    assert early_states <= {"arriving"}, early_states
    status = fw.wait_state("inference", "slow")
    assert "complete" == status["state"], status
    assert 300 == status["report"]["frame_count"]
    for png in fw.bundle("slow").glob("img*.png"):
        assert int(png.stem[3:]) == read_barcode(cv2.imread(str(png)))
    assert 0 == fw.stop()


def test_report_of_an_inference_bundle_in_an_app_project_stays_out_of_labeled_data(
    fw: Framewatch,
) -> None:
    """In a Lightning Pose app project, selection.json and the contact sheet go to
    .framewatch/STEM/ with the CSVs; labeled-data/STEM/ holds frames only, queued with guesses."""
    fw.project.mkdir(parents=True, exist_ok=True)
    names = "\n".join(f"  - {name}" for name in KEYPOINTS)
    (fw.project / "project.yaml").write_text(
        f"schema_version: 1\nview_names: []\nkeypoint_names:\n{names}\n"
    )
    synthetic_drop(fw.root / "src", "mouse3", frames=200)
    fw.start()
    for name in ("mouse3.mp4", "mouse3.csv"):
        (fw.root / "src" / name).rename(fw.inbox("inference") / name)
    status = fw.wait_state("inference", "mouse3")
    assert "complete" == status["state"], status
    assert {p.suffix for p in fw.bundle("mouse3").iterdir()} == {".png"}
    reports = fw.project / ".framewatch" / "mouse3"
    record = json.loads((reports / "selection.json").read_text())
    chosen = [int(line[3:11]) for line in (reports / "selected_frames.csv").read_text().split()]
    assert chosen == [entry["index"] for entry in record["frames"]]
    assert all(entry["why"] for entry in record["frames"][:3])
    assert cv2.imread(str(reports / "contact_sheet.png")) is not None
    queued = [
        json.loads(line)
        for line in (fw.project / "CollectedData.unlabeled.jsonl").read_text().splitlines()
    ]
    assert 20 == len(queued) and all(entry["predictions"] for entry in queued)
    assert 0 == fw.stop()
