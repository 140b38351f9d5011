"""The daemon's loop: scan, settle, claim, run in a worker, publish, record.

One thread owns every decision about items (this loop); watchdog's thread and the worker
threads only wake it up. Everything that can go wrong with one item is caught at that item,
so a bad file never stops the loop.
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from daemon import arriving, collisions, labelers, late, links, rejoin, sessions, status_page
from daemon import status as st
from daemon.atomic import read_json, write_json_atomic
from daemon.claim import (
    OWNER_FILE,
    PROGRESS_FILE,
    RESULT_FILE,
    ClaimedItem,
    ClaimFolder,
    input_changed,
    note_claimed_signature,
    release,
)
from daemon.config import Settings
from daemon.executor import ClusterLost
from daemon.inbox import Arrival
from daemon.kinds import KINDS, read_sidecar
from daemon.lifecycle import ItemLifecycle, Waiting, clear_staging
from daemon.logs import get_logger
from daemon.notify import Heartbeat, Notifier
from daemon.pool import make_executor
from daemon.settle import SettleTracker
from daemon.sweep import (
    SweepRequests,
    SweepSchedule,
    daily_summary,
    prune_working_files,
    revive_passing_failures,
    stale_claims,
    write_daily_summary,
)
from daemon.watch import WatchSupervisor
from daemon.worker import Job, JobOutcome, run_job
from handlers.outcome import HandlerResult, InputError

MIN_SCAN_GAP_S = 0.5
TICK_S = 0.5


@dataclass
class Running:
    item: ClaimedItem
    future: Future[Any]
    last_progress: tuple[float, str] = (-1.0, "")


@dataclass
class Daemon(ItemLifecycle):
    """One framewatch daemon on one root."""

    settings: Settings
    log: Any = field(default_factory=get_logger)

    def __post_init__(self) -> None:
        self.status = st.StatusStore(self.settings.folder("status"))
        host = self.settings.workers.host or socket.gethostname()
        self.claims = ClaimFolder(self.settings.folder("work"), host=host)
        self.notifier = Notifier(log=self.log)
        self.heartbeat = Heartbeat()
        self.sweeps = SweepRequests()
        self.schedule = SweepSchedule(self.settings, host, self.sweep_and_wait, self.log)
        self.retry_draw = random.random
        self.stop_reason = ""
        self.tracker = SettleTracker(self.settings.watch.settle_s)
        self.sessions = sessions.SessionGate(self.settings, self.status, self.log)
        self.arriving = arriving.ArrivingReporter(self.status, log=self.log)
        self.page = status_page.StatusPage(self.status.folder, self.settings.folder("project"))
        self.started_at = st.utc_now()
        state = self.settings.folder("work") / rejoin.STATE_FOLDER / f"{host}.json"
        self.earlier = rejoin.EarlierCopies(state_file=state)  # kept across restarts
        self.told_rest: set[tuple[str, str]] = set()
        self.joins = rejoin.Joins()  # claimed rests compared with their first part, off the loop
        self.told_odd: dict[tuple[str, str], list[str]] = {}
        self.executor = make_executor(self.settings.workers, lambda: self.wake.set())
        self.executor_problem: str | None = None
        self.told_about_problem: set[tuple[str, str]] = set()
        self.told_unfilled: set[tuple[str, str]] = set()
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.settled: dict[tuple[str, str], Arrival] = {}
        self.waiting: list[Waiting] = []
        self.running: dict[tuple[str, str], Running] = {}
        self.failed_count = 0
        self.completed_count = 0
        self.retry_passing_errors = True
        self.gave_up = False
        self._last_scan = -1e9
        self.hangups = 0
        self._hangups_logged = 0
        self._event_seen = True

    # ----- start and stop -------------------------------------------------------------

    def inboxes(self) -> dict[str, Path]:
        return {kind: self.settings.folder(kind) for kind in KINDS}

    def prepare(self) -> None:
        """Create the folders, claim a private claims folder, adopt a dead daemon's items."""
        for folder in [*self.inboxes().values(), self.settings.folder("failed")]:
            folder.mkdir(parents=True, exist_ok=True)
        project = self.settings.folder("project")
        for sub in ("labeled-data", "videos"):
            (project / sub).mkdir(parents=True, exist_ok=True)
        self.status.folder.mkdir(parents=True, exist_ok=True)
        self.arriving.start()
        self.claims.open()
        for item in self.claims.adopt_orphans():
            self.log.info("adopted", kind=item.kind, name=item.name, folder=str(item.folder))
            self.earlier.adopted(item.folder)
            self.waiting.append(Waiting(item))

    def request_stop(self, reason: str = "") -> None:
        self.stop_reason = self.stop_reason or reason
        self.stopping.set()
        self.wake.set()

    def note_hangup(self) -> None:
        """SIGHUP (from a signal handler): nothing to do but say so from the loop."""
        self.hangups += 1
        self.wake.set()

    def notify_change(self) -> None:
        self._event_seen = True
        self.wake.set()

    def run_forever(self) -> None:
        """Watch and process until ``request_stop``; then stop claiming and put work back."""
        self.prepare()
        watch = WatchSupervisor(
            self.inboxes().values(),
            self.settings.watch.mode,
            self.settings.watch.poll_interval_s,
            self.notify_change,
            self.log,
        )
        mode = watch.start()
        self.log.info(
            "watching",
            mode=mode,
            host=self.claims.host,
            inboxes={kind: str(path) for kind, path in self.inboxes().items()},
            project=str(self.settings.folder("project")),
            status=str(self.status.folder),
        )
        self.notifier.ready(self.describe_state())
        self.notifier.start_watchdog(self.heartbeat, self.log_stall)
        try:
            self.start_schedule()
            while not self.stopping.is_set():
                with self.guarded_turn():
                    self.step(claim=True)
                    if self.hangups != self._hangups_logged:
                        self._hangups_logged = self.hangups
                        self.log.info("SIGHUP ignored; the daemon goes on (stop it with SIGTERM)")
                    watch.check(time.monotonic())
                    if self.sweeps.pending():
                        self.sweep()
                    self.heartbeat.beat()
                    self.notifier.status(self.describe_state())
                    self.write_page()
                self.wake.wait(self.sleep_time())
                self.wake.clear()
        finally:
            if self.stop_reason:
                self.log.info("stop requested", signal=self.stop_reason)
            self.notifier.stopping()
            self.schedule.stop()
            self.sweeps.release_all()
            watch.stop()
            self.shutdown()
            self.notifier.close()

    def run_once(self) -> int:
        """Take what is settled now, process it to the end; the exit status for ``once``."""
        self.retry_passing_errors = False  # nobody waits for a retry in minutes: fail and say why
        self.prepare()
        self.scan(time.monotonic())
        if self.settings.watch.settle_s > 0 and self.tracker_has_items():
            self.stopping.wait(self.settings.watch.settle_s)
        self.scan(time.monotonic())  # what is settled now is all this pass takes
        blocked_since: float | None = None
        while not self.stopping.is_set() and (
            self.settled or self.waiting or self.running or self.joins
        ):
            with self.guarded_turn():
                self.dispatch()
                self.poll_running()
            blocked_since = (
                None if self.executor_problem is None else blocked_since or time.monotonic()
            )
            if (
                blocked_since
                and time.monotonic() - blocked_since > self.settings.workers.cluster_wait_s
            ):
                self.give_up_waiting_for_workers()
                break
            self.wake.wait(TICK_S)
            self.wake.clear()
        self.shutdown()
        return 1 if self.failed_count or self.gave_up else 0

    def give_up_waiting_for_workers(self) -> None:
        """End a ``once`` pass that no worker would take: a nightly cron job must not hang.

        Nothing failed, so nothing goes to failed/: unclaimed files stay in their inbox and
        claimed ones are put back by the shutdown, all for the next pass.
        """
        self.gave_up = True
        waited = self.settings.workers.cluster_wait_s
        self.log.error(
            "no workers; giving up this pass", problem=self.executor_problem, waited_s=waited
        )
        message = (
            f"Not processed in this pass: {str(self.executor_problem).rstrip('.')} "
            f"(waited {waited:.0f} s). "
            "The file stays in the inbox for the next pass."
        )
        for arrival in self.settled.values():
            self.record(arrival.kind, arrival.name, st.QUEUED, message)

    @contextlib.contextmanager
    def guarded_turn(self) -> Iterator[None]:
        """Log what escapes one turn of the loop and go on: a bug met by one odd file (a name,
        a folder that cannot be read) must not stop the daemon for every other file.

        The pause keeps a fault that repeats every turn from filling the journal.
        """
        try:
            yield
        except Exception:
            self.log.exception("loop turn failed; continuing")
            self.stopping.wait(1.0)

    def tracker_has_items(self) -> bool:
        return self.tracker.next_deadline(time.monotonic()) is not None

    def shutdown(self, grace_s: float | None = None) -> None:
        """Give running items a grace period, then stop them and put their files back."""
        grace = self.settings.workers.stop_grace_s if grace_s is None else grace_s
        deadline = time.monotonic() + grace
        while self.running and time.monotonic() < deadline:
            self.poll_running()
            self.heartbeat.beat()
            time.sleep(0.2)
        self.executor.terminate_all()
        for running in list(self.running.values()):
            self.put_back(running.item)
        self.running.clear()
        self.waiting += [Waiting(pending.item) for pending in self.joins.done(wait=True)]
        for waiting in self.waiting:
            self.put_back(waiting.item)
        self.waiting.clear()
        self.claims.close()
        self.arriving.close()
        self.write_page(force=True)
        self.log.info("stopped", completed=self.completed_count, failed=self.failed_count)

    # ----- one turn of the loop ------------------------------------------------------

    def step(self, claim: bool) -> None:
        now = time.monotonic()
        due = self._last_scan + self.settings.watch.poll_interval_s
        deadline = self.tracker.next_deadline(now)
        if deadline is not None:
            due = min(due, deadline)
        if now >= due or (self._event_seen and now - self._last_scan >= MIN_SCAN_GAP_S):
            self.scan(now)
        if claim:
            self.dispatch()
        self.poll_running()

    def sleep_time(self) -> float:
        now = time.monotonic()
        due = self._last_scan + self.settings.watch.poll_interval_s
        deadline = self.tracker.next_deadline(now)
        if deadline is not None:
            due = min(due, deadline)
        if self._event_seen:
            due = min(due, self._last_scan + MIN_SCAN_GAP_S)
        pause = max(due - now, 0.05)
        if self.notifier.interval_s is not None:
            pause = min(pause, self.notifier.interval_s / 2)  # keep the heartbeat fresh
        return min(pause, TICK_S) if self.running else pause

    def scan(self, now: float) -> None:
        """Look at every inbox; note what is settled and not yet taken."""
        self._last_scan = now
        self._event_seen = False
        found: list[Arrival] = []
        for kind_name, inbox in self.inboxes().items():
            try:
                if recreate_inbox(inbox, self.status.folder):
                    self.log.warning("inbox recreated", kind=kind_name, inbox=str(inbox))
                found += KINDS[kind_name].find_arrivals(kind_name, inbox)
            except OSError as exc:
                self.log.warning(
                    "inbox unreadable", kind=kind_name, inbox=str(inbox), error=str(exc)
                )
        taken = [r.item for r in self.running.values()] + [w.item for w in self.waiting]
        in_use = {(i.kind, i.name): i.origins[0].name for i in taken if i.origins}
        in_use = {**self.earlier.names(), **in_use}  # and files taken in the last hour
        found = collisions.tell_apart(found, in_use)
        covered = self.earlier.covered(found, now)
        settled = self.sessions.observe(self.tracker, found, now, self.busy_names(), covered)
        for arrival, problems in self.sessions.take_expired():
            self.fail_unclaimed(arrival, problems)
        self.tell_unfilled({a.key: a for a in found})
        self.tell_rest(found, now, set(covered))
        self.tell_odd()
        self.set_late_sidecars_aside(found)
        self.put_back_written_on()
        fresh = {a.key: a for a in settled if a.key not in self.running}
        self.note_arriving(found, fresh, now)
        for key, arrival in fresh.items():
            if key not in self.settled:
                self.log.info("settled", kind=arrival.kind, name=arrival.name)
                self.record(
                    arrival.kind, arrival.name, st.QUEUED, "Waiting for a free worker.", fresh=True
                )
        self.settled = fresh

    def note_arriving(
        self, found: list[Arrival], fresh: dict[tuple[str, str], Arrival], now: float
    ) -> None:
        """Hand what is still being copied to the arriving statuses; settled and taken items
        are the loop's to record."""
        owned = {(a.kind, a.name) for a in fresh.values()}
        owned |= {(r.item.kind, r.item.name) for r in self.running.values()}
        owned |= {(w.item.kind, w.item.name) for w in self.waiting}
        owned |= self.sessions.waiting()  # a session's waiting status is not a leftover
        owned |= self.told_rest  # the rest of an earlier copy: its status says so (rejoin.py)
        seen = arriving.sightings(found, self.tracker.watched(), now, time.time())
        self.arriving.observe(seen, owned)

    def tell_unfilled(self, found: dict[tuple[str, str], Arrival]) -> None:
        """Log once why a sized-first copy that stopped is not taken (its arriving status
        says so too)."""
        unfilled = set(self.tracker.unfilled())
        for key in sorted(unfilled - self.told_unfilled):
            arrival = found.get(key)
            if arrival is not None:
                self.log.info("not filled in yet", kind=arrival.kind, name=arrival.name)
        self.told_unfilled = unfilled

    def tell_rest(self, found: list[Arrival], now: float, rests: set[tuple[str, str]]) -> None:
        """Say once, in its status, that a file is taken for the rest of an earlier copy."""
        for arrival in found:
            earlier = self.earlier.get(arrival, now)
            if arrival.key in rests - self.told_rest and earlier is not None:
                message = rejoin.waiting_message(arrival.entries[0].name, earlier)
                self.record(arrival.kind, arrival.name, st.QUEUED, message, fresh=True)
        self.told_rest = rests

    def tell_odd(self) -> None:
        """Give links, FIFOs and other odd entries in an inbox a status, once (see links.py)."""
        odd = {
            (kind, name): problems
            for kind, inbox in self.inboxes().items()
            for name, problems in links.inbox_odd(inbox, kind).items()
        }
        for (kind, name), problems in odd.items():
            if self.told_odd.get((kind, name)) != problems:
                self.log.warning("refused", kind=kind, name=name, problems=problems)
                message = links.refusal(problems) + "."
                self.record(kind, name, st.FAILED, message, problems=[message])
        self.told_odd = odd

    def set_late_sidecars_aside(self, found: list[Arrival]) -> None:
        """Move a sidecar that came after its video was taken out of the inbox (see late.py)."""
        for kind, inbox in self.inboxes().items():
            for sidecar in late.lone_sidecars(inbox, found, self.settings.watch.settle_s):
                taken = late.taken_before(self.earlier, kind, sidecar)
                if taken is None:
                    continue
                archive = self.settings.folder("archive") / kind
                try:
                    kept, message = late.set_aside(
                        sidecar, taken.path.name, taken.taken_at, archive
                    )
                except OSError:
                    self.log.exception("late sidecar not moved", sidecar=str(sidecar))
                    continue
                self.log.warning("late sidecar set aside", kind=kind, kept=str(kept))
                self.record(kind, sidecar.name, st.FAILED, message, problems=[message])

    def put_back_written_on(self) -> None:
        """Put a failed file that a copier writes on into back in its inbox (see rejoin.py)."""
        for kind, name, earlier in self.earlier.written_on_in(self.settings.folder("failed")):
            was = earlier.path
            self.earlier.forget(kind, name)
            if rejoin.put_back(was, self.settings.folder(kind) / name):
                self.log.warning("written on in failed/; put back", kind=kind, name=name)
                message = rejoin.put_back_message(name, was)
                self.record(kind, earlier.item or Path(name).stem, st.QUEUED, message, fresh=True)

    def dispatch(self) -> None:
        """Start queued items while workers are free; one item per bundle folder at a time."""
        limit = self.settings.workers.max_workers
        now = time.monotonic()
        for pending in self.joins.done():
            self.rejoin(pending)
        if not self.executor_ready():
            return
        for waiting in list(self.waiting):
            if len(self.running) >= limit:
                return
            if self.joins.reading(waiting.item.input):
                continue  # the first part of a copy whose rest is being compared with it
            if waiting.not_before <= now and not self.bundle_busy(waiting.item.name):
                self.waiting.remove(waiting)
                self.start(waiting.item)
        for key, arrival in list(self.settled.items()):
            if len(self.running) >= limit or self.stopping.is_set():
                return
            if self.bundle_busy(arrival.name):
                continue
            del self.settled[key]
            self.tracker.forget(arrival)
            earlier = self.earlier.get(arrival, now)
            item = self.claim(arrival)
            if item is not None and earlier is not None:
                later = item.input / item.origins[0].name
                self.joins.begin(item, earlier, later, self.wake.set)  # read in a thread
            elif item is not None:
                self.start(item)

    def bundle_busy(self, name: str) -> bool:
        return any(running.item.name == name for running in self.running.values())

    def claim(self, arrival: Arrival) -> ClaimedItem | None:
        log = self.log.bind(kind=arrival.kind, name=arrival.name)
        try:
            item = self.claims.claim(arrival)
        except Exception as exc:
            log.exception("claim failed")
            self.record(
                arrival.kind, arrival.name, st.QUEUED, f"Could not take the file yet: {exc}"
            )
            return None
        if item is None:
            log.info("taken by another daemon")
        else:
            log.info("claimed", folder=str(item.folder))
            if len(arrival.entries) == 1 and item.files:
                taken = item.input / arrival.entries[0].name
                self.earlier.taken(item.kind, taken, time.monotonic(), item.name)
        return item

    def rejoin(self, pending: rejoin.Pending) -> None:
        """Once the thread compared a claimed file with an earlier copy (and filled its start),
        make it the whole copy again; the earlier part, and an item or bundle made from it, are
        set aside (see rejoin.py). The item then waits for a worker."""
        item, earlier = pending.item, pending.earlier
        self.waiting.append(Waiting(item))
        log = self.log.bind(kind=item.kind, name=item.name)
        try:
            later = item.input / item.origins[0].name
            if not pending.future.result():
                return
            holder = next((w for w in self.waiting if w.item.input == earlier.path.parent), None)
            aside = self.settings.folder("archive") / "superseded" / item.kind
            joined = rejoin.join(earlier, later, aside, filled=True)
            if holder is not None:
                self.waiting.remove(holder)
                release(holder.item)
            rejoin.note_joined(item.folder, joined)
            note_claimed_signature(item)  # the start was filled in by us, not a copier
        except Exception:
            log.exception("could not join to the earlier copy")
            return
        log.warning("rest of an earlier copy", kept=joined.kept, bundles=joined.bundle_kept)
        self.record(item.kind, item.name, st.QUEUED, joined.message(), progress=0.0)

    def start(self, item: ClaimedItem) -> None:
        """Publish a result that survived a restart, or hand the item to a worker."""
        log = self.log.bind(kind=item.kind, name=item.name)
        try:
            if input_changed(item):
                self.resettle(item)
                return
            links.refuse_odd(item.files)  # never read through a link (a folder drop's member)
            links.refuse_unreadable(item.files)  # a permission problem, retried: not "no video"
            saved = read_json(item.folder / RESULT_FILE)
            if isinstance(saved, dict):
                log.info("publishing saved result")
                staging = item.folder / str(saved.pop("staging", item.staging.name))
                self.finish(item, HandlerResult(**saved), staging)
                return
            kind = KINDS[item.kind]
            bundle = self.settings.folder("project") / "labeled-data" / item.name
            handler, options = sessions.plan_job(self.settings, item) or (
                kind.handler,
                kind.build_options(self.settings, read_sidecar(item.files), bundle),
            )
            clear_staging(item)
            job = Job(
                kind=item.kind,
                name=item.name,
                handler=handler,
                files=tuple(item.files),
                options=options,
                folder=item.folder,
                progress_file=item.folder / PROGRESS_FILE,
            )
            future = self.executor.submit(run_job, job)
        except ClusterLost as exc:
            self.requeue(item, exc)
            return
        except Exception as exc:  # noqa: BLE001 - one item's failure must never stop the loop
            self.handle_failure(item, exc)
            return
        future.add_done_callback(lambda _: self.wake.set())
        self.running[item.key] = Running(item, future)
        self.record(item.kind, item.name, st.PROCESSING, "Started.", progress=0.0)
        log.info("started")

    def poll_running(self) -> None:
        for key, running in list(self.running.items()):
            item = running.item
            if running.future.done():
                del self.running[key]
                try:
                    outcome: JobOutcome = running.future.result()
                    self.log.info(
                        "result",
                        kind=item.kind,
                        name=item.name,
                        worker=outcome.worker,
                        staging=outcome.staging.name,
                    )
                    saved = {**outcome.result.__dict__, "staging": outcome.staging.name}
                    write_json_atomic(item.folder / RESULT_FILE, saved)
                    self.finish(item, outcome.result, outcome.staging)
                except ClusterLost as exc:
                    self.requeue(item, exc)
                except Exception as exc:  # noqa: BLE001 - one item's failure must never stop the loop
                    self.handle_failure(item, exc)
            else:
                self.report_progress(running)

    def report_progress(self, running: Running) -> None:
        data = read_json(running.item.folder / PROGRESS_FILE)
        if not isinstance(data, dict):
            return
        progress = (float(data.get("progress", 0.0)), str(data.get("message", "")))
        if progress != running.last_progress:
            running.last_progress = progress
            item = running.item
            self.record(item.kind, item.name, st.PROCESSING, progress[1], progress=progress[0])

    def busy_names(self) -> set[str]:
        """Names of the items claimed now (running or waiting for a worker)."""
        return {r.item.name for r in self.running.values()} | {w.item.name for w in self.waiting}

    def fail_unclaimed(self, arrival: Arrival, problems: list[str]) -> None:
        """Claim an arrival only to fail it: its files go to failed/, its status says why."""
        item = self.claim(arrival)
        if item is not None:
            self.handle_failure(item, InputError(problems))

    def write_page(self, force: bool = False) -> None:
        """Refresh ``<status>/index.html`` (daemon/status_page.py); a failure is only logged."""
        try:
            self.page.maybe_write(self.page_facts, force=force)
        except Exception:
            self.log.exception("status page not written")

    def page_facts(self) -> status_page.DaemonFacts:
        return status_page.DaemonFacts(
            host=self.claims.host,
            started=self.started_at,
            last_turn=st.utc_now(),
            queue=self.describe_state(),
            running=not self.stopping.is_set(),
        )

    def describe_state(self) -> str:
        """One line for ``systemctl status``: the queue and what is in progress."""
        queued = len(self.settled) + len(self.waiting)
        busy = ", ".join(
            f"{running.item.name} {max(running.last_progress[0], 0.0):.0%}"
            for running in self.running.values()
        )
        line = f"{queued} queued, {len(self.running)} in progress" + (f": {busy}" if busy else "")
        return line + (f"; {self.executor_problem}" if self.executor_problem else "")

    def start_schedule(self) -> None:
        """Schedule the nightly sweep; without it the daemon still works, so only log a failure."""
        try:
            self.schedule.start()
        except Exception:
            self.log.exception("sweep not scheduled")

    def log_stall(self, age_s: float) -> None:
        self.log.error("loop stalled; watchdog pings withheld", heartbeat_age_s=round(age_s, 1))

    def request_sweep(self) -> int:
        """Ask the loop for a sweep (from any thread, or a signal handler)."""
        ticket = self.sweeps.request()
        self.wake.set()
        return ticket

    def sweep_and_wait(self) -> bool:
        """The scheduler's job: a sweep, done by the loop; returns once it is done."""
        ticket = self.request_sweep()
        return self.sweeps.wait(ticket, timeout_s=self.settings.sweep.misfire_grace_s)

    def sweep(self) -> None:
        """Rescan, retry what failed for a passing reason, prune, write the daily summary."""
        ticket = self.sweeps.take()
        started = datetime.now(UTC)
        self.log.info("sweep started")
        try:
            self.scan(time.monotonic())
            with contextlib.suppress(OSError):  # "alive", for other hosts' sweeps
                os.utime(self.claims.folder / OWNER_FILE)
            for item in self.claims.adopt_orphans():  # a daemon of this host died meanwhile
                self.log.info("adopted", kind=item.kind, name=item.name, folder=str(item.folder))
                self.earlier.adopted(item.folder)
                self.waiting.append(Waiting(item))
            for waiting in self.waiting:
                waiting.not_before = 0.0  # the sweep is a retry for everything waiting
            rounds_file = self.schedule.state_file.parent / "rounds.json"
            revived = revive_passing_failures(self.settings, self.status.all(), rounds_file)
            for kind, name in revived:
                message = "Retrying after a passing error (nightly sweep)."
                self.record(kind, name, st.QUEUED, message, passing_error=False)
            for warning in labelers.retry_pending(self.settings.folder("project"), self.settings):
                self.log.warning("labeler", message=warning)
            prune_s = self.settings.sweep.prune_after_h * 3600
            pruned = prune_working_files(self.settings, self.claims.host, prune_s, time.time())
            extra = {
                "host": self.claims.host,
                "queued": len(self.settled) + len(self.waiting),
                "in_progress": sorted(running.item.name for running in self.running.values()),
                "retried": [f"{kind}/{name}" for kind, name in revived],
                "pruned": [str(path) for path in pruned],
                "stale_claims": stale_claims(self.settings, prune_s, time.time()),
            }
            summary = daily_summary(self.status.all(), started - timedelta(days=1), extra)
            path = write_daily_summary(self.status.folder, summary, started)
            self.schedule.record_run(started)
            self.log.info(
                "sweep done", summary=str(path), retried=extra["retried"], pruned=len(pruned)
            )
        except Exception:
            self.log.exception("sweep failed")
        finally:
            self._event_seen = True  # rescan again soon: revived inputs are in the inboxes
            self.sweeps.finished(ticket)

    # ----- the executor away: a Dask cluster without scheduler or workers (issue 8) -----

    def executor_ready(self) -> bool:
        """True when the executor takes work; on a change, log it and tell the waiting items."""
        problem = self.executor.problem()
        if problem != self.executor_problem:
            self.executor_problem = problem
            self.told_about_problem = set()
            if problem is None:
                self.log.info("workers available")
            else:
                self.log.warning("workers unavailable", problem=problem)
        if problem is not None:
            self.tell_waiting_items(problem)
        return problem is None

    def tell_waiting_items(self, problem: str) -> None:
        """Say once in each waiting or running item's status why it does not move on."""
        message = f"{problem} This item goes on as soon as a worker can take it."
        told = self.told_about_problem
        for key, arrival in self.settled.items():
            if key not in told:
                told.add(key)
                self.record(arrival.kind, arrival.name, st.QUEUED, message)
        for waiting in self.waiting:
            if waiting.item.key not in told:
                told.add(waiting.item.key)
                self.safe_record(waiting.item, st.QUEUED, message)
        for key, running in self.running.items():
            if key not in told and not running.future.done():  # done: poll_running says why
                told.add(key)
                self.safe_record(running.item, st.PROCESSING, message)


def recreate_inbox(inbox: Path, status: Path) -> bool:
    """Make an inbox someone deleted again; True if it was. Only while the share is there
    (the status folder and the inbox's grandparent exist): never a local folder where a share
    is not mounted."""
    if inbox.is_dir() or not status.is_dir() or not inbox.parent.parent.is_dir():
        return False
    inbox.mkdir(parents=True, exist_ok=True)
    return True
