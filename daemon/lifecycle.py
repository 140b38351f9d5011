"""What happens to one claimed item once its work ends: complete, retried, waiting for the
rest of its copy, put back to settle again, requeued or failed (its files kept in failed/).

The decisions (which way an item goes and what its status says) are pure functions of the
item's exception, its attempt count and the settings, testable without a daemon. The
effects (publishing, moving files, writing statuses) are ``ItemLifecycle``'s methods, which
the daemon's loop (service.py) calls when a job ends or cannot start.
"""

from __future__ import annotations

import contextlib
import errno
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daemon import labelers, rejoin, sessions, status_page
from daemon import status as st
from daemon.atomic import read_json, write_json_atomic
from daemon.claim import (
    PROGRESS_FILE,
    RESULT_FILE,
    ClaimedItem,
    ClaimFolder,
    input_changed,
    release,
)
from daemon.config import Retry as RetryPolicy
from daemon.config import Settings
from daemon.executor import ClusterLost, WorkerDied
from daemon.kinds import KINDS
from daemon.publish import move_without_replacing, publish_apart, publish_bundle
from daemon.sweep import backoff_delay
from daemon.worker import STAGING_PREFIX, HandlerCrash
from handlers.outcome import HandlerResult, IncompleteInput, InputError

# Filesystem errors that pass (a share that went away, a full disk): wait and try again.
PASSING_ERRNOS = frozenset(
    {
        errno.ENOSPC,
        errno.EDQUOT,
        errno.EACCES,
        errno.EPERM,
        errno.EROFS,
        errno.EIO,
        errno.ESTALE,
        errno.ENOENT,
        errno.ETIMEDOUT,
        errno.EHOSTDOWN,
        errno.ENOTCONN,
    }
)
RETRY_FILE = "retry.json"  # in the item's folder: the attempt count survives a restart


@dataclass
class Waiting:
    """A claimed item waiting for a worker (adopted after a restart, or retried)."""

    item: ClaimedItem
    not_before: float = 0.0
    attempts: int = 0


# ----- the decisions: pure, given the exception, the attempt count and the settings ----------


@dataclass(frozen=True)
class Retry:
    """Queue the item again: look at it after ``delay_s``, its status saying ``message``."""

    delay_s: float
    attempts: int
    message: str


def backoff(
    attempts: int, policy: RetryPolicy, draw: Callable[[], float], why: str, again: str
) -> Retry | None:
    """After the ``attempts``-th try: a retry with doubling delay whose status says ``why``,
    ``again`` and when; None once every attempt is used up."""
    if attempts >= policy.max_attempts:
        return None
    delay = backoff_delay(attempts, policy, draw)
    when = f"{delay:.0f} s (attempt {attempts + 1} of {policy.max_attempts})."
    return Retry(delay, attempts, f"{why} {again} {when}")


def retry_passing(
    exc: BaseException, attempts: int, policy: RetryPolicy, draw: Callable[[], float]
) -> Retry | None:
    """A passing error (full disk, lost share) is retried with backoff; None once every
    attempt is used up (the item fails, and the nightly sweep takes it again)."""
    why = f"{describe_passing(exc)} Nothing is lost;"
    return backoff(attempts, policy, draw, why, "trying again in")


def retry_death(exc: WorkerDied, deaths: int, policy: RetryPolicy) -> Retry | None:
    """A first death of the worker is retried (the OOM killer, an operator); a second blames
    the file: None."""
    if deaths >= 2:
        return None
    delay = policy.first_delay_s
    message = f"Processing stopped abruptly ({exc}). Trying again in {delay:.0f} s."
    return Retry(delay, deaths, message)


def retry_short(
    exc: IncompleteInput, attempts: int, policy: RetryPolicy, draw: Callable[[], float]
) -> Retry | None:
    """A recording shorter than its container promises waits for the rest of its copy, with
    backoff; None once it stayed short for every attempt (it fails, saying both numbers)."""
    why = (
        f"{exc.shortfall}: the copy looks incomplete (still being copied?). Nothing is "
        "published yet;"
    )
    return backoff(attempts, policy, draw, why, "looking again in")


