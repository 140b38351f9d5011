"""The Lightning Pose app: its project files, kept so the app lists framewatch's frames.

A project the app made has ``project.yaml``. The app shows every row of ``CollectedData.csv``
as labeled and takes the frames to label from the queue ``CollectedData.unlabeled.jsonl``
(one ``{"frame_path": ..., "predictions": ...}`` object a line), which it rewrites itself
when a frame is saved. So framewatch creates the CSV only when it is missing, never touches
it again, and adds each selected frame to the queue once, in one atomic replace.
"""

from __future__ import annotations

import csv
import json
import math
import re
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from daemon.atomic import write_text_atomic
from handlers.frames import VIDEO_SUFFIXES

PROJECT_FILE = "project.yaml"
LABELS_CSV = "CollectedData.csv"
QUEUE_FILE = "CollectedData.unlabeled.jsonl"
REPORTS_DIR = ".framewatch"
PREDICTIONS_CSV = "predictions.csv"
APP_VIDEO_SUFFIX = ".mp4"
APP_FOLDER_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
HEADER_ROWS = 3


def is_app_project(project: Path) -> bool:
    """True when the Lightning Pose app made ``project`` (it holds ``project.yaml``)."""
    return (project / PROJECT_FILE).is_file()


def reports_folder(project: Path, stem: str) -> Path:
    """``<project>/.framewatch/STEM/``: where the app's file checks do not look.

    Not a visible folder: the app's label-file check takes every ``*.csv`` below the data
    folder for a label file (``selected_frames.csv`` would be flagged), but its glob skips
    hidden folders.
    """
    return project / REPORTS_DIR / stem


def frame_path(stem: str, index: int) -> str:
    """The app's name of a frame: ``labeled-data/STEM/img%08d.png``."""
    return f"labeled-data/{stem}/img{index:08d}.png"


def frame_of(path: str, stem: str) -> int | None:
    """The frame index of a ``labeled-data/STEM/img<n>.png|jpg`` path of ``stem``, else None."""
    match = re.fullmatch(
        rf"labeled-data/{re.escape(stem)}/img(\d+)\.(?:png|jpg)", path.replace("\\", "/")
    )
    return int(match.group(1)) if match else None


# ----- reading the project ------------------------------------------------------------------


def read_keypoints(project: Path) -> list[str]:
    """``keypoint_names`` of ``project.yaml``.

    Read by hand (a list under one key, block or flow style) so that framewatch needs no YAML
    library for one field.

    Raises:
        ValueError: the file has no ``keypoint_names`` list.
    """
    names = top_level_list(project / PROJECT_FILE, "keypoint_names")
    if names is None:
        where = project / PROJECT_FILE
        raise ValueError(f"{where}: expected a keypoint_names list, but found none")
    return names


def top_level_list(path: Path, key: str) -> list[str] | None:
    """The list under a top-level ``key:`` of a simple YAML file (block or flow style); None
    when the key is not there."""
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines):
        name, _, rest = line.partition(":")
        if name.strip() != key or line[:1].isspace():
            continue
        rest = rest.split("#", 1)[0].strip()
        if rest.startswith("["):
            return [unquote(item) for item in rest.strip("[]").split(",") if item.strip()]
        return list(block_items(lines[number + 1 :]))
    return None


def block_items(lines: Iterable[str]) -> Iterator[str]:
    """The ``- item`` lines of a YAML block list, up to the next key."""
    for line in lines:
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        if not text.startswith("-"):
            return
        yield unquote(text[1:])


def unquote(text: str) -> str:
    """A YAML scalar without its quotes."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def labeled_frames(project: Path, stem: str) -> set[int]:
    """Frames of ``stem`` that are a row of any ``CollectedData*.csv``."""
    found: set[int] = set()
    for path in project.glob("CollectedData*.csv"):
        with path.open(newline="", encoding="utf-8", errors="replace") as handle:
            for number, row in enumerate(csv.reader(handle)):
                if number >= HEADER_ROWS and row and (index := frame_of(row[0], stem)) is not None:
                    found.add(index)
    return found


def queued_paths(path: Path) -> list[str]:
    """The ``frame_path`` of every line of a queue file (none when it is missing)."""
    if not path.is_file():
        return []
    paths = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # the app's own reader skips what it cannot parse; so do we
        if isinstance(entry, dict) and isinstance(entry.get("frame_path"), str):
            paths.append(entry["frame_path"])
    return paths


def queued_frames(project: Path, stem: str) -> set[int]:
    """Frames of ``stem`` waiting in any ``*.unlabeled.jsonl`` queue."""
    found = (frame_of(p, stem) for q in project.glob("*.unlabeled.jsonl") for p in queued_paths(q))
    return {index for index in found if index is not None}


def claimed_frames(project: Path, stem: str) -> frozenset[int]:
    """Frames of ``stem`` that are labeled or queued to label, in any project."""
    return frozenset(labeled_frames(project, stem) | queued_frames(project, stem))


# ----- writing ------------------------------------------------------------------------------


def labels_header(keypoints: list[str], scorer: str = "scorer") -> str:
    """The three header rows of an empty label file: scorer, bodyparts, coords (x, y)."""
    rows = [
        ["scorer", *[scorer] * (2 * len(keypoints))],
        ["bodyparts", *[name for name in keypoints for _ in "xy"]],
        ["coords", *["x", "y"] * len(keypoints)],
    ]
    return "".join(",".join(row) + "\n" for row in rows)


def ensure_labels_csv(project: Path, keypoints: list[str]) -> None:
    """Create the header-only ``CollectedData.csv`` when missing; it is the labeler's after."""
    path = project / LABELS_CSV
    if not path.exists():
        write_text_atomic(path, labels_header(keypoints))


