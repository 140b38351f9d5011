"""SLEAP: one ``.slp`` per video, holding the video and its selected frames as suggestions.

``<project>/sleap/STEM.slp`` is rewritten (written beside, then renamed) with every bundle of
``STEM``: what it held is read first, so suggestions and anything a user labeled in it stay,
and the new bundle's frames are added as suggestions. A model-output drop adds the model's
guess as predicted instances on those frames. A SLEAP user opens the file, or merges it into
a project, and finds the frames in the suggestions list. Written with ``sleap-io`` (the
``labelers`` extra); on only when ``[sleap] enabled = true``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from daemon.config import Settings
from daemon.labelers import lightning_pose
from handlers.frames import VIDEO_SUFFIXES

FOLDER = "sleap"


def labels_path(project: Path, stem: str) -> Path:
    """``<project>/sleap/STEM.slp``."""
    return project / FOLDER / f"{stem}.slp"


def find_video(project: Path, stem: str, inputs: list[Path]) -> Path | None:
    """The bundle's video: a kept input, else ``<project>/videos/STEM.*``."""
    kept = [p for p in inputs if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file()]
    if kept:
        return kept[0]
    found = [p for p in sorted((project / "videos").glob(f"{stem}.*")) if p.suffix.lower() in
             VIDEO_SUFFIXES]  # fmt: skip
    return found[0] if found else None


def write_labels(
    path: Path,
    video_path: Path,
    frames: list[int],
    guesses: dict[int, dict[str, tuple[float, float]]],
    nodes: list[str],
) -> None:
    """Add ``frames`` (and the model's ``guesses``) to the ``.slp`` at ``path``, atomically."""
    import numpy as np
    import sleap_io as sio

    labels = sio.load_slp(str(path)) if path.is_file() else sio.Labels()
    video = next((v for v in labels.videos if Path(v.filename) == video_path), None)
    if video is None:
        video = sio.Video(filename=str(video_path), open_backend=False)
        labels.videos.append(video)
    skeleton = labels.skeletons[0] if labels.skeletons else None
    if skeleton is None and nodes:
        skeleton = sio.Skeleton(nodes=list(nodes), name="framewatch")
        labels.skeletons.append(skeleton)
    suggested = {s.frame_idx for s in labels.suggestions if s.video is video}
    labels.suggestions += [
        sio.SuggestionFrame(video=video, frame_idx=index)
        for index in sorted(set(frames) - suggested)
    ]
    have = {lf.frame_idx for lf in labels.labeled_frames if lf.video is video}
    if skeleton is not None:
        names = [node.name for node in skeleton.nodes]
        for index, points in sorted(guesses.items()):
            if index in have:
                continue
            data = np.array([points.get(name, (math.nan, math.nan)) for name in names], float)
            instance = sio.PredictedInstance.from_numpy(data, skeleton=skeleton, score=1.0)
            labels.labeled_frames.append(
                sio.LabeledFrame(video=video, frame_idx=index, instances=[instance])
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        sio.save_slp(labels, str(temporary), verbose=False)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def read_points(path: Path) -> tuple[list[str], dict[int, dict[str, tuple[float, float]]]]:
    """Bodyparts and, per frame index, each finite x/y of a predictions CSV."""
    from daemon.labelers.label_studio import csv_keypoints

    nodes = csv_keypoints(path)
    _, guesses = lightning_pose.read_guesses(path, nodes)
    points: dict[int, dict[str, tuple[float, float]]] = {}
    for frame, found in guesses.items():
        index = frame.rsplit("img", 1)[-1].split(".", 1)[0]
        if index.isdigit():
            points[int(index)] = {p["keypoint_name"]: (p["x"], p["y"]) for p in found}
    return nodes, points


class SleapTarget:
    """The frames of each bundle as suggestions in ``<project>/sleap/STEM.slp``."""

    name = "SLEAP"

    def active(self, project: Path, settings: Settings) -> bool:
        return settings.sleap.enabled

    def retry(self, project: Path, settings: Settings) -> list[str]:
        return []  # written with the bundle or not at all (the status says so)

    def publish(self, project: Path, bundle: Any, settings: Settings) -> list[str]:
        video = find_video(project, bundle.stem, bundle.inputs)
        if video is None:
            return [
                f"SLEAP: no video of {bundle.stem} in {project / 'videos'}, so no "
                f"{labels_path(project, bundle.stem).name} was written (a SLEAP file "
                "points at the video)"
            ]
        nodes: list[str] = []
        guesses: dict[int, dict[str, tuple[float, float]]] = {}
        predictions = bundle.reports / lightning_pose.PREDICTIONS_CSV
        if lightning_pose.PREDICTIONS_CSV in bundle.files and predictions.is_file():
            nodes, guesses = read_points(predictions)
        elif lightning_pose.is_app_project(project):
            nodes = lightning_pose.read_keypoints(project)
        write_labels(labels_path(project, bundle.stem), video, bundle.selected, guesses, nodes)
        return []


TARGET = SleapTarget()