def short_left_message(exc: IncompleteInput) -> str:
    """A short recording in a single pass (``once``): left in the inbox, not failed."""
    return f"{exc.shortfall}: the copy looks incomplete. It stays in the inbox for the next pass."


def resettle_message(put_back: bool, delay_s: float) -> str:
    """An input that changed after its claim: back in the inbox, or waiting for its name."""
    if put_back:
        return (
            "The file changed after it was taken: it was still being copied. It is back "
            "in the inbox and is taken again once it has been still for a while."
        )
    return (
        "The file changed after it was taken, and a file of the same name is in the inbox "
        f"again. Looking again in {delay_s:.0f} s."
    )


def requeue_message(exc: ClusterLost) -> str:
    return f"{exc} It will run again as soon as a worker can take it."


def stopped_message(put_back: bool) -> str:
    """An item the daemon stopped before it finished: back in the inbox, or left claimed."""
    if put_back:
        return "The daemon stopped before this finished; it will be redone."
    return "The daemon stopped before this finished; it resumes on the next start."


def failure_problems(exc: BaseException, attempts: int, sweep_enabled: bool) -> list[str]:
    """Why an item failed, for its status: a passing error says how often it was tried and
    whether the nightly sweep tries again."""
    if not is_passing(exc):
        return describe_failure(exc)
    tries = f" Tried {attempts} times." if attempts else ""
    again = " The nightly sweep will try again." if sweep_enabled else ""
    return [f"{describe_passing(exc)}{tries}{again}"]


def failed_message(problems: list[str], kept: list[Path]) -> str:
    """A failed item's status: why, and where its files were kept."""
    where = ", ".join(str(path) for path in kept)
    return " ".join(problems) + f" The file was kept as {where}."


def unmoved_message(
    problems: list[str], passing: bool, move_error: BaseException, delay_s: float
) -> str:
    """A failed item whose files could not be moved to failed/ for a passing reason (a
    read-only share): it stays claimed and waits; say why, and when it is tried again."""
    again = f" Trying again in {delay_s:.0f} s."
    if not passing:  # say why it is not in failed/ yet, and that it will be
        why = describe_passing(move_error)
        again = f" It is kept until it can be moved to failed/: {why}{again}"
    return " ".join(problems[:1]) + again


