"""Imported once, in the fork server only: everything a worker needs, before any fork.

Each item still runs in a process of its own, but that process is forked from this one with
NumPy, OpenCV, scikit-learn and the handlers already imported, instead of a fresh interpreter
importing them again (about 2 s per item on a loaded machine, more than a small clip takes).

Never imported by the daemon itself: it sets thread counts for the libraries it loads.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from pathlib import Path

# A process that forks must have one thread: a lock held by another thread at fork time stays
# held in the child for ever. OpenBLAS starts its thread pool when NumPy is imported, so it is
# told to use one thread before; each job runs under threadpool_limits(1) anyway.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

# What a worker imports: the job runner, then every handler a kind or a session may name.
MODULES = (
    "numpy",
    "cv2",
    "sklearn.cluster",
    "daemon.pool",
    "daemon.worker",
    "handlers.video.handler",
    "handlers.video.session",
    "handlers.zips.handler",
    "handlers.inference.handler",
    "handlers.framelists.handler",
)


def preload() -> None:
    """Import MODULES; one that fails is left for each worker to fail on (before "started")."""
    for name in MODULES:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - the workers report it; the fork server must live
            print(f"framewatch fork server: {name} not preloaded:", file=sys.stderr)
            traceback.print_exc()
    tasks = Path(f"/proc/{os.getpid()}/task")
    threads = len(list(tasks.iterdir())) if tasks.is_dir() else 1
    if threads > 1:
        print(
            f"framewatch fork server: {threads} threads after imports; forking may deadlock",
            file=sys.stderr,
        )


preload()
