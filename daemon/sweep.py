"""The nightly sweep, and the retry policy for passing errors.

A cron schedule (UTC) from ``[sweep]`` asks the daemon's loop for a sweep; the loop does it on
its own thread, so one thread still owns every decision about items. A sweep:

1. rescans every inbox at once (files whose events were missed, copies with an old mtime);
2. gives items waiting after a passing error a try now, and puts items that ran out of
   attempts for a passing reason (``passing_error`` in their status) back into their inbox,
   at most ``[retry] sweep_rounds`` times; bad input stays failed;
3. prunes our own stale working files (hidden temporaries, dead daemons' empty claims
   folders), never anything a user gave us;
4. writes ``<status>/summary-YYYY-MM-DD.json``.

APScheduler runs the schedule with ``coalesce`` and ``max_instances=1`` (never two at once) and
a misfire grace time; a sweep missed while the daemon was not running at all is caught up on
the next start when it is still within that grace time.
"""

from __future__ import annotations

import os
import random
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from daemon.atomic import read_json, write_json_atomic
from daemon.claim import OWNER_FILE, glob_escape, owner_is_alive, remove_empty_tree
from daemon.cron import crontab_trigger
from handlers.bundle import SELECTED_CSV

if TYPE_CHECKING:
    from daemon.config import Retry, Settings

SUMMARY_PREFIX = "summary-"
STATE_FOLDER = "sweep"
ROUNDS_FILE = "rounds.json"
# Names our own atomic writes (daemon/atomic.py) use while writing. In labeled-data/, which
# people open too, only the names of our CSV rewrites and of publish.py's merges.
OUR_TEMPORARIES = (".*.tmp",)
OUR_BUNDLE_TEMPORARIES = (f".{SELECTED_CSV}.*.tmp", ".*.incoming")


# ----- schedule ----------------------------------------------------------------------------


def missed_run(
    trigger: CronTrigger, last_run: datetime | None, now: datetime, grace_s: float
) -> bool:
    """True when a scheduled time within the last ``grace_s`` passed after ``last_run``."""
    due = trigger.get_next_fire_time(None, now - timedelta(seconds=grace_s))
    return due is not None and due <= now and (last_run is None or last_run < due)


class SweepSchedule:
    """The cron job that asks for a sweep; it waits for the sweep so two never overlap."""

    def __init__(
        self, settings: Settings, host: str, request: Callable[[], bool], log: Any
    ) -> None:
        self.settings = settings
        self.request = request
        self.log = log
        self.state_file = settings.folder("work") / STATE_FOLDER / f"{host}.json"
        self.scheduler: BackgroundScheduler | None = None

    def start(self) -> None:
        if not self.settings.sweep.enabled:
            return
        trigger = crontab_trigger(self.settings.sweep.cron)
        now = datetime.now(UTC)
        last_run = self.last_run()
        if last_run is None:
            self.record_run(now)  # first start: nothing was missed yet
        catch_up = missed_run(trigger, last_run or now, now, self.settings.sweep.misfire_grace_s)
        self.scheduler = BackgroundScheduler(timezone=UTC)
        extra: dict[str, Any] = {"next_run_time": now} if catch_up else {}
        job = self.scheduler.add_job(
            self.request,
            trigger,
            id="nightly-sweep",
            misfire_grace_time=int(self.settings.sweep.misfire_grace_s),
            coalesce=True,
            max_instances=1,
            **extra,
        )
        self.scheduler.start()
        self.log.info(
            "sweep scheduled",
            cron=self.settings.sweep.cron,
            catch_up=catch_up,
            next_run=str(job.next_run_time),
        )

    def stop(self) -> None:
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
            self.scheduler = None

    def last_run(self) -> datetime | None:
        data = read_json(self.state_file)
        try:
            return datetime.fromisoformat(data["last_run"]) if isinstance(data, dict) else None
        except (KeyError, TypeError, ValueError):
            return None

    def record_run(self, when: datetime) -> None:
        try:
            write_json_atomic(self.state_file, {"last_run": when.isoformat()})
        except OSError as exc:
            self.log.warning("sweep time not recorded", file=str(self.state_file), error=str(exc))


