"""Multi-view sessions: the cameras of one recording settle, are claimed and are published together.

A video ``<session>_<view>.<ext>`` whose view is one of the view names (``[sessions]
view_names``, else ``view_names`` of a Lightning Pose app project's ``project.yaml``) is not an
item of its own: ``SessionGate.observe`` holds it back until every view of its session is in
the inbox and settled (or the views a sidecar ``<session>.json`` names with ``"views"``), then
offers one arrival named ``<session>`` holding every view's file. Until then the session's
status (``status/videos/<session>.json``, state ``arriving``) says which views are missing and
since when; after ``max_wait_h`` the session fails, naming them.

Once a session is done its frames are recorded in ``session.json`` beside every view's
frames; a view that arrives after that is exported with those same frames (never a second
choice). The handler is ``handlers.video.session``; the service calls ``observe`` from its
scan, ``plan_job`` when it starts an item and ``publish_session`` when one is done.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from daemon import labelers
from daemon.claim import ClaimedItem
from daemon.config import Settings
from daemon.inbox import Arrival
from daemon.kinds import (
    INFERENCE_SIDECAR_KEYS,
    KINDS,
    project_videos,
    read_sidecar,
    validate_options,
)
from daemon.labelers import multiview
from daemon.publish import move_without_replacing, publish_apart, publish_bundle
from daemon.settle import SettleTracker
from daemon.status import StatusStore, utc_now
from handlers.frames import VIDEO_SUFFIXES
from handlers.inference import file_role, member_stem
from handlers.inference.session import InferenceSessionOptions
from handlers.outcome import HandlerResult, InputError
from handlers.video.session import SESSION_JSON, SessionOptions, view_folder

ARRIVING = "arriving"
KIND = "videos"
INFERENCE = "inference"
HANDLER = "handlers.video.session:handle_session"
INFERENCE_HANDLER = "handlers.inference.session:handle_inference_session"
SIDECAR_KEYS = {"views", "offsets", "frames_per_video", "frame_range", "context_frames"}


# ----- names --------------------------------------------------------------------------------


def view_names(settings: Settings) -> list[str]:
    """The configured view names, else those of the app project's ``project.yaml``."""
    if settings.sessions.view_names:
        return list(settings.sessions.view_names)
    try:
        return multiview.read_view_names(settings.folder("project"))
    except (OSError, UnicodeDecodeError):
        return []


def split_view(stem: str, views: list[str]) -> tuple[str, str] | None:
    """(session, view) of ``<session>_<view>`` for a known view (the longest that fits)."""
    for view in sorted(views, key=len, reverse=True):
        if stem.endswith(f"_{view}") and len(stem) > len(view) + 1:
            return stem[: -len(view) - 1], view
    return None


def session_views(files: list[Path], views: list[str]) -> dict[str, dict[str, Path]]:
    """Video files grouped by session, then view, in the order of ``views``."""
    found: dict[str, dict[str, Path]] = {}
    for path in files:
        split = split_view(path.stem, views) if path.suffix.lower() in VIDEO_SUFFIXES else None
        if split is not None:
            found.setdefault(split[0], {})[split[1]] = path
    return {s: {v: by_view[v] for v in views if v in by_view} for s, by_view in found.items()}


def find_record(project: Path, session: str, views: list[str]) -> dict[str, Any] | None:
    """The ``session.json`` of a session already done (from any of its views), or None."""
    for view in views:
        stem = view_folder(session, view)
        path = labelers.reports_folder(project, stem) / SESSION_JSON
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and isinstance(record.get("frames"), list):
            return record
    return None


def wanted_views(sidecar: Path | None, views: list[str]) -> list[str]:
    """The views a session waits for: the sidecar's ``"views"`` when it lists known ones."""
    if sidecar is None:
        return views
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return views  # read again when it is taken, and the problem is named then
    chosen = data.get("views") if isinstance(data, dict) else None
    if isinstance(chosen, list) and chosen and all(v in views for v in chosen):
        return [v for v in views if v in chosen]
    return views


# ----- settling -----------------------------------------------------------------------------


