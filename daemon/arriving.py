"""Arriving: a status file for an arrival as soon as a scan sees it, while it is copied.

A rig user who copies a recording wants to see that it was noticed, long before it has
settled. Each scan hands what it saw to ``ArrivingReporter.observe``, which only notes it: a
writer thread then writes the status files (every first sighting, then updates, at most one
per item every ``min_gap_s`` and UPDATE_BUDGET_S of them after each scan), so the scan of a
busy inbox (hundreds of copies at once) is not slowed by hundreds of file writes.

An item leaves ``arriving`` when the loop writes its next state (``queued``, once settled):
``observe`` is told which items the loop owns, and returns only once no write of theirs is
under way. When an arrival's files vanish before settling (a cancelled copy, a file moved
away), the status that was there before is put back, or the arriving status is removed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from daemon.atomic import read_json, write_json_atomic
from daemon.inbox import Arrival, Signature
from daemon.status import ARRIVING, StatusStore

ItemKey = tuple[str, str]  # (kind, name): one status file
MIN_GAP_S = 2.0  # between two updates of one item's status
UPDATE_BUDGET_S = 0.05  # of updates after each scan; first sightings are always written
IDLE_WAKE_S = 5.0


@dataclass(frozen=True)
class Sighting:
    """One arrival as the last scan saw it (times are wall-clock seconds since the epoch)."""

    kind: str
    name: str
    files: tuple[str, ...]
    first: Path  # the entry that decides the claim: gone means taken or cancelled
    size: int
    changed_at: float
    settles_at: float
    holes: bool


def sightings(
    arrivals: Iterable[Arrival],
    watched: Mapping[tuple[str, str], tuple[Signature, float, float]],
    now_monotonic: float,
    now_wall: float,
) -> list[Sighting]:
    """What the settle tracker knows of each arrival not yet settled, with its times on the
    wall clock. A settled arrival is no longer arriving, even when something holds it back
    (a multi-view session waiting for its other views)."""
    found = []
    for arrival in arrivals:
        seen = watched.get(arrival.key)
        if seen is None:
            continue
        signature, since, needed = seen
        if now_monotonic - since >= needed:
            continue  # settled: queued by the loop, or held back for a reason of its own
        changed_at = now_wall - (now_monotonic - since)
        found.append(
            Sighting(
                kind=arrival.kind,
                name=arrival.name,
                files=tuple(path.name for path in arrival.entries),
                first=arrival.entries[0],
                size=sum(entry[1] for entry in signature),
                changed_at=changed_at,
                settles_at=changed_at + needed,
                holes=any(entry[4] for entry in signature),
            )
        )
    return found


def utc_text(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def size_text(size: int) -> str:
    """Bytes for a person: ``812 bytes``, ``3.4 MB``, ``1.20 GB``."""
    if size < 1000:
        return f"{size} bytes"
    if size < 1_000_000_000:
        value, unit = (size / 1e3, "kB") if size < 1_000_000 else (size / 1e6, "MB")
        return f"{value:.1f} {unit}"
    return f"{size / 1e9:.2f} GB"


def arriving_fields(sighting: Sighting, first_seen: float) -> tuple[str, dict[str, Any]]:
    """The message and the extra fields of an arriving status."""
    clock = datetime.fromtimestamp(sighting.settles_at, UTC).strftime("%H:%M:%S")
    if sighting.holes:
        message = (
            f"Still being copied: {size_text(sighting.size)} allocated, but part of it is not "
            "written yet. It is taken once the copy has filled it in."
        )
    else:
        message = (
            f"Being copied: {size_text(sighting.size)} so far. It is taken once it has not "
            f"changed for a while (about {clock} UTC if the copy has ended)."
        )
    return message, {
        "bytes": sighting.size,
        "files": list(sighting.files),
        "arriving_since": utc_text(first_seen),
        "last_change": utc_text(sighting.changed_at),
        "settles_at": utc_text(sighting.settles_at),
    }


@dataclass
class ArrivingReporter:
    """Writes and withdraws the ``arriving`` status files of one daemon, from its own thread."""

    store: StatusStore
    min_gap_s: float = MIN_GAP_S
    log: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _wake: threading.Event = field(default_factory=threading.Event)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _current: dict[ItemKey, Sighting] = field(default_factory=dict)
    _first_seen: dict[ItemKey, float] = field(default_factory=dict)
    _written: dict[ItemKey, tuple[Sighting, float]] = field(default_factory=dict)
    _previous: dict[ItemKey, dict[str, Any] | None] = field(default_factory=dict)
    _vanished: set[ItemKey] = field(default_factory=set)
    _checked_leftovers: bool = False
    _leftovers_of: set[ItemKey] | None = None  # after the first scan: what it saw
    _thread: threading.Thread | None = None

    def start(self) -> ArrivingReporter:
        self._thread = threading.Thread(target=self._run, name="arriving", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def observe(self, seen: Iterable[Sighting], owned: set[ItemKey]) -> None:
        """Note one scan: ``seen`` are the arrivals not yet settled, ``owned`` the items whose
        status the loop writes now (settled, claimed, running); no write of theirs follows."""
        now = time.time()
        latest = {(s.kind, s.name): s for s in seen if (s.kind, s.name) not in owned}
        with self._lock:
            for key in list(self._current):
                if key in latest:
                    continue
                if key in owned:
                    self._drop(key)
                else:
                    self._vanished.add(key)
            for key, sighting in latest.items():
                self._current[key] = sighting
                self._first_seen.setdefault(key, now)
                self._vanished.discard(key)
            if not self._checked_leftovers:
                self._checked_leftovers = True
                self._leftovers_of = set(latest) | owned
        self._wake.set()

    def flush(self, timeout_s: float = 10.0) -> None:
        """Wait until every noted sighting is written (for ``once`` and the benchmark)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self._pending():
            self._wake.set()
            time.sleep(0.01)

    # ----- the writer thread ------------------------------------------------------------

    def _pending(self) -> bool:
        with self._lock:
            unwritten = any(key not in self._written for key in self._current)
            return unwritten or bool(self._vanished)

    def _run(self) -> None:
        while not self._stopping.is_set():
            # Woken by a scan, so writes fall between scans rather than compete with them.
            self._wake.wait(IDLE_WAKE_S)
            self._wake.clear()
            try:
                self._write_due()
                self._withdraw_vanished()
                self._remove_leftovers()
            except Exception:  # a status write must never end the thread
                if self.log is not None:
                    self.log.exception("arriving status not written")
                self._stopping.wait(1.0)

    def _write_due(self) -> None:
        """Write every first sighting, then updates, oldest first, for UPDATE_BUDGET_S."""
        with self._lock:
            fresh = [key for key in self._current if key not in self._written]
            updates = sorted(
                (key for key in self._current if key in self._written),
                key=lambda key: self._written[key][1],
            )
        began = time.monotonic()
        for key in fresh + updates:
            if self._stopping.is_set():
                return
            if key in self._written and time.monotonic() - began > UPDATE_BUDGET_S:
                return
            with self._lock:  # held through the write: `observe` then knows it is over
                sighting = self._current.get(key)
                if sighting is None or not self._due(key, sighting):
                    continue
                if not sighting.first.exists():
                    # Claimed meanwhile (by another daemon on the share, whose status this
                    # would hide) or cancelled: the next scan says which.
                    continue
                if key not in self._previous:
                    before = self.store.read(*key)
                    keep = before is not None and before.get("state") != ARRIVING
                    self._previous[key] = before if keep else None
                message, fields = arriving_fields(sighting, self._first_seen[key])
                # No fsync: an update is followed by another, or by the settled item's status.
                self.store.write(
                    *key, ARRIVING, message, fresh=True, durable=False, progress=0.0, **fields
                )
                self._written[key] = (sighting, time.monotonic())

    def _due(self, key: ItemKey, sighting: Sighting) -> bool:
        last = self._written.get(key)
        if last is None:
            return True
        return last[0] != sighting and time.monotonic() - last[1] >= self.min_gap_s

    def _withdraw_vanished(self) -> None:
        with self._lock:
            keys = sorted(self._vanished)
        for key in keys:
            with self._lock:
                if key not in self._vanished:
                    continue
                self._vanished.discard(key)
                previous = self._previous.get(key)
                self._drop(key)
                self._withdraw(key, previous)

    def _withdraw(self, key: ItemKey, previous: dict[str, Any] | None) -> None:
        """Take back an arriving status whose files are gone: the old status, or none."""
        path = self.store.path(*key)
        current = read_json(path)
        if not isinstance(current, dict) or current.get("state") != ARRIVING:
            return  # another daemon took it and said so
        if self.log is not None:
            self.log.info("arrival gone before it settled", kind=key[0], name=key[1])
        if previous is not None:
            write_json_atomic(path, previous)
        else:
            path.unlink(missing_ok=True)

    def _remove_leftovers(self) -> None:
        """Once, after the first scan: withdraw arriving statuses that an earlier run left for
        files that are no longer in the inbox (it was killed before it could)."""
        keep, self._leftovers_of = self._leftovers_of, None
        if keep is None:
            return
        for path in sorted(self.store.folder.glob("*/*.json")):
            key = (path.parent.name, path.stem)
            if key in keep:
                continue
            data = read_json(path)
            if isinstance(data, dict) and data.get("state") == ARRIVING:
                with self._lock:
                    if key not in self._current:
                        self._withdraw(key, None)

    def _drop(self, key: ItemKey) -> None:
        self._current.pop(key, None)
        self._first_seen.pop(key, None)
        self._written.pop(key, None)
        self._previous.pop(key, None)
        self._vanished.discard(key)
