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
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from daemon.atomic import write_text_atomic
from daemon.labelers.lightning_pose import (
    PREDICTIONS_CSV,
    PROJECT_FILE,
    REPORTS_DIR,
    frame_path,
    is_app_project,
    labeled_frames,
    labels_header,
    queued_paths,
    read_guesses,
    read_keypoints,
    reports_folder,
    top_level_list,
)


def labels_csv(project: Path, view: str) -> Path:
    return project / f"CollectedData_{view}.csv"


def queue_file(project: Path, view: str) -> Path:
    return project / f"CollectedData_{view}.unlabeled.jsonl"


def read_view_names(project: Path) -> list[str]:
    """``view_names`` of the app's ``project.yaml`` (block or flow list); [] when absent."""
    if not is_app_project(project):
        return []
    return top_level_list(project / PROJECT_FILE, "view_names") or []


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
) -> dict[str, int]:
    """Queue a session's frames in its views' queues, then line every view's queue up.

    Args:
        project: the app project.
        stems: per view, its folder name under ``labeled-data/`` (``<session>_<view>``).
        frames: per view, the view's own frame numbers, moment i at position i in every view.
        guesses: the model's guess per frame path (``model_guesses``), where there is one.

    Returns:
        per view, how many of its frames wait for other views (``align_queues``).
    """
    keypoints = read_keypoints(project)
    views = list(stems)
    for view in views:
        if not labels_csv(project, view).exists():
            write_text_atomic(labels_csv(project, view), labels_header(keypoints))
    taken = [
        set(queued_paths(queue_file(project, view)))
        | set(queued_paths(waiting_file(project, view)))
        | {frame_path(stems[view], i) for i in labeled_frames(project, stems[view])}
        for view in views
    ]
    moments = len(frames[views[0]])
    new = [
        moment
        for moment in range(moments)
        if not any(frame_path(stems[v], frames[v][moment]) in taken[k] for k, v in enumerate(views))
    ]
    added = {
        view: [
            {"frame_path": path, "predictions": (guesses or {}).get(path)}
            for moment in new
            for path in [frame_path(stems[view], frames[view][moment])]
        ]
        for view in views
    }
    return align_queues(project, read_view_names(project) or views, added)


# ----- one moment a line in every view ------------------------------------------------------

WAITING_DIR = ".waiting-for-views"


def waiting_file(project: Path, view: str) -> Path:
    """Where a view's lines wait while some other view has no line for their moment yet."""
    return project / REPORTS_DIR / WAITING_DIR / queue_file(project, view).name


def read_entries(path: Path) -> tuple[list[tuple[str, str]], list[str]]:
    """A queue's (frame path, line) pairs, and the lines that are not an entry (kept as they
    are, at the end); lines are kept as written (the app writes them compact)."""
    if not path.is_file():
        return [], []
    entries, odd = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            entry = None
        if isinstance(entry, dict) and isinstance(entry.get("frame_path"), str):
            entries.append((entry["frame_path"], line))
        else:
            odd.append(line)
    return entries, odd


def moment_key(path: str, view: str, offsets: Callable[[str], dict[str, int]]) -> tuple[str, str]:
    """Which moment a queued frame shows: (session, session frame) for
    ``labeled-data/<session>_<view>/img<n>``; else the app's own key (the path with the view
    name replaced by ``*``)."""
    parts = path.replace("\\", "/").split("/")
    stem, name = (parts[-2], parts[-1]) if len(parts) >= 2 else ("", path)
    digits = "".join(c for c in name if c.isdigit())
    if stem.endswith(f"_{view}") and name.startswith("img") and digits:
        session = stem[: -len(view) - 1]
        return session, str(int(digits) - offsets(session).get(view, 0))
    return "*", path.replace(view, "*", 1)


def recorded_offsets(project: Path, views: Sequence[str]) -> Callable[[str], dict[str, int]]:
    """A session's view offsets, read once from any view's ``session.json`` (0 when none)."""
    known: dict[str, dict[str, int]] = {}

    def offsets(session: str) -> dict[str, int]:
        if session not in known:
            known[session] = {}
            for view in views:
                path = reports_folder(project, f"{session}_{view}") / "session.json"
                try:
                    record = json.loads(path.read_text(encoding="utf-8"))
                    known[session] = {
                        v: int(data.get("offset", 0)) for v, data in record["views"].items()
                    }
                    break
                except (OSError, ValueError, KeyError, TypeError, AttributeError):
                    continue
        return known[session]

    return offsets


def align_queues(
    project: Path, views: Sequence[str], added: Mapping[str, list[dict[str, Any]]]
) -> dict[str, int]:
    """Rewrite every view's queue so that line i is the same moment in every view.

    The app builds the multi-view frame i from line i of every view's queue, and fails to
    load the queues when they differ in length. So a moment is queued only once every view
    has a line for it; until then its lines wait in ``.framewatch/.waiting-for-views/`` (a
    view that arrives late, or a session that went ahead without some views). The moments
    keep the order of the longest queue, later ones after; each file is replaced atomically.

    Returns:
        per view, how many of its lines wait for other views.
    """
    offsets = recorded_offsets(project, views)
    lines: dict[str, dict[tuple[str, str], str]] = {}
    odd: dict[str, list[str]] = {}
    longest: list[tuple[str, str]] = []
    for view in views:
        queued, odd[view] = read_entries(queue_file(project, view))
        waiting, _ = read_entries(waiting_file(project, view))
        new = [(e["frame_path"], json.dumps(e)) for e in added.get(view, [])]
        keyed = {moment_key(path, view, offsets): line for path, line in [*queued, *waiting, *new]}
        lines[view] = keyed
        order = [moment_key(path, view, offsets) for path, _ in queued]
        if len(order) > len(longest):
            longest = order
    complete = set.intersection(*(set(keyed) for keyed in lines.values()))
    order = list(dict.fromkeys([*longest, *(k for keyed in lines.values() for k in keyed)]))
    held: dict[str, int] = {}
    for view in views:
        queue = [lines[view][k] for k in order if k in complete]
        later = [entry for k, entry in lines[view].items() if k not in complete]
        write_if_changed(queue_file(project, view), queue + odd[view])
        write_if_changed(waiting_file(project, view), later)
        held[view] = len(later)
    return held


def held_warning(held: Mapping[str, int]) -> list[str]:
    """The status warning when lines wait for other views; [] when none do."""
    waiting = {view: count for view, count in held.items() if count}
    if not waiting:
        return []
    missing = [view for view in held if not held[view]]
    counts = ", ".join(f"{view} {count}" for view, count in waiting.items())
    return [
        f"frames held back from the Lightning Pose app's queues ({counts}, in "
        f".framewatch/{WAITING_DIR}/): the app shows a frame only with a line for its moment in "
        f"every view's queue, and {', '.join(missing) or 'some view'} has none for them yet (a "
        "view not dropped yet, or the moment labeled there meanwhile); they are queued once "
        "every view has them"
    ]


def write_if_changed(path: Path, lines: list[str]) -> None:
    """Replace ``path`` with ``lines`` atomically when they differ; an empty waiting file goes."""
    text = "".join(line + "\n" for line in lines)
    old = path.read_text(encoding="utf-8") if path.is_file() else None
    if text == (old or ""):
        return
    if not text and path.parent.name == WAITING_DIR:
        path.unlink()
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, text)
