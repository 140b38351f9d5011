"""Labeling targets: where a published bundle's frames go so a labeler finds them.

The daemon calls ``announce_bundle`` once a bundle is published; every active target gets
the bundle, and a target that fails only adds a warning to the item's status (the bundle is
complete either way). Adding a target means adding one module here and one entry to
``TARGETS``; handlers know nothing of targets.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from daemon.labelers import lightning_pose
from handlers.bundle import existing_frames

if TYPE_CHECKING:
    from daemon.config import Settings


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

    def active(self, project: Path, settings: Settings) -> bool:
        """True when ``project`` (or the configuration) uses this labeler."""
        ...

    def publish(self, project: Path, bundle: PublishedBundle, settings: Settings) -> list[str]:
        """Hand ``bundle`` to the labeler; warnings for the status."""
        ...

    def retry(self, project: Path, settings: Settings) -> list[str]:
        """Hand over what an earlier publish could not (the nightly sweep); warnings."""
        ...


def targets() -> tuple[LabelingTarget, ...]:
    """Every labeling target (imported here: the Label Studio one needs the configuration)."""
    from daemon.labelers import label_studio, sleap

    return (lightning_pose.TARGET, label_studio.TARGET, sleap.TARGET)


def announce_bundle(project: Path, bundle: PublishedBundle, settings: Settings) -> list[str]:
    """Give ``bundle`` to every active target; their warnings, a failure being one."""
    warnings: list[str] = []
    for target in targets():
        try:
            if target.active(project, settings):
                warnings += target.publish(project, bundle, settings)
        except Exception as exc:  # noqa: BLE001 - a labeler's failure must not fail the bundle
            warnings.append(
                f"{target.name}: the frames of {bundle.stem} were not handed over ({exc}); "
                "the bundle is complete, fix the cause and drop the video again to retry"
            )
    return warnings


def retry_pending(project: Path, settings: Settings) -> list[str]:
    """Let every target hand over what it still holds (the nightly sweep); warnings."""
    warnings: list[str] = []
    for target in targets():
        try:
            warnings += target.retry(project, settings)
        except Exception as exc:  # noqa: BLE001 - as in announce_bundle
            warnings.append(f"{target.name}: {exc}")
    return warnings


def reports_folder(project: Path, stem: str) -> Path:
    """Where a bundle's ``selected_frames.csv`` and reports go.

    Beside the frames in ``labeled-data/STEM/``, unless a Lightning Pose app project would
    flag any file there that is not a frame: then ``<project>/.framewatch/STEM/``.
    """
    if lightning_pose.is_app_project(project):
        return lightning_pose.reports_folder(project, stem)
    return project / "labeled-data" / stem


def taken_frames(project: Path, stem: str) -> frozenset[int]:
    """Frames of ``stem`` never to be chosen again: exported, labeled or queued to label."""
    return existing_frames(project / "labeled-data" / stem) | lightning_pose.claimed_frames(
        project, stem
    )