class ItemLifecycle:
    """How an item ends, as methods of the daemon (service.Daemon); what they use of it:"""

    settings: Settings
    log: Any
    claims: ClaimFolder
    earlier: rejoin.EarlierCopies
    status: st.StatusStore
    waiting: list[Waiting]
    stopping: threading.Event
    retry_draw: Callable[[], float]
    retry_passing_errors: bool
    gave_up: bool
    completed_count: int
    failed_count: int
    _event_seen: bool

    def record(self, kind: str, name: str, state: str, message: str, **fields: Any) -> None:
        try:
            self.status.write(kind, name, state, message, **fields)
        except Exception:
            self.log.exception("status not written", kind=kind, name=name, state=state)

    def safe_record(self, item: ClaimedItem, state: str, message: str, **fields: Any) -> None:
        self.record(item.kind, item.name, state, message, **fields)

    def put_back(self, item: ClaimedItem) -> None:
        log = self.log.bind(kind=item.kind, name=item.name)
        try:
            put_back = self.claims.put_back(item)
            message = stopped_message(put_back)
            if put_back:
                log.info("put back")
            else:
                log.info("left claimed", folder=str(item.folder))
            self.status.write(item.kind, item.name, st.QUEUED, message, progress=0.0)
        except Exception:
            log.exception("could not put back", folder=str(item.folder))

    def finish(self, item: ClaimedItem, result: HandlerResult, staging: Path) -> None:
        """Publish the staged bundle, move the inputs to their place, say it is done.

        ``staging`` is the folder of the attempt whose result was accepted; other attempts'
        folders (a cluster may run a job twice) are never published.
        """
        log = self.log.bind(kind=item.kind, name=item.name)
        if sessions.claimed_views(self.settings, item) is not None:
            self.finish_session(item, result, staging)
            return
        try:
            if input_changed(item):  # written to after the claim: this result is of a part
                self.resettle(item)
                return
            project = self.settings.folder("project")
            target = project / "labeled-data" / item.name
            reports = labelers.reports_folder(project, item.name)
            if reports != target:
                publish_apart(staging, target, reports)
            elif staging.exists():
                publish_bundle(staging, target)
            kind = KINDS[item.kind]
            kept = [k for p in item.files for k in keep_inputs(self.settings, kind.keep_folder, p)]
            main = rejoin.follow(kept, item.origins[0].name)
            if main is not None:
                self.earlier.moved(item.kind, item.origins[0].name, main, (target, reports))
            published = labelers.PublishedBundle(
                item.name, result.selected, result.files, reports, kept
            )
            announced = labelers.announce_bundle(project, published, self.settings)
            warnings = [*rejoin.joined_note(item.folder), *result.warnings, *announced]
            where = {
                "pictures": status_page.bundle_pictures(project, reports, result.files),
                "reports_folder": str(reports),
                "inputs": [str(path) for path in kept],
            }
            release(item)
        except Exception as exc:  # noqa: BLE001 - one item's failure must never stop the loop
            self.handle_failure(item, exc)
            return
        self.record_complete(item, result, warnings, where)
        log.info("complete", frames_selected=len(result.selected), warnings=warnings)

    def record_complete(
        self,
        item: ClaimedItem,
        result: HandlerResult,
        warnings: list[str],
        fields: dict[str, Any],
    ) -> None:
        """The status of a published item: done, with its report and where its files are."""
        self.completed_count += 1
        self.record(
            item.kind,
            item.name,
            st.COMPLETE,
            st.DONE_MESSAGE,
            progress=1.0,
            frames_selected=len(result.selected),
            warnings=warnings,
            report=result.report,
            **fields,
        )

    def session_pictures(self, files: list[str]) -> list[str]:
        """Every view's contact sheet and timeline (``files`` are ``<view folder>/<name>``),
        for the status and the page."""
        project = self.settings.folder("project")
        by_folder: dict[str, list[str]] = {}
        for name in files:
            folder, _, rest = name.partition("/")
            by_folder.setdefault(folder, []).append(rest)
        return [
            picture
            for folder, names in by_folder.items()
            for picture in status_page.bundle_pictures(
                project, labelers.reports_folder(project, folder), names
            )
        ]

    def finish_session(self, item: ClaimedItem, result: HandlerResult, staging: Path) -> None:
        """``finish`` for a multi-view session: every view's folder (daemon/sessions.py)."""
        try:
            if input_changed(item):
                self.resettle(item)
                return
            published = sessions.publish_session(self.settings, item, result, staging)
            release(item)
        except Exception as exc:  # noqa: BLE001 - one item's failure must never stop the loop
            self.handle_failure(item, exc)
            return
        fields = sessions.status_fields(item.name, result)
        fields["pictures"] = self.session_pictures(result.files)
        self.record_complete(item, result, [*result.warnings, *published], fields)
        self.log.info("complete", kind=item.kind, name=item.name, views=fields["views"])

    def retrying(self) -> bool:
        """Passing trouble is waited out (not in ``once``, nor while stopping)."""
        return self.retry_passing_errors and not self.stopping.is_set()

    def queue_again(self, item: ClaimedItem, retry: Retry, **fields: Any) -> None:
        """Keep the item claimed, waiting ``retry.delay_s`` for its next try."""
        self.waiting.append(Waiting(item, time.monotonic() + retry.delay_s, retry.attempts))
        self.safe_record(item, st.QUEUED, retry.message, **fields)

    def handle_failure(self, item: ClaimedItem, exc: BaseException) -> None:
        """Retry what may pass, with backoff; fail the item, keeping its files, otherwise.

        An item that runs out of attempts for a passing reason is failed with
        ``passing_error`` in its status, so the nightly sweep gives it another round.
        """
        log = self.log.bind(kind=item.kind, name=item.name)
        if isinstance(exc, IncompleteInput) and self.wait_for_rest(item, exc):
            return
        if isinstance(exc, WorkerDied) and self.retry_after_death(item, exc):
            return
        passing = is_passing(exc)
        attempts = 0
        if passing and self.retrying():
            if not (item.folder / RESULT_FILE).exists():
                clear_staging(item)  # a half-written attempt: free the space it holds now
            attempts = count_attempt(item, exc)
            retry = retry_passing(exc, attempts, self.settings.retry, self.retry_draw)
            if retry is not None:
                delay = round(retry.delay_s, 1)
                log.warning("will retry", error=str(exc), attempt=attempts, delay_s=delay)
                self.queue_again(item, retry, attempts=attempts)
                return
        problems = failure_problems(exc, attempts, self.settings.sweep.enabled)
        self.failed_count += 1
        log.error("failed", problems=problems, error=f"{type(exc).__name__}: {exc}")
        try:
            failed = self.settings.folder("failed") / item.kind
            kept = [(move_without_replacing(path, failed), path.name) for path in item.files]
            main = rejoin.follow([path for path, _ in kept], item.origins[0].name)
            if main is not None:
                self.earlier.moved(item.kind, item.origins[0].name, main)
            release(item)
            message = failed_message(problems, [path for path, _ in kept])
        except Exception as move_error:
            log.exception("could not move to failed", folder=str(item.folder))
            passing_now = passing or is_passing(move_error)  # a read-only share, for one
            if passing_now and self.retrying():
                # The share is still away: keep the item claimed and try again later.
                delay = self.settings.retry.max_delay_s
                message = unmoved_message(problems, passing, move_error, delay)
                self.queue_again(item, Retry(delay, attempts, message))
                return
            kept = []
            message = " ".join(problems) + f" The file is still in {item.input}."
        self.safe_record(
            item,
            st.FAILED,
            message,
            problems=problems,
            passing_error=passing,
            kept=[{"path": str(path), "name": name} for path, name in kept],
        )

    def resettle(self, item: ClaimedItem) -> None:
        """Put an input that changed after its claim back in its inbox, to settle again.

        A copier that held the file open through a stall longer than ``settle_s`` went on
        writing into the claimed file; what was worked on was a part, never to be published.
        """
        log = self.log.bind(kind=item.kind, name=item.name)
        clear_staging(item)
        (item.folder / RESULT_FILE).unlink(missing_ok=True)
        delay = self.settings.retry.first_delay_s
        if self.claims.put_back(item):
            log.warning("changed after claim; put back to settle again")
            message = resettle_message(True, delay)
            self.record(item.kind, item.name, st.QUEUED, message, progress=0.0)
            self._event_seen = True
            return
        log.warning("changed after claim; inbox name taken, waiting", delay_s=delay)
        self.queue_again(item, Retry(delay, 0, resettle_message(False, delay)), progress=0.0)

    def retry_after_death(self, item: ClaimedItem, exc: WorkerDied) -> bool:
        """Run an item again once after its worker died: a kill from outside (the OOM killer,
        an operator) is a passing fault; only a second death blames the file."""
        if not self.retrying():
            return False
        deaths = count_attempt(item, exc)
        retry = retry_death(exc, deaths, self.settings.retry)
        if retry is None:
            return False
        self.log.warning("worker died; will retry", kind=item.kind, name=item.name, error=str(exc))
        self.queue_again(item, retry, attempts=deaths, progress=0.0)
        return True

    def wait_for_rest(self, item: ClaimedItem, exc: IncompleteInput) -> bool:
        """Hold back a recording that decodes to fewer frames than its container promises.

        If the file changed since the claim, it goes back to settle; if not, it waits and is
        looked at again (a copy stalled part way). False once it stayed short for every
        attempt: then it fails, saying both numbers.
        """
        if input_changed(item):
            self.resettle(item)
            return True
        if not self.retrying():
            self.gave_up = True  # `once`: leave it for the next pass, not failed
            self.put_back(item)
            self.safe_record(item, st.QUEUED, short_left_message(exc), progress=0.0)
            return True
        attempts = count_attempt(item, exc)
        retry = retry_short(exc, attempts, self.settings.retry, self.retry_draw)
        if retry is None:
            return False
        self.log.warning(
            "incomplete; waiting for the rest",
            kind=item.kind,
            name=item.name,
            decoded=exc.decoded,
            promised=exc.promised,
            attempt=attempts,
            delay_s=round(retry.delay_s, 1),
        )
        self.queue_again(item, retry, attempts=attempts, progress=0.0)
        return True

    def requeue(self, item: ClaimedItem, exc: ClusterLost) -> None:
        """Queue an item the cluster lost again; not a failed attempt, so no retry is used up."""
        self.log.warning("requeued", kind=item.kind, name=item.name, reason=str(exc))
        self.waiting.append(Waiting(item))
        self.safe_record(item, st.QUEUED, requeue_message(exc), progress=0.0)


