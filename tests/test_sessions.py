"""Multi-view sessions through a real daemon: the four views of ../shared/data/multiview-mouse,
cut to short clips, dropped view by view; one session, one choice, the same frames in every view."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from handlers.bundle import frame_index
from tests.harness import Framewatch, shared_file

VIEWS = ("back", "mid", "side", "top")
FRAMES = 60
SIZE = (320, 256)
SESSION_CONFIG = """
[extract]
frames_per_video = 5
context_frames = 1
[sessions]
view_names = ["back", "mid", "side", "top"]
"""


def cut_clip(source: Path, target: Path, start: int, count: int) -> Path:
    """Frames ``start`` to ``start + count - 1`` of ``source``, scaled down, as an mp4 clip."""
    capture = cv2.VideoCapture(str(source))
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"mp4v"), fps, SIZE)
    index = 0
    while index < start + count:
        ok, frame = capture.read()
        if not ok:
            break
        if index >= start:
            writer.write(cv2.resize(frame, SIZE, interpolation=cv2.INTER_AREA))
        index += 1
    writer.release()
    capture.release()
    return target


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """minimal_<view>.mp4 (60 frames each), side55.mp4 (frames 5-59 of side)."""
    folder = tmp_path_factory.mktemp("multiview")
    for view in VIEWS:
        source = shared_file(f"multiview-mouse/minimal_{view}.mp4")
        cut_clip(source, folder / f"minimal_{view}.mp4", 0, FRAMES)
    cut_clip(shared_file("multiview-mouse/minimal_side.mp4"), folder / "side55.mp4", 5, FRAMES - 5)
    return folder


def decode_all(path: Path) -> list[npt.NDArray[np.uint8]]:
    """Every frame of a video, decoded in order from the start."""
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


def drop(fw: Framewatch, source: Path, name: str) -> None:
    """Copy ``source`` into the videos inbox as ``name``, appearing in one rename."""
    staged = fw.root / "src" / name
    staged.parent.mkdir(parents=True, exist_ok=True)
    staged.write_bytes(source.read_bytes())
    os.replace(staged, fw.inbox("videos") / name)


def selected(folder: Path) -> list[int]:
    return [int(line[3:11]) for line in (folder / "selected_frames.csv").read_text().split()]


def assert_exact_frames(folder: Path, clip: Path) -> int:
    """Every PNG in ``folder`` is that frame of ``clip`` decoded in order; how many there are."""
    decoded = decode_all(clip)
    pngs = sorted(folder.glob("img*.png"))
    for png in pngs:
        index = int(png.name[3:11])
        assert np.array_equal(decoded[index], cv2.imread(str(png))), png.name
    return len(pngs)


def session_fw(tmp_path: Path, extra: str = "") -> Framewatch:
    return Framewatch(tmp_path / "fw", extra_config=SESSION_CONFIG + extra)


def test_views_dropped_apart_settle_as_one_session(tmp_path: Path, clips: Path) -> None:
    """Nothing is taken until all four views are in; then one choice, exported from each view."""
    with session_fw(tmp_path) as fw:
        fw.start()
        for view in ("top", "side"):
            drop(fw, clips / f"minimal_{view}.mp4", f"minimal_{view}.mp4")
        waiting = fw.wait_for(
            lambda: (
                (s := fw.status("videos", "minimal"))
                and s.get("views_present") == ["side", "top"]
                and s
            ),
            30,
            "the session to say which views are missing",
        )
        assert "arriving" == waiting["state"]
        assert ["back", "mid"] == waiting["views_missing"]
        assert "back, mid" in waiting["message"] and waiting["waiting_since"] in waiting["message"]
        time.sleep(2.0)  # several settle periods: the settled views must still wait
        assert "arriving" == fw.status("videos", "minimal")["state"]
        assert not (fw.project / "labeled-data" / "minimal_top").exists()
        assert fw.status("videos", "minimal_top") is None
        drop(fw, clips / "minimal_mid.mp4", "minimal_mid.mp4")
        time.sleep(1.0)
        drop(fw, clips / "minimal_back.mp4", "minimal_back.mp4")

        status = fw.wait_state("videos", "minimal")
        assert "complete" == status["state"], status
        assert list(VIEWS) == status["views"]
        assert 5 == status["frames_selected"]
        chosen = [selected(fw.bundle(f"minimal_{view}")) for view in VIEWS]
        assert all(chosen[0] == other for other in chosen), chosen
        assert 5 == len(chosen[0])
        for view in VIEWS:
            count = assert_exact_frames(fw.bundle(f"minimal_{view}"), clips / f"minimal_{view}.mp4")
            assert count >= 5
            assert (fw.project / "videos" / f"minimal_{view}.mp4").is_file()
        record = json.loads((fw.bundle("minimal_top") / "session.json").read_text())
        assert chosen[0] == record["frames"]
        report = json.loads((fw.bundle("minimal_side") / "selection.json").read_text())
        assert chosen[0] == [frame["index"] for frame in report["frames"]]
        assert (fw.bundle("minimal_side") / "contact_sheet.png").is_file()
        # The status page shows every view's pictures: the status lists them, and they exist.
        assert "labeled-data/minimal_side/contact_sheet.png" in status["pictures"]
        assert all((fw.project / picture).is_file() for picture in status["pictures"])
        assert {view: FRAMES for view in VIEWS} == {
            view: data["frame_count"] for view, data in record["views"].items()
        }
        for view in VIEWS:
            assert fw.status("videos", f"minimal_{view}") is None


def test_a_waiting_session_keeps_its_status_and_since_across_a_restart(
    tmp_path: Path, clips: Path
) -> None:
    """A restarted daemon neither drops the waiting session's status nor restarts its clock."""
    with session_fw(tmp_path) as fw:
        fw.start()
        drop(fw, clips / "minimal_top.mp4", "minimal_top.mp4")
        before = fw.wait_for(
            lambda: (s := fw.status("videos", "minimal")) and s.get("state") == "arriving" and s,
            30,
            "the session to wait for its views",
        )
        assert 0 == fw.stop()
        fw.start()

        def told_again() -> bool:
            events = [e for e in fw.log_events() if e.get("event") == "session waiting"]
            return len(events) >= 2

        fw.wait_for(told_again, 60, "the restarted daemon to see the waiting session")
        time.sleep(2.0)  # more scans, and the new run's sweep of leftover arriving statuses
        after = fw.status("videos", "minimal")
        assert after is not None, "the waiting session's status was removed by the restart"
        assert "arriving" == after["state"]
        assert before["waiting_since"] == after["waiting_since"]
        assert ["back", "mid", "side"] == after["views_missing"]