@dataclass
class SessionGate:
    """Holds the views of a session back until the session can be taken whole."""

    settings: Settings
    status: StatusStore
    log: Any
    first_seen: dict[tuple[str, str], str] = field(default_factory=dict)
    told: dict[tuple[str, str], str] = field(default_factory=dict)
    expired: list[tuple[Arrival, list[str]]] = field(default_factory=list)

    def observe(
        self,
        tracker: SettleTracker,
        found: list[Arrival],
        now: float,
        busy: set[str],
        covered: Mapping[tuple[str, str], int] | None = None,
    ) -> list[Arrival]:
        """``tracker.observe`` with the views of sessions replaced by whole sessions.

        Videos and model outputs alike: ``<session>_<view>`` in the videos inbox, or in the
        inference inbox. ``busy`` are names of items claimed now: a view of a session being
        worked on waits until it is done, and then is a late view.
        """
        views = view_names(self.settings)
        if not views:
            return tracker.observe(found, now, covered)
        groups = session_groups(found, views)
        sidecars = {
            key: Arrival(key[0], key[1], (path,))
            for key in groups
            if (path := self.settings.folder(key[0]) / f"{key[1]}.json").is_file()
        }
        settled = tracker.observe([*found, *sidecars.values()], now, covered)
        settled_keys = {a.key for a in settled}
        member_keys = {a.key for by_view in groups.values() for a in by_view.values()}
        side_keys = {a.key for a in sidecars.values()}
        taken = [a for a in settled if a.key not in member_keys and a.key not in side_keys]
        for key, by_view in groups.items():
            if key[1] in busy:
                continue
            ready = self.ready(key, by_view, sidecars.get(key), settled_keys, views)
            if ready is not None:
                taken.append(ready)
        for key in set(self.first_seen) - set(groups):
            self.first_seen.pop(key, None)
            self.told.pop(key, None)
        return taken

    def ready(
        self,
        key: tuple[str, str],
        by_view: dict[str, Arrival],
        sidecar: Arrival | None,
        settled_keys: set[tuple[str, str]],
        views: list[str],
    ) -> Arrival | None:
        """The session's arrival once it can be taken; else None, its status saying why."""
        kind, session = key
        project = self.settings.folder("project")
        done = kind == KIND and find_record(project, session, views) is not None
        sidecar_path = sidecar.entries[0] if sidecar is not None else None
        wanted = list(by_view) if done else wanted_views(sidecar_path, views)
        missing = [view for view in wanted if view not in by_view]
        copying = [
            view for view in wanted if view in by_view and by_view[view].key not in settled_keys
        ]
        if sidecar is not None and sidecar.key not in settled_keys:
            copying.append(sidecar.entries[0].name)
        if not missing and not copying:
            self.first_seen.pop(key, None)
            self.told.pop(key, None)
            entries = [e for view in wanted for e in by_view[view].entries]
            return Arrival(kind, session, (*entries, *(sidecar.entries if sidecar else ())))
        since = self.waiting_since(key)
        if missing and self.overdue(since):
            self.fail_later(key, by_view, sidecar, missing, since)
            return None
        self.tell(key, wanted, list(by_view), missing, copying, since)
        return None

    def waiting_since(self, key: tuple[str, str]) -> str:
        """When a view of the session was first seen; kept across restarts in its status."""
        if key not in self.first_seen:
            status = self.status.read(*key) or {}
            since = status.get("waiting_since")
            keep = (
                status.get("state") == ARRIVING and isinstance(since, str) and since.endswith("Z")
            )
            self.first_seen[key] = str(since) if keep else utc_now()
        return self.first_seen[key]

    def overdue(self, since: str) -> bool:
        limit_h = self.settings.sessions.max_wait_h
        if limit_h <= 0:
            return False
        try:
            started = datetime.strptime(since, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        except ValueError:  # a status file edited by hand: wait from now on
            return False
        return (datetime.now(UTC) - started).total_seconds() >= limit_h * 3600

    def fail_later(
        self,
        key: tuple[str, str],
        by_view: dict[str, Arrival],
        sidecar: Arrival | None,
        missing: list[str],
        since: str,
    ) -> None:
        """Queue the present views to be failed by the service, naming the missing ones."""
        kind, session = key
        entries = [e for arrival in by_view.values() for e in arrival.entries]
        entries += list(sidecar.entries) if sidecar else []
        here = ", ".join(by_view)
        problem = (
            f"session {session} is missing the view(s) {', '.join(missing)}: only {here} "
            f"arrived (the first at {since}), and a session waits at most "
            f"{self.settings.sessions.max_wait_h:g} h ([sessions] max_wait_h). Drop the missing "
            "views together with these again, or, to go without them, drop these again with "
            f'{session}.json holding {{"views": {json.dumps(list(by_view))}}}'
        )
        self.expired.append((Arrival(kind, session, tuple(entries)), [problem]))
        self.first_seen.pop(key, None)
        self.told.pop(key, None)

    def waiting(self) -> set[tuple[str, str]]:
        """The status keys of sessions waiting for views: their statuses are this gate's."""
        return set(self.first_seen)

    def take_expired(self) -> list[tuple[Arrival, list[str]]]:
        expired, self.expired = self.expired, []
        return expired

    def tell(
        self,
        key: tuple[str, str],
        wanted: list[str],
        here: list[str],
        missing: list[str],
        copying: list[str],
        since: str,
    ) -> None:
        """Write the waiting session's status when what it waits for changed."""
        kind, session = key
        limit = self.settings.sessions.max_wait_h
        if missing:
            message = (
                f"Waiting for the view(s) {', '.join(missing)} of session {session} since {since} "
                f"(here: {', '.join(here)}). The session is taken once every view is in; "
                + (f"after {limit:g} h it fails naming the missing views. " if limit > 0 else "")
                + f'To go without them, drop {session}.json with {{"views": {json.dumps(here)}}}.'
            )
        else:
            message = (
                f"Every view of session {session} is here; waiting for "
                f"{', '.join(copying)} to finish copying."
            )
        if self.told.get(key) == message:
            return
        self.told[key] = message
        self.log.info("session waiting", kind=kind, name=session, missing=missing, copying=copying)
        try:
            self.status.write(
                kind,
                session,
                ARRIVING,
                message,
                progress=0.0,
                views=wanted,
                views_present=here,
                views_missing=missing,
                waiting_since=since,
                bundle=f"labeled-data/{view_folder(session, here[0])}",
            )
        except OSError:
            self.log.exception("status not written", kind=kind, name=session)


def session_of(arrival: Arrival, views: list[str]) -> tuple[str, str] | None:
    """(session, view) of an arrival that is one view of a session: a video
    ``<session>_<view>.<ext>``, or model outputs for the video ``<session>_<view>``."""
    if arrival.kind == KIND:
        first = arrival.entries[0]
        return split_view(first.stem, views) if first.suffix.lower() in VIDEO_SUFFIXES else None
    if arrival.kind == INFERENCE:
        return split_view(arrival.name, views)
    return None


def session_groups(
    found: list[Arrival], views: list[str]
) -> dict[tuple[str, str], dict[str, Arrival]]:
    """The arrivals that are views of sessions, by (kind, session), then view in view order."""
    groups: dict[tuple[str, str], dict[str, Arrival]] = {}
    for arrival in found:
        split = session_of(arrival, views)
        if split is not None:
            groups.setdefault((arrival.kind, split[0]), {})[split[1]] = arrival
    return {key: {v: by_view[v] for v in views if v in by_view} for key, by_view in groups.items()}


# ----- the job ------------------------------------------------------------------------------


def claimed_views(settings: Settings, item: ClaimedItem) -> dict[str, Path] | None:
    """The view files of a claimed session (videos, or for model outputs each view's first
    file), or None when the item is not a session."""
    views = view_names(settings)
    if not views:
        return None
    if item.kind == INFERENCE:
        found: dict[str, Path] = {}
        for path in item.files:
            role = file_role(path.name) if path.is_file() else ("folder", path.name)
            split = split_view(member_stem(role[1]), views) if role is not None else None
            if split is not None and split[0] == item.name and split[1] not in found:
                found[split[1]] = path
        return {v: found[v] for v in views if v in found} or None
    if item.kind != KIND:
        return None
    videos = [p for p in item.files if p.suffix.lower() in VIDEO_SUFFIXES]
    if any(path.stem == item.name for path in videos):
        return None
    return session_views(videos, views).get(item.name)


def session_sidecar(item: ClaimedItem, views: list[str]) -> dict[str, Any]:
    """The session sidecar's options, ``views`` taken out and ``offsets`` checked.

    Raises:
        InputError: the sidecar is bad, or a view brought a sidecar of its own.
    """
    session = item.name
    sidecar_path = [p for p in item.files if p.name == f"{session}.json"]
    problems = [
        f"{p.name}: a view of a session takes no sidecar of its own; put the options for the "
        f"whole session in {session}.json"
        for p in item.files
        if p.suffix.lower() == ".json" and p.name != f"{session}.json"
    ]
    sidecar = read_sidecar(sidecar_path) if sidecar_path else {}
    chosen = sidecar.pop("views", None)
    if chosen is not None and not (
        isinstance(chosen, list) and chosen and all(v in views for v in chosen)
    ):
        problems.append(
            f'{session}.json "views": expected a list of view names from {views}, but got '
            f"{str(chosen)[:80]}"
        )
    offsets = sidecar.get("offsets", {})
    if not isinstance(offsets, dict) or any(
        v not in views or not isinstance(o, int) or o < 0 for v, o in offsets.items()
    ):
        problems.append(
            f'{session}.json "offsets": expected {{"<view>": frames}} with views from {views} '
            f"and whole numbers >= 0, but got {str(offsets)[:80]}"
        )
    if problems:
        raise InputError(problems)
    return sidecar


def dated_views(project: Path, session: str, views: Iterable[str]) -> list[str]:
    """Views whose folder already holds a session.json (the new one gets a dated name)."""
    return [
        v
        for v in views
        if (labelers.reports_folder(project, view_folder(session, v)) / SESSION_JSON).exists()
    ]


def plan_job(settings: Settings, item: ClaimedItem) -> tuple[str, BaseModel] | None:
    """The handler and options of a claimed session; None when the item is not a session.

    Raises:
        InputError: the sidecar is bad, or a view brought a sidecar of its own.
    """
    files = claimed_views(settings, item)
    if files is None:
        refuse_single(settings, item)
        return None
    views = view_names(settings)
    sidecar = session_sidecar(item, views)
    session = item.name
    offsets = sidecar.get("offsets", {})
    project = settings.folder("project")
    if item.kind == INFERENCE:
        return INFERENCE_HANDLER, inference_session_options(settings, item, files, sidecar)
    record = find_record(project, session, views)
    defaults: dict[str, Any] = {
        **settings.extract.model_dump(),
        "session": session,
        "files": {view: path.name for view, path in files.items()},
        "exclude_frames": excluded_frames(project, session, files, offsets),
        "dated_views": dated_views(project, session, files),
    }
    if record is not None:
        defaults["fixed_frames"] = [int(i) for i in record["frames"]]
        defaults["recorded_counts"] = {
            view: int(data["frame_count"])
            for view, data in record.get("views", {}).items()
            if view not in files
        }
        defaults["context_frames"] = int(record.get("parameters", {}).get("context_frames", 2))
    options = validate_options(SessionOptions, defaults, sidecar, SIDECAR_KEYS - {"views"})
    assert isinstance(options, SessionOptions)
    return HANDLER, options


def refuse_single(settings: Settings, item: ClaimedItem) -> None:
    """Refuse a single video or model output in a multi-view app project: the app would flag
    the ``CollectedData.csv`` it needs, and show its frames in no view.

    Raises:
        InputError: naming the project's views and the file names a session takes.
    """
    project = settings.folder("project")
    if item.kind not in (KIND, INFERENCE) or not multiview.is_multiview_project(project):
        return
    views = multiview.read_view_names(project)
    suffix = ".mp4" if item.kind == KIND else ".csv"
    names = ", ".join(f"{item.name}_{view}{suffix}" for view in views)
    what = "video" if item.kind == KIND else "model's predictions"
    raise InputError(
        [
            f"{item.name}: this Lightning Pose app project is multi-view (view_names "
            f"{', '.join(views)} in project.yaml), so a recording comes as a session: one "
            f"{what} file per view, named <session>_<view>{suffix} ({names}), dropped together. "
            "A single one would be labeled in CollectedData.csv, which the app flags in a "
            "multi-view project. Rename the files that way and drop them again"
        ]
    )


def inference_session_options(
    settings: Settings, item: ClaimedItem, files: dict[str, Path], sidecar: dict[str, Any]
) -> BaseModel:
    """Options of a session's model outputs: [extract], [inference], then the sidecar."""
    project = settings.folder("project")
    videos = project / "videos"
    session = item.name
    defaults: dict[str, Any] = {
        "frames_per_video": settings.extract.frames_per_video,
        "frame_range": settings.extract.frame_range,
        "context_frames": settings.extract.context_frames,
        **settings.inference.model_dump(),
        "session": session,
        "views": list(files),
        "exclude_frames": excluded_frames(project, session, files, sidecar.get("offsets", {})),
        "video_candidates": {
            view: project_videos(videos, view_folder(session, view)) for view in files
        },
        "video_folder": str(videos),
        "dated_views": dated_views(project, session, files),
    }
    allowed = (INFERENCE_SIDECAR_KEYS | {"offsets"}) - {"views"}
    return validate_options(InferenceSessionOptions, defaults, sidecar, allowed)


def excluded_frames(
    project: Path, session: str, files: dict[str, Path], offsets: dict[str, int]
) -> frozenset[int]:
    """Session frames already exported, labeled or queued in any view: not chosen again."""
    taken: set[int] = set()
    for view in files:
        shift = offsets.get(view, 0)
        taken |= {i - shift for i in labelers.taken_frames(project, view_folder(session, view))}
    return frozenset(i for i in taken if i >= 0)


# ----- publishing ---------------------------------------------------------------------------


def publish_session(
    settings: Settings, item: ClaimedItem, result: HandlerResult, staging: Path
) -> list[str]:
    """Publish every view's folder, keep the inputs, hand the frames to the labelers.

    Returns:
        warnings for the status.
    """
    project = settings.folder("project")
    session = item.name
    by_view: dict[str, list[int]] = result.report["frames_by_view"]
    stems = {view: view_folder(session, view) for view in by_view}
    for stem in stems.values():
        target = project / "labeled-data" / stem
        reports = labelers.reports_folder(project, stem)
        if reports != target:
            publish_apart(staging / stem, target, reports)
        elif (staging / stem).exists():
            publish_bundle(staging / stem, target)
    keep = KINDS[item.kind].keep_folder
    kept = {path.name: move_without_replacing(path, keep(settings, path)) for path in item.files}
    names = {path.stem: path for path in kept.values()}
    if multiview.is_multiview_project(project):
        guesses = multiview.model_guesses(project, stems) if item.kind == INFERENCE else {}
        held = multiview.queue_session(project, stems, by_view, guesses)
        return multiview.held_warning(held)
    warnings: list[str] = []
    for view, stem in stems.items():
        files = [name.split("/", 1)[1] for name in result.files if name.startswith(f"{stem}/")]
        inputs = [names[stem]] if stem in names else []
        published = labelers.PublishedBundle(
            stem, by_view[view], files, labelers.reports_folder(project, stem), inputs
        )
        warnings += labelers.announce_bundle(project, published, settings)
    return warnings


def status_fields(session: str, result: HandlerResult) -> dict[str, Any]:
    """What a done session's status adds: its views and their folders."""
    added = list(result.report.get("views", []))
    views = list(result.report.get("session_views", added))
    bundles = [f"labeled-data/{view_folder(session, view)}" for view in views]
    fields: dict[str, Any] = {"views": views, "bundles": bundles, "bundle": bundles[0]}
    if views != added:  # a late view: the session was done before with the others
        fields["views_added"] = added
    return fields
