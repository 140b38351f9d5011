"""What runs in a worker process: one job, one handler call, progress to a file.

Progress goes through a small file in the item's folder rather than a pipe, so it reaches
the status file whether the worker is a local process or a machine of a cluster that sees
the same share.
"""

from __future__ import annotations

import importlib
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from daemon.atomic import write_json_atomic
from handlers.outcome import HandlerResult, InputError

PROGRESS_EVERY_S = 0.5


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
    staging: Path
    progress_file: Path


def load_handler(spec: str) -> Any:
    """The function named by ``module:function``."""
    module, _, function = spec.partition(":")
    return getattr(importlib.import_module(module), function)


def progress_writer(path: Path) -> Any:
    """A progress callback that writes at most every PROGRESS_EVERY_S, and always at 1.0."""
    last = 0.0

    def report(fraction: float, message: str) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= PROGRESS_EVERY_S or fraction >= 1.0:
            last = now
            write_json_atomic(path, {"progress": round(float(fraction), 4), "message": message})

    return report


def run_job(job: Job) -> HandlerResult:
    """Run the job's handler on a fresh staging folder.

    Raises:
        InputError: the input is bad (passed through as the handler raised it).
        OSError: the filesystem failed (no space, no permission); worth retrying.
        HandlerCrash: anything else, flattened so that it survives pickling.
    """
    try:
        job.staging.mkdir(parents=True, exist_ok=False)
        handler = load_handler(job.handler)
        return handler(list(job.files), job.options, job.staging, progress_writer(job.progress_file))  # type: ignore[no-any-return]
    except (InputError, OSError):
        raise
    except Exception as exc:
        raise HandlerCrash(f"{type(exc).__name__}: {exc}", traceback.format_exc()) from None