def test_sidecar_goes_without_a_view_and_the_late_view_gets_the_same_frames(
    tmp_path: Path, clips: Path
) -> None:
    """A session sidecar's "views" lets it go with three; the fourth, late, gets those frames."""
    with session_fw(tmp_path) as fw:
        fw.start()
        (fw.root / "src").mkdir(parents=True)
        sidecar = fw.root / "src" / "minimal.json"
        sidecar.write_text(json.dumps({"views": ["mid", "side", "top"]}))
        os.replace(sidecar, fw.inbox("videos") / "minimal.json")
        for view in ("top", "side", "mid"):
            drop(fw, clips / f"minimal_{view}.mp4", f"minimal_{view}.mp4")
        status = fw.wait_state("videos", "minimal")
        assert "complete" == status["state"], status
        assert ["mid", "side", "top"] == status["views"]
        first = selected(fw.bundle("minimal_top"))

        drop(fw, clips / "minimal_back.mp4", "minimal_back.mp4")
        fw.wait_for(
            lambda: (
                (s := fw.status("videos", "minimal")) and s.get("views_added") == ["back"] and s
            ),
            60,
            "the late view to be done",
        )
        status = fw.wait_state("videos", "minimal")
        assert "complete" == status["state"], status
        assert ["mid", "side", "top", "back"] == status["views"]
        assert first == selected(fw.bundle("minimal_back"))
        assert_exact_frames(fw.bundle("minimal_back"), clips / "minimal_back.mp4")
        record = json.loads((fw.bundle("minimal_back") / "session.json").read_text())
        assert record["late_view"] is True