def keep_inputs(
    settings: Settings, keep_folder: Callable[[Settings, Path], Path], path: Path
) -> list[Path]:
    """Move a done input to where its kind keeps it; where it and its moved members went.

    A folder drop goes whole, but a member that belongs elsewhere goes there first (a video
    joins ``project/videos/``, where labeling tools and later drops look for it).
    """
    home = keep_folder(settings, path)
    kept = []
    if path.is_dir():
        for member in sorted(path.iterdir()):
            elsewhere = keep_folder(settings, member)
            if elsewhere != home:
                kept.append(move_without_replacing(member, elsewhere))
    return [*kept, move_without_replacing(path, home)]


def clear_staging(item: ClaimedItem) -> None:
    """Remove what previous, interrupted attempts left in staging (our own output, not input).

    Errors are ignored: an attempt a cluster still runs may be writing there, and it stops
    by itself (its result is never accepted).
    """
    for staging in [item.staging, *item.folder.glob(f"{STAGING_PREFIX}*")]:
        if staging.is_dir():
            shutil.rmtree(staging, ignore_errors=True)
    (item.folder / PROGRESS_FILE).unlink(missing_ok=True)


def count_attempt(item: ClaimedItem, exc: BaseException) -> int:
    """Add one failed attempt to the item's count (kept in its folder); the new count."""
    saved = read_json(item.folder / RETRY_FILE)
    attempts = (saved.get("attempts", 0) if isinstance(saved, dict) else 0) + 1
    with contextlib.suppress(OSError):  # unsaved, the count restarts after a restart; no harm
        write_json_atomic(item.folder / RETRY_FILE, {"attempts": attempts, "last_error": str(exc)})
    return int(attempts)