def queue_frames(project: Path, entries: list[dict[str, Any]]) -> int:
    """Append the ``entries`` whose frame is new to the queue; how many were added.

    The queue is read right before it is replaced, to lose as little as possible of what the
    app wrote meanwhile (the app itself rewrites it the same way).
    """
    path = project / QUEUE_FILE
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    present = set(queued_paths(path))
    new = [e for e in entries if e["frame_path"] not in present]
    if not new:
        return 0
    if text and not text.endswith("\n"):
        text += "\n"
    text += "".join(json.dumps(entry) + "\n" for entry in new)
    write_text_atomic(path, text)
    return len(new)


def unqueue_superseded(project: Path, stem: str) -> int:
    """Take ``stem``'s frames off every ``*.unlabeled.jsonl`` queue, when its bundle was set
    aside (the rest of a copy replaced it, see daemon/rejoin.py): their images are gone from
    ``labeled-data/STEM/``. Frames already labeled keep their lines; other lines are kept as
    they are. Each queue is replaced atomically, as ``queue_frames`` does; how many lines went.
    """
    labeled = labeled_frames(project, stem)
    removed = 0
    for path in sorted(project.glob("*.unlabeled.jsonl")):
        kept = []
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                entry = None
            where = entry.get("frame_path") if isinstance(entry, dict) else None
            index = frame_of(where, stem) if isinstance(where, str) else None
            if index is None or index in labeled:
                kept.append(line)
        if len(kept) < len(lines):
            write_text_atomic(path, "".join(kept))
            removed += len(lines) - len(kept)
    return removed


# ----- the model's guess --------------------------------------------------------------------


def read_guesses(path: Path, keypoints: list[str]) -> tuple[str, dict[str, list[dict[str, Any]]]]:
    """The scorer and, per frame path, the model's x/y for the project's ``keypoints``.

    Columns are matched to the project's names exactly, else ignoring case; a keypoint the
    project does not have is left out, and so is any NaN (the browser's JSON parser refuses it).
    """
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    scorer = rows[0][1] if len(rows[0]) > 1 else "model"
    names = {name.lower(): name for name in keypoints}
    columns: dict[str, dict[str, int]] = {}
    for column, (part, coord) in enumerate(zip(rows[1], rows[2], strict=False)):
        name = part if part in keypoints else names.get(part.lower())
        if column and name and coord in ("x", "y"):
            columns.setdefault(name, {})[coord] = column
    guesses = {}
    for row in rows[HEADER_ROWS:]:
        points = [
            {"keypoint_name": name, "x": x, "y": y}
            for name in keypoints
            if (xy := columns.get(name)) and "x" in xy and "y" in xy
            if math.isfinite(x := cell(row, xy["x"])) and math.isfinite(y := cell(row, xy["y"]))
        ]
        guesses[row[0]] = points
    return scorer, guesses


def cell(row: list[str], column: int) -> float:
    """A number cell; NaN when empty or not a number."""
    try:
        return float(row[column])
    except (IndexError, ValueError):
        return math.nan


# ----- the target ---------------------------------------------------------------------------


class LightningPoseApp:
    """Queue each published bundle's frames in the app's project."""

    name = "Lightning Pose app"

    def active(self, project: Path, settings: Any) -> bool:
        return is_app_project(project)

    def retry(self, project: Path, settings: Any) -> list[str]:
        return []  # nothing is ever left over: the queue is written with the bundle

    def publish(self, project: Path, bundle: Any, settings: Any) -> list[str]:
        keypoints = read_keypoints(project)
        ensure_labels_csv(project, keypoints)
        taken = labeled_frames(project, bundle.stem)
        guesses: dict[str, list[dict[str, Any]]] = {}
        scorer = ""
        if PREDICTIONS_CSV in bundle.files and (bundle.reports / PREDICTIONS_CSV).is_file():
            scorer, guesses = read_guesses(bundle.reports / PREDICTIONS_CSV, keypoints)
        stamp = int(time.time() * 1000)
        entries = []
        for index in sorted(set(bundle.selected) - taken):
            path = frame_path(bundle.stem, index)
            guess = None
            if path in guesses:
                guess = {"model_name": scorer, "date_time": stamp, "predictions": guesses[path]}
            entries.append({"frame_path": path, "predictions": guess})
        queue_frames(project, entries)
        return app_warnings(bundle.stem, bundle.inputs)


def app_warnings(stem: str, inputs: Iterable[Path]) -> list[str]:
    """What the app will not show: a folder name it refuses, a video that is not mp4."""
    warnings = []
    if not APP_FOLDER_NAME.match(stem):
        warnings.append(
            f"the Lightning Pose app flags labeled-data/{stem}/: its folder names may hold only "
            "letters, digits, '_', '.' and '-'; rename the video and drop it again"
        )
    warnings += [
        f"the Lightning Pose app lists only .mp4 videos, so it will not show {path.name} "
        "(its frames are queued all the same); convert it to mp4 in videos/ to see it there"
        for path in inputs
        if path.parent.name == "videos"
        and path.suffix.lower() != APP_VIDEO_SUFFIX
        and path.suffix.lower() in VIDEO_SUFFIXES
    ]
    return warnings


TARGET = LightningPoseApp()
