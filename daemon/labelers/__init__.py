"""Labeling targets: where a published bundle's frames go so a labeler finds them.

The daemon calls ``announce_bundle`` once a bundle is published; every active target gets
the bundle, and a target that fails only adds a warning to the item's status (the bundle is
complete either way). Adding a target means adding one module here and one entry to
``TARGETS``; handlers know nothing of targets.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from daemon.labelers import lightning_pose
from handlers.bundle import existing_frames


@dataclass(frozen=True)
class PublishedBundle:
    """One bundle, as published.

    Attributes:
        stem: the bundle's folder name under ``labeled-data/`` (the video's stem).
        selected: the centre frames chosen for labeling.
        files: names of every file the handler wrote.
        reports: the folder holding ``selected_frames.csv`` and the reports.
        inputs: where the item's input files were kept (the video in ``<project>/videos/``).
    """

    stem: str
    selected: list[int]
    files: list[str]
    reports: Path
    inputs: list[Path]


class LabelingTarget(Protocol):
    """A labeler that learns of every published bundle."""

    name: str

    def active(self, project: Path) -> bool:
        """True when ``project`` uses this labeler."""
        ...

    def publish(self, project: Path, bundle: PublishedBundle) -> list[str]:
        """Hand ``bundle`` to the labeler; warnings for the status."""
        ...


TARGETS: tuple[LabelingTarget, ...] = (lightning_pose.TARGET,)


def announce_bundle(project: Path, bundle: PublishedBundle) -> list[str]:
    """Give ``bundle`` to every active target; their warnings, a failure being one."""
    warnings: list[str] = []
    for target in TARGETS:
        try:
            if target.active(project):
                warnings += target.publish(project, bundle)
        except Exception as exc:  # noqa: BLE001 - a labeler's failure must not fail the bundle
            warnings.append(
                f"{target.name}: the frames of {bundle.stem} were not handed over ({exc}); "
                "the bundle is complete, fix the cause and drop the video again to retry"
            )
    return warnings


def reports_folder(project: Path, stem: str) -> Path:
    """Where a bundle's ``selected_frames.csv`` and reports go.

    Beside the frames in ``labeled-data/STEM/``, unless a Lightning Pose app project would
    flag any file there that is not a frame: then ``<project>/framewatch/STEM/``.
    """
    if lightning_pose.is_app_project(project):
        return lightning_pose.reports_folder(project, stem)
    return project / "labeled-data" / stem


def taken_frames(project: Path, stem: str) -> frozenset[int]:
    """Frames of ``stem`` never to be chosen again: exported, labeled or queued to label."""
    return existing_frames(project / "labeled-data" / stem) | lightning_pose.claimed_frames(
        project, stem
    )
