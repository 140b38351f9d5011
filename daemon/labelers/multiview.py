"""The Lightning Pose app's multi-view projects: one label file and one queue per view.

A project whose ``project.yaml`` lists ``view_names`` keeps ``CollectedData_<view>.csv`` and
its queue ``CollectedData_<view>.unlabeled.jsonl`` for every view, and the app builds the
multi-view frame to label from line i of every view's queue (``litpose_app`` 2.4: the
labeler's ``add_to_unlabeled_sidecar_files`` and ``save_mvframe``). So a session's frames are
appended to every view's queue in one order, and a moment already queued or labeled in any
view is left out of all, keeping the lines aligned.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from daemon.atomic import write_text_atomic
from daemon.labelers.lightning_pose import (
    PREDICTIONS_CSV,
    PROJECT_FILE,
    block_items,
    frame_path,
    is_app_project,
    labeled_frames,
    labels_header,
    queued_paths,
    read_guesses,
    read_keypoints,
    reports_folder,
    unquote,
)


def labels_csv(project: Path, view: str) -> Path:
    return project / f"CollectedData_{view}.csv"


def queue_file(project: Path, view: str) -> Path:
    return project / f"CollectedData_{view}.unlabeled.jsonl"


def read_view_names(project: Path) -> list[str]:
    """``view_names`` of the app's ``project.yaml`` (block or flow list); [] when absent."""
    if not is_app_project(project):
        return []
    lines = (project / PROJECT_FILE).read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines):
        key, _, rest = line.partition(":")
        if key.strip() != "view_names" or line[:1].isspace():
            continue
        rest = rest.split("#", 1)[0].strip()
        if rest.startswith("["):
            return [unquote(name) for name in rest.strip("[]").split(",") if name.strip()]
        return list(block_items(lines[number + 1 :]))
    return []


def is_multiview_project(project: Path) -> bool:
    """True for an app project with ``view_names``."""
    return bool(read_view_names(project))


def model_guesses(project: Path, stems: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """The model's guess per frame path, from each view's ``predictions.csv`` (a model-output
    session), in the queue's ``predictions`` form; {} for a session of videos."""
    keypoints = read_keypoints(project)
    stamp = int(time.time() * 1000)
    guesses: dict[str, dict[str, Any]] = {}
    for stem in stems.values():
        path = reports_folder(project, stem) / PREDICTIONS_CSV
        if path.is_file():
            scorer, found = read_guesses(path, keypoints)
            for frame, points in found.items():
                guesses[frame] = {"model_name": scorer, "date_time": stamp, "predictions": points}
    return guesses


def queue_session(
    project: Path,
    stems: Mapping[str, str],
    frames: Mapping[str, Sequence[int]],
    guesses: Mapping[str, dict[str, Any]] | None = None,
) -> int:
    """Queue a session's frames in every view's queue, aligned line for line.

    Args:
        project: the app project.
        stems: per view, its folder name under ``labeled-data/`` (``<session>_<view>``).
        frames: per view, the view's own frame numbers, moment i at position i in every view.
        guesses: the model's guess per frame path (``model_guesses``), where there is one.

    Returns:
        how many moments were added.
    """
    keypoints = read_keypoints(project)
    views = list(stems)
    for view in views:
        if not labels_csv(project, view).exists():
            write_text_atomic(labels_csv(project, view), labels_header(keypoints))
    taken = [
        set(queued_paths(queue_file(project, view)))
        | {frame_path(stems[view], i) for i in labeled_frames(project, stems[view])}
        for view in views
    ]
    moments = len(frames[views[0]])
    new = [
        moment
        for moment in range(moments)
        if not any(frame_path(stems[v], frames[v][moment]) in taken[k] for k, v in enumerate(views))
    ]
    if not new:
        return 0
    for view in views:
        entries: list[dict[str, Any]] = [
            {"frame_path": path, "predictions": (guesses or {}).get(path)}
            for moment in new
            for path in [frame_path(stems[view], frames[view][moment])]
        ]
        append_lines(queue_file(project, view), entries)
    return len(new)


def append_lines(path: Path, entries: list[dict[str, Any]]) -> None:
    """Append JSON lines to a queue, read right before one atomic replace."""
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    if text and not text.endswith("\n"):
        text += "\n"
    text += "".join(json.dumps(entry) + "\n" for entry in entries)
    write_text_atomic(path, text)