class SweepRequests:
    """Sweep requests from other threads, done one at a time by the loop.

    A request made while one is pending joins it; ``wait`` returns once the loop
    has done a sweep that started after the request.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._requested = 0
        self._done = 0

    def request(self) -> int:
        with self._cond:
            self._requested += 1
            return self._requested

    def pending(self) -> bool:
        with self._cond:
            return self._requested > self._done

    def take(self) -> int:
        """The request number a sweep starting now satisfies."""
        with self._cond:
            return self._requested

    def finished(self, ticket: int) -> None:
        with self._cond:
            self._done = max(self._done, ticket)
            self._cond.notify_all()

    def wait(self, ticket: int, timeout_s: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._done >= ticket, timeout=timeout_s)

    def release_all(self) -> None:
        """On stop: let every waiting requester go (the scheduler's thread must not hang exit)."""
        with self._cond:
            self._done = self._requested = max(self._done, self._requested)
            self._cond.notify_all()


# ----- retry policy ------------------------------------------------------------------------


def backoff_delay(attempt: int, policy: Retry, draw: Callable[[], float] = random.random) -> float:
    """Seconds to wait before try ``attempt + 1``: doubling from ``first_delay_s``, capped.

    Jitter takes up to ``jitter`` of the delay off, so daemons on one share that met the same
    outage do not all come back in the same second, and the cap still holds.
    """
    exponent = min(max(attempt - 1, 0), 60)
    capped = min(policy.max_delay_s, policy.first_delay_s * 2.0**exponent)
    return capped * (1.0 - policy.jitter * draw())


# ----- retrying what failed for a passing reason ---------------------------------------------


def revive_passing_failures(
    settings: Settings, statuses: Iterable[dict[str, Any]], rounds_file: Path
) -> list[tuple[str, str]]:
    """Put the inputs of items that failed for a passing reason back into their inboxes.

    Each item gets at most ``[retry] sweep_rounds`` such rounds (counted in ``rounds_file``);
    an input whose name is taken in the inbox waits for the next sweep.

    Returns:
        (kind, name) of every item put back.
    """
    saved = read_json(rounds_file)
    rounds: dict[str, int] = saved if isinstance(saved, dict) else {}
    revived = []
    for status in statuses:
        if status.get("state") != "failed" or not status.get("passing_error"):
            continue
        kind, name = str(status.get("kind")), str(status.get("name"))
        key = f"{kind}/{name}"
        if rounds.get(key, 0) >= settings.retry.sweep_rounds:
            continue
        kept = [entry for entry in status.get("kept", []) if isinstance(entry, dict)]
        if not kept or not move_back_to_inbox(settings.folder(kind), kept):
            continue
        rounds[key] = rounds.get(key, 0) + 1
        revived.append((kind, name))
    write_json_atomic(rounds_file, rounds)
    return revived


def move_back_to_inbox(inbox: Path, kept: list[dict[str, Any]]) -> bool:
    """Move kept inputs back under their original names; False if one is missing or taken."""
    pairs = [(Path(str(entry.get("path"))), str(entry.get("name"))) for entry in kept]
    if not inbox.is_dir() or any(
        not path.exists() or (inbox / name).exists() for path, name in pairs
    ):
        return False
    try:
        return all(move_without_replacing(path, inbox / name) for path, name in pairs)
    except OSError:
        return False  # another host's sweep moved it first, or the share went away: next time


def move_without_replacing(source: Path, target: Path) -> bool:
    """Rename ``source`` to ``target`` unless ``target`` exists (a rename alone would replace it).

    A hard link cannot replace a file, so it decides; where links are not allowed (some SMB
    shares, folders) a checked rename does, which leaves only a tiny window.
    """
    try:
        os.link(source, target)
    except FileExistsError:
        return False
    except OSError:
        if target.exists():
            return False
        source.rename(target)
        return True
    source.unlink()
    return True


# ----- pruning -------------------------------------------------------------------------------


def prune_working_files(
    settings: Settings, host: str, older_than_s: float, now: float
) -> list[Path]:
    """Remove our own stale working files; never an input, a frame or a status file.

    Stale means: a hidden temporary of an interrupted atomic write or merge older than
    ``older_than_s``; a claims folder of a dead daemon of this host that holds no item.
    """
    removed: list[Path] = []
    roots = [
        (settings.folder("status"), OUR_TEMPORARIES),
        (settings.folder("work"), OUR_TEMPORARIES),
        (settings.folder("project") / "labeled-data", OUR_BUNDLE_TEMPORARIES),
    ]
    for root, patterns in roots:
        for path in stale_temporaries(root, patterns, older_than_s, now):
            try:
                path.unlink()
                removed.append(path)
            except OSError:
                continue
    claims = settings.folder("work") / "claims"
    for folder in sorted(claims.glob(f"{glob_escape(host)}.*")) if claims.is_dir() else []:
        owner = read_json(folder / OWNER_FILE)
        if isinstance(owner, dict) and owner.get("host") == host and not owner_is_alive(owner):
            remove_empty_tree(folder)
            if not folder.exists():
                removed.append(folder)
    return removed


def stale_temporaries(
    root: Path, patterns: tuple[str, ...], older_than_s: float, now: float
) -> list[Path]:
    """Files under ``root`` named like ``patterns``, untouched for ``older_than_s``.

    Claimed inputs are skipped, whatever their names: they are the user's.
    """
    found = []
    for pattern in patterns:
        for path in root.rglob(pattern) if root.is_dir() else []:
            if "input" in path.relative_to(root).parts:
                continue  # a claimed item's input is the user's, whatever its name
            try:
                if path.is_file() and now - path.stat().st_mtime > older_than_s:
                    found.append(path)
            except OSError:
                continue
    return found


def stale_claims(settings: Settings, older_than_s: float, now: float) -> list[str]:
    """Claims folders that hold items and whose owner file was not touched for ``older_than_s``.

    Every sweep touches its daemon's owner file, so a live daemon's is never that old; such a
    folder likely belongs to a daemon on another host that died, and only that host (or one
    started with its host name) can adopt its items.
    """
    claims = settings.folder("work") / "claims"
    found = []
    for owner_file in sorted(claims.glob(f"*/{OWNER_FILE}")) if claims.is_dir() else []:
        folder = owner_file.parent
        try:
            old = now - owner_file.stat().st_mtime > older_than_s
        except OSError:
            continue
        if old and any(folder.glob("*/*/input/*")):
            found.append(folder.name)
    return found


# ----- the daily summary ---------------------------------------------------------------------


def daily_summary(
    statuses: list[dict[str, Any]], since: datetime, extra: dict[str, Any]
) -> dict[str, Any]:
    """Counts by state and kind, and what ended since ``since``, for a sysadmin's morning."""
    since_text = since.strftime("%Y-%m-%dT%H:%M:%SZ")
    recent = [s for s in statuses if str(s.get("updated", "")) >= since_text]
    return {
        "written": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "since": since_text,
        "by_state": dict(Counter(str(s.get("state")) for s in statuses)),
        "by_kind": dict(Counter(str(s.get("kind")) for s in statuses)),
        "completed_since": sorted(
            f"{s.get('kind')}/{s.get('name')}" for s in recent if s.get("state") == "complete"
        ),
        "failed_since": sorted(
            f"{s.get('kind')}/{s.get('name')}" for s in recent if s.get("state") == "failed"
        ),
        "failed_for_passing_reason": sorted(
            f"{s.get('kind')}/{s.get('name')}"
            for s in statuses
            if s.get("state") == "failed" and s.get("passing_error")
        ),
        **extra,
    }


def write_daily_summary(status_folder: Path, summary: dict[str, Any], day: datetime) -> Path:
    """Write the summary beside the status folders (not in one, so it is not an item)."""
    path = status_folder / f"{SUMMARY_PREFIX}{day.strftime('%Y-%m-%d')}.json"
    write_json_atomic(path, summary)
    return path
