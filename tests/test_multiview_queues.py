"""A multi-view app project's queues: line i is the same moment in every view, whatever order
sessions and their views arrive in (the app builds multi-view frame i from line i of every
view's CollectedData_<view>.unlabeled.jsonl, and fails when the queues differ in length)."""

from __future__ import annotations

import json
from pathlib import Path

from daemon.labelers import multiview

VIEWS = ("top", "side", "back")


def project(tmp_path: Path) -> Path:
    (tmp_path / "project.yaml").write_text(
        "schema_version: 1\nview_names: [top, side, back]\nkeypoint_names: [nose]\n"
    )
    return tmp_path


def queue(folder: Path, view: str) -> list[str]:
    path = multiview.queue_file(folder, view)
    if not path.is_file():
        return []
    return [json.loads(line)["frame_path"] for line in path.read_text().splitlines()]


def moments(folder: Path, view: str) -> list[str]:
    """The queue of ``view`` as moments: ``<session>/<session frame>``."""
    found = []
    for path in queue(folder, view):
        stem, name = path.split("/")[1:]
        session = stem.rsplit("_", 1)[0]
        found.append(f"{session}/{int(name[3:11])}")
    return found


def add(
    folder: Path,
    session: str,
    views: tuple[str, ...],
    frames: list[int],
    shift: dict[str, int] | None = None,
) -> dict[str, int]:
    stems = {view: f"{session}_{view}" for view in views}
    by_view = {view: [f + (shift or {}).get(view, 0) for f in frames] for view in views}
    return multiview.queue_session(folder, stems, by_view)


def label(folder: Path, line: int) -> None:
    """What the app's save_mvframe does to the queues: line ``line`` leaves every view's."""
    for view in VIEWS:
        path = multiview.queue_file(folder, view)
        lines = path.read_text().splitlines()
        path.write_text("".join(text + "\n" for i, text in enumerate(lines) if i != line))


def test_a_late_view_lines_up_after_other_moments_were_labeled(tmp_path: Path) -> None:
    """Session a goes with top and side; session b comes with all three; b's first moment is
    labeled; then a's back view arrives. Every queue is then the same moments, line for line,
    and no line waits."""
    folder = project(tmp_path)
    held = add(folder, "a", ("top", "side"), [10, 20])
    assert {"top": 2, "side": 2, "back": 0} == held
    assert [] == queue(folder, "top")  # the app could not show them without back's lines
    assert "back" in multiview.held_warning(held)[0]
    add(folder, "b", VIEWS, [5, 15, 25])
    assert ["b/5", "b/15", "b/25"] == moments(folder, "top") == moments(folder, "back")
    label(folder, 0)
    held = add(folder, "a", ("back",), [10, 20])
    assert {"top": 0, "side": 0, "back": 0} == held
    assert [] == multiview.held_warning(held)
    expected = ["b/15", "b/25", "a/10", "a/20"]
    assert all(expected == moments(folder, view) for view in VIEWS)
    assert not (folder / ".framewatch" / multiview.WAITING_DIR).exists() or not list(
        (folder / ".framewatch" / multiview.WAITING_DIR).iterdir()
    )


def test_queues_that_no_longer_line_up_are_rewritten_in_the_longest_queues_order(
    tmp_path: Path,
) -> None:
    """Queues left out of line (as last session's code appended a late view's lines) are put
    back in line, moments matched through each session's recorded offsets."""
    folder = project(tmp_path)
    record = {"views": {"top": {"offset": 0}, "side": {"offset": 5}, "back": {"offset": 0}}}
    (folder / ".framewatch" / "c_side").mkdir(parents=True)
    (folder / ".framewatch" / "c_side" / "session.json").write_text(json.dumps(record))
    lines = {
        "top": ["c_top/img00000001.png", "c_top/img00000002.png", "d_top/img00000007.png"],
        "side": ["d_side/img00000007.png", "c_side/img00000006.png", "c_side/img00000007.png"],
        "back": ["d_back/img00000007.png", "c_back/img00000001.png"],
    }
    for view, paths in lines.items():
        multiview.queue_file(folder, view).write_text(
            "".join(
                json.dumps({"frame_path": f"labeled-data/{p}", "predictions": None}) + "\n"
                for p in paths
            )
        )
    held = add(folder, "c", ("back",), [2])  # back's late line for c's frame 2
    assert {"top": 0, "side": 0, "back": 0} == held
    expected = ["c/1", "c/2", "d/7"]
    assert expected == moments(folder, "top") == moments(folder, "back")
    side = ["c_side/img00000006.png", "c_side/img00000007.png", "d_side/img00000007.png"]
    assert [f"labeled-data/{p}" for p in side] == queue(folder, "side")  # c's side is +5