def is_passing(exc: BaseException) -> bool:
    """True for filesystem trouble that may go away (full disk, lost share, permissions)."""
    return isinstance(exc, OSError) and exc.errno in PASSING_ERRNOS


def describe_passing(exc: BaseException) -> str:
    assert isinstance(exc, OSError)
    if exc.filename2:  # a rename: the folder moved into is the usual culprit
        where = f" (moving {Path(str(exc.filename)).name} to {exc.filename2})"
    else:
        where = f" ({exc.filename})" if exc.filename else ""
    reasons = {
        errno.ENOSPC: "The disk is full",
        errno.EDQUOT: "The disk quota is used up",
        errno.EACCES: "Permission denied",
        errno.EPERM: "Permission denied",
        errno.EROFS: "The folder is read-only",
    }
    reason = reasons.get(exc.errno or 0, f"The share could not be reached ({exc.strerror})")
    return f"{reason}{where}."


def describe_failure(exc: BaseException) -> list[str]:
    """The reasons an item failed, each as a sentence a rig user can act on."""
    if isinstance(exc, InputError):
        return [problem if problem.endswith(".") else problem + "." for problem in exc.problems]
    if isinstance(exc, WorkerDied):
        return [
            f"Processing stopped abruptly: {exc}. The file may be damaged; check that it plays, "
            "then copy it again."
        ]
    if isinstance(exc, HandlerCrash):
        return [f"framewatch hit an unexpected error ({exc.summary}); please report it."]
    return [f"framewatch hit an unexpected error ({type(exc).__name__}: {exc}); please report it."]
