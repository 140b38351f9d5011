"""What runs in a worker process: one job, one handler call, progress to a file.

Progress goes through a small file in the item's folder rather than a pipe, so it reaches
the status file whether the worker is a local process or a machine of a cluster that sees
the same share.

A job may run more than once (a Dask cluster runs a lost worker's task again), so every
attempt stages into its own ``staging-<id>/`` folder and says which in its ``JobOutcome``;
the daemon publishes the one whose result it accepts and ignores the others.
"""

from __future__ import annotations

import importlib
import os
import socket
import sys
import time
import traceback
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from threadpoolctl import threadpool_limits

from daemon.atomic import write_json_atomic
from daemon.executor import WorkerCannotImport
from handlers.outcome import HandlerResult, InputError

PROGRESS_EVERY_S = 0.5
STAGING_PREFIX = "staging-"


class HandlerCrash(Exception):
    """A handler failed in a way nobody planned for; carries the text of the original error."""

    def __init__(self, summary: str, details: str = "") -> None:
        super().__init__(summary)
        self.summary = summary
        self.details = details

    def __reduce__(self) -> tuple[type[HandlerCrash], tuple[str, str]]:
        return (HandlerCrash, (self.summary, self.details))


@dataclass(frozen=True)
class Job:
    """Everything a worker needs, as paths and plain values (no open files, no daemon state)."""

    kind: str
    name: str
    handler: str
    files: tuple[Path, ...]
    options: BaseModel
    folder: Path
    progress_file: Path


@dataclass(frozen=True)
class JobOutcome:
    """What one attempt at a job produced, and where.

    Attributes:
        result: the handler's result.
        staging: the folder this attempt staged its bundle in (inside the job's folder).
        worker: the machine and process that ran it, for logs and error messages.
    """

    result: HandlerResult
    staging: Path
    worker: str


class WorkerCannotSee(InputError):
    """The worker does not see the claimed files: it does not mount the share at the same path.

    An InputError so that the item fails at once with the message, instead of being retried
    on a worker that will not see the files the next time either.
    """

    def __reduce__(self) -> tuple[type[WorkerCannotSee], tuple[list[str]]]:
        return (WorkerCannotSee, (self.problems,))


class AttemptAbandoned(Exception):
    """The daemon let go of this item (finished or put it back) while this attempt still ran."""


def load_handler(spec: str) -> Any:
    """The function named by ``module:function``."""
    module, _, function = spec.partition(":")
    return getattr(importlib.import_module(module), function)


def progress_writer(path: Path, worker: str = "") -> Any:
    """A progress callback that writes at most every PROGRESS_EVERY_S, and always at 1.0.

    Raises AttemptAbandoned once the item's folder is gone: an attempt the daemon no longer
    waits for (a cluster ran it twice, or the item was put back) stops at its next report
    instead of working on, and never recreates the folder.
    """
    last = 0.0

    def report(fraction: float, message: str) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= PROGRESS_EVERY_S or fraction >= 1.0:
            last = now
            if not path.parent.is_dir():
                raise AttemptAbandoned(f"{path.parent} is gone")
            progress = {"progress": round(float(fraction), 4), "message": message, "worker": worker}
            write_json_atomic(path, progress, make_parents=False)

    return report


def describe_worker() -> str:
    """This host and process, plus the Dask worker's address when running on one."""
    here = f"{socket.gethostname()} pid {os.getpid()}"
    distributed = sys.modules.get("distributed")
    if distributed is not None:
        try:
            return f"{here} (Dask worker {distributed.get_worker().address})"
        except ValueError:  # imported, but this is not a Dask worker
            pass
    return here


def check_files_visible(job: Job, worker: str) -> None:
    """Fail with a message naming each claimed path that this worker cannot see.

    Raises:
        WorkerCannotSee: a claimed file (or, with no files, the item's folder) is not there.
    """
    missing = [path for path in job.files if not path.exists()]
    if not missing and not job.folder.is_dir():
        missing = [job.folder]
    if missing:
        raise WorkerCannotSee(
            [
                f"The worker {worker} cannot see {path}; every worker must see the share at "
                "the same path as the daemon"
                for path in missing
            ]
        )


def run_job(job: Job) -> JobOutcome:
    """Run the job's handler on a staging folder of this attempt's own.

    Raises:
        WorkerCannotImport: the handler's module does not import (framewatch half replaced).
        WorkerCannotSee: this worker does not see the claimed files.
        InputError: the input is bad (passed through as the handler raised it).
        OSError: the filesystem failed (no space, no permission); worth retrying.
        HandlerCrash: anything else, flattened so that it survives pickling.
    """
    try:
        handler = load_handler(job.handler)
    except Exception as exc:  # noqa: BLE001 - any failure to load is the installation's
        raise WorkerCannotImport(
            f"{job.handler} cannot be imported: {type(exc).__name__}: {exc}"
        ) from None
    worker = describe_worker()
    check_files_visible(job, worker)
    staging = job.folder / f"{STAGING_PREFIX}{uuid.uuid4().hex}"
    try:
        staging.mkdir(exist_ok=False)  # no parents: a folder the daemon released stays gone
        progress = progress_writer(job.progress_file, worker)
        # One numerical thread per worker: max_workers already spreads items over the cores,
        # and BLAS/OpenMP threads spinning on shared cores made choosing several times slower.
        with threadpool_limits(limits=1):
            result = handler(list(job.files), job.options, staging, progress)
        return JobOutcome(result, staging, worker)
    except (InputError, OSError):
        raise
    except Exception as exc:  # noqa: BLE001 - flattened so it survives pickling
        raise HandlerCrash(f"{type(exc).__name__}: {exc}", traceback.format_exc()) from None
