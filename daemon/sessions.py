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
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from daemon import labelers
from daemon.claim import ClaimedItem
from daemon.config import Settings
from daemon.inbox import Arrival
from daemon.kinds import KINDS, read_sidecar, validate_options
from daemon.labelers import multiview
from daemon.publish import move_without_replacing, publish_apart, publish_bundle
from daemon.settle import SettleTracker
from daemon.status import StatusStore, utc_now
from handlers.frames import VIDEO_SUFFIXES
from handlers.outcome import HandlerResult, InputError
from handlers.video.session import SESSION_JSON, SessionOptions, view_folder

ARRIVING = "arriving"
KIND = "videos"
HANDLER = "handlers.video.session:handle_session"
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
    first_seen: dict[str, str] = field(default_factory=dict)
    told: dict[str, str] = field(default_factory=dict)
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

        ``busy`` are names of items claimed now: a view of a session being worked on waits
        until it is done, and then is a late view.
        """
        views = view_names(self.settings)
        if not views:
            return tracker.observe(found, now, covered)
        videos = [a for a in found if a.kind == KIND]
        groups = session_views([a.entries[0] for a in videos], views)
        inbox = self.settings.folder(KIND)
        sidecars = {
            session: Arrival(KIND, session, (inbox / f"{session}.json",))
            for session in groups
            if (inbox / f"{session}.json").is_file()
        }
        settled = tracker.observe([*found, *sidecars.values()], now, covered)
        settled_keys = {a.key for a in settled}
        members = {a.entries[0]: a for a in videos if a.entries[0] in _paths(groups)}
        taken = [a for a in settled if a.entries[0] not in members and a not in sidecars.values()]
        for session, by_view in groups.items():
            if session in busy:
                continue
            sidecar = sidecars.get(session)
            ready = self.ready(session, by_view, members, sidecar, settled_keys, views)
            if ready is not None:
                taken.append(ready)
        for session in set(self.first_seen) - set(groups):
            self.first_seen.pop(session, None)
            self.told.pop(session, None)
        return taken

    def ready(
        self,
        session: str,
        by_view: dict[str, Path],
        members: dict[Path, Arrival],
        sidecar: Arrival | None,
        settled_keys: set[tuple[str, str]],
        views: list[str],
    ) -> Arrival | None:
        """The session's arrival once it can be taken; else None, its status saying why."""
        project = self.settings.folder("project")
        done = find_record(project, session, views) is not None
        sidecar_path = sidecar.entries[0] if sidecar is not None else None
        wanted = list(by_view) if done else wanted_views(sidecar_path, views)
        missing = [view for view in wanted if view not in by_view]
        copying = [
            view
            for view in wanted
            if view in by_view and members[by_view[view]].key not in settled_keys
        ]
        if sidecar is not None and sidecar.key not in settled_keys:
            copying.append(sidecar.entries[0].name)
        if not missing and not copying:
            self.first_seen.pop(session, None)
            self.told.pop(session, None)
            entries = [e for view in wanted for e in members[by_view[view]].entries]
            return Arrival(KIND, session, (*entries, *(sidecar.entries if sidecar else ())))
        since = self.waiting_since(session)
        if missing and self.overdue(since):
            self.fail_later(session, by_view, members, sidecar, missing, since)
            return None
        self.tell(session, wanted, list(by_view), missing, copying, since)
        return None

    def waiting_since(self, session: str) -> str:
        """When a view of the session was first seen; kept across restarts in its status."""
        if session not in self.first_seen:
            status = self.status.read(KIND, session) or {}
            since = status.get("waiting_since")
            keep = (
                status.get("state") == ARRIVING and isinstance(since, str) and since.endswith("Z")
            )
            self.first_seen[session] = str(since) if keep else utc_now()
        return self.first_seen[session]

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
        session: str,
        by_view: dict[str, Path],
        members: dict[Path, Arrival],
        sidecar: Arrival | None,
        missing: list[str],
        since: str,
    ) -> None:
        """Queue the present views to be failed by the service, naming the missing ones."""
        entries = [e for path in by_view.values() for e in members[path].entries]
        entries += list(sidecar.entries) if sidecar else []
        here = ", ".join(by_view)
        problem = (
            f"session {session} is missing the view(s) {', '.join(missing)}: only {here} "
            f"arrived (the first at {since}), and a session waits at most "
            f"{self.settings.sessions.max_wait_h:g} h ([sessions] max_wait_h). Drop the missing "
            "views together with these again, or, to go without them, drop these again with "
            f'{session}.json holding {{"views": {json.dumps(list(by_view))}}}'
        )
        self.expired.append((Arrival(KIND, session, tuple(entries)), [problem]))
        self.first_seen.pop(session, None)
        self.told.pop(session, None)

    def waiting(self) -> set[tuple[str, str]]:
        """The status keys of sessions waiting for views: their statuses are this gate's."""
        return {(KIND, session) for session in self.first_seen}

    def take_expired(self) -> list[tuple[Arrival, list[str]]]:
        expired, self.expired = self.expired, []
        return expired

    def tell(
        self,
        session: str,
        wanted: list[str],
        here: list[str],
        missing: list[str],
        copying: list[str],
        since: str,
    ) -> None:
        """Write the waiting session's status when what it waits for changed."""
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
        if self.told.get(session) == message:
            return
        self.told[session] = message
        self.log.info("session waiting", name=session, missing=missing, copying=copying)
        try:
            self.status.write(
                KIND,
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
            self.log.exception("status not written", kind=KIND, name=session)


def _paths(groups: dict[str, dict[str, Path]]) -> set[Path]:
    return {path for by_view in groups.values() for path in by_view.values()}


# ----- the job ------------------------------------------------------------------------------


def claimed_views(settings: Settings, item: ClaimedItem) -> dict[str, Path] | None:
    """The view files of a claimed session, or None when the item is not a session."""
    if item.kind != KIND:
        return None
    videos = [p for p in item.files if p.suffix.lower() in VIDEO_SUFFIXES]
    if any(path.stem == item.name for path in videos):
        return None
    views = view_names(settings)
    return session_views(videos, views).get(item.name) if views else None


def plan_job(settings: Settings, item: ClaimedItem) -> tuple[str, SessionOptions] | None:
    """The handler and options of a claimed session; None when the item is not a session.

    Raises:
        InputError: the sidecar is bad, or a view brought a sidecar of its own.
    """
    files = claimed_views(settings, item)
    if files is None:
        return None
    session = item.name
    sidecar_path = [p for p in item.files if p.name == f"{session}.json"]
    problems = [
        f"{p.name}: a view of a session takes no sidecar of its own; put the options for the "
        f"whole session in {session}.json"
        for p in item.files
        if p.suffix.lower() == ".json" and p.name != f"{session}.json"
    ]
    sidecar = read_sidecar(sidecar_path) if sidecar_path else {}
    views = view_names(settings)
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
    project = settings.folder("project")
    record = find_record(project, session, views)
    defaults: dict[str, Any] = {
        **settings.extract.model_dump(),
        "session": session,
        "files": {view: path.name for view, path in files.items()},
        "exclude_frames": excluded_frames(project, session, files, offsets),
        "dated_views": [
            v
            for v in files
            if (labelers.reports_folder(project, view_folder(session, v)) / SESSION_JSON).exists()
        ],
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
    keep = KINDS[KIND].keep_folder
    kept = {path.name: move_without_replacing(path, keep(settings, path)) for path in item.files}
    names = {path.stem: path for path in kept.values()}
    if multiview.is_multiview_project(project):
        multiview.queue_session(project, stems, by_view)
        return []
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