def test_a_missing_view_fails_the_session_after_max_wait(tmp_path: Path, clips: Path) -> None:
    """A session still missing views after max_wait_h fails naming them; its file is kept."""
    with session_fw(tmp_path, "max_wait_h = 0.001\n") as fw:
        fw.start()
        drop(fw, clips / "minimal_top.mp4", "minimal_top.mp4")
        status = fw.wait_state("videos", "minimal", timeout=60)
        assert "failed" == status["state"], status
        assert "missing the view(s) back, mid, side" in status["message"]
        assert (fw.failed("videos") / "minimal_top.mp4").is_file()


def test_view_counts_must_match_unless_offsets_are_given(tmp_path: Path, clips: Path) -> None:
    """A shorter view fails its session naming every count; with offsets each view's folder
    holds its own frame numbers of the same moments (two sessions, one daemon)."""
    with session_fw(tmp_path) as fw:
        fw.start()
        (fw.root / "src").mkdir(parents=True)
        sidecar = fw.root / "src" / "shifted.json"
        sidecar.write_text(json.dumps({"offsets": {"back": 5, "mid": 5, "top": 5}}))
        os.replace(sidecar, fw.inbox("videos") / "shifted.json")
        for session in ("short", "shifted"):
            for view in ("back", "mid", "top"):
                drop(fw, clips / f"minimal_{view}.mp4", f"{session}_{view}.mp4")
            drop(fw, clips / "side55.mp4", f"{session}_side.mp4")

        status = fw.wait_state("videos", "short")
        assert "failed" == status["state"], status
        assert "back 60, mid 60, side 55, top 60" in status["message"]
        assert not (fw.project / "labeled-data" / "short_side").exists()
        assert (fw.failed("videos") / "short_side.mp4").is_file()

        status = fw.wait_state("videos", "shifted")
        assert "complete" == status["state"], status
        side = selected(fw.bundle("shifted_side"))
        top = selected(fw.bundle("shifted_top"))
        assert [i + 5 for i in side] == top
        assert_exact_frames(fw.bundle("shifted_side"), clips / "side55.mp4")
        assert_exact_frames(fw.bundle("shifted_top"), clips / "minimal_top.mp4")
        original_side = decode_all(clips / "minimal_side.mp4")
        for index in side:  # side55's frame i is frame i + 5 of the uncut side view
            png = cv2.imread(str(fw.bundle("shifted_side") / f"img{index:08d}.png"))
            assert float(np.abs(png.astype(int) - original_side[index + 5]).mean()) < 3.0
        record = json.loads((fw.bundle("shifted_side") / "session.json").read_text())
        assert 0 == record["views"]["side"]["offset"] and 5 == record["views"]["top"]["offset"]
        assert record["views"]["top"]["frames"] == top


APP_YAML = """schema_version: 1
view_names:
  - top
  - side
keypoint_names:
  - nose
  - tail_base
"""


def test_app_project_gets_one_aligned_queue_per_view(tmp_path: Path, clips: Path) -> None:
    """In an app project with view_names, each view gets its label file and a queue, aligned."""
    with Framewatch(tmp_path / "fw", extra_config="[extract]\nframes_per_video = 4\n") as fw:
        fw.project.mkdir(parents=True)
        (fw.project / "project.yaml").write_text(APP_YAML)
        fw.start()
        drop(fw, clips / "minimal_top.mp4", "minimal_top.mp4")
        drop(fw, clips / "minimal_side.mp4", "minimal_side.mp4")
        status = fw.wait_state("videos", "minimal")
        assert "complete" == status["state"], status
        assert ["top", "side"] == status["views"]
        queues = {}
        for view in ("top", "side"):
            header = (fw.project / f"CollectedData_{view}.csv").read_text().splitlines()
            assert 3 == len(header) and "nose" in header[1]
            lines = (fw.project / f"CollectedData_{view}.unlabeled.jsonl").read_text().splitlines()
            queues[view] = [json.loads(line)["frame_path"] for line in lines]
            names = [p.name for p in fw.bundle(f"minimal_{view}").iterdir()]
            assert all(frame_index(name) is not None for name in names), names
            for path in queues[view]:
                assert (fw.project / path).is_file(), path
        assert 4 == len(queues["top"])
        assert [p.replace("minimal_top", "minimal_side") for p in queues["top"]] == queues["side"]
        assert not (fw.project / "CollectedData.csv").exists()
        for name in ("session.json", "selected_frames.csv", "contact_sheet.png"):
            assert (fw.project / ".framewatch" / "minimal_top" / name).is_file(), name
