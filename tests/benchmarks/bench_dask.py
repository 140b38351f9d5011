"""Throughput of a batch of videos: the local process pool against 1 and 2 Dask workers.

    python -m tests.benchmarks.bench_dask [--videos 6] [--frames 3000] [--size 320x240]
                                          [--repeats 1] [--out DIR]

The same batch of barcode videos (tests/media.py) is dropped into a fresh root and taken by
``framewatch once`` (settle_s = 0, max_workers = 2), four ways in one run:

- local: ``executor = "local"``, a process per item, two at a time;
- local 1t: the same with OMP/MKL/OPENBLAS_NUM_THREADS=1, as Dask's nanny sets for its
  workers, to tell the executor's effect apart from that of numerical threads;
- dask 1 / dask 2: ``executor = "dask"`` with a scheduler and 1 or 2 single-threaded workers
  on 127.0.0.1 (tests/dask_cluster.py). A cluster lives long, so its workers are warmed up
  with one small video before the timed batch (imports of OpenCV and scikit-learn happen
  once per worker, not once per item as in the local pool).

Printed per way: wall time of the whole ``once`` process, the processing span (first item
started to last item complete, from the daemon's log), videos per minute over that span, and
whether every bundle is byte-identical to the local run's. ``--repeats`` alternates the order.

Nothing is written into the repository: everything goes to a temporary folder (or --out).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path

from tests.dask_cluster import LoopbackCluster
from tests.harness import Framewatch
from tests.media import write_barcode_video

WAYS = ("local", "local 1t", "dask 1", "dask 2")
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def parse_time(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def processing_span(stdout: str) -> float:
    """Seconds from the first item started to the last item complete, from ``once``'s log."""
    started, complete = [], []
    for line in stdout.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("event") == "started":
            started.append(parse_time(event["timestamp"]))
        elif event.get("event") == "complete":
            complete.append(parse_time(event["timestamp"]))
    return max(complete) - min(started)


def bundles(fw: Framewatch) -> dict[str, bytes]:
    root = fw.project / "labeled-data"
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def run_once(
    root: Path, videos: list[Path], env: dict[str, str]
) -> tuple[float, float, dict[str, bytes]]:
    """Drop ``videos`` into a fresh root and run ``once``: (wall s, processing span s, bundles)."""
    fw = Framewatch(root, settle_s=0.0, env=env)
    for video in videos:
        shutil.copyfile(video, fw.inbox("videos") / video.name)
    start = time.perf_counter()
    result = fw.once(timeout=3600)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(
            f"once failed in {root}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return wall, processing_span(result.stdout), bundles(fw)


def dask_env(address: str) -> dict[str, str]:
    return {
        "FRAMEWATCH_WORKERS__EXECUTOR": "dask",
        "FRAMEWATCH_WORKERS__SCHEDULER_ADDRESS": address,
    }


def measure(
    way: str, work: Path, videos: list[Path], warmup: Path
) -> tuple[float, float, dict[str, bytes]]:
    """One timed batch the way ``way`` says, on a cluster of its own for the dask ways."""
    root = work / f"{way.replace(' ', '')}-{time.monotonic_ns()}"
    if way.startswith("local"):
        return run_once(root, videos, ONE_THREAD if way == "local 1t" else {})
    workers = int(way.split()[1])
    with LoopbackCluster(root / "cluster") as cluster:
        cluster.start(workers=workers)
        env = dask_env(cluster.address)
        for number in range(workers):  # one small item per worker so that every one is warm
            run_once(root / f"warmup{number}", [warmup], env)
        return run_once(root / "fw", videos, env)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--videos", type=int, default=6)
    parser.add_argument("--frames", type=int, default=3000)
    parser.add_argument("--size", default="320x240")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    work = args.out or Path(tempfile.mkdtemp(prefix="bench-dask-"))
    work.mkdir(parents=True, exist_ok=True)
    media = work / "media"
    media.mkdir(exist_ok=True)
    videos = [
        write_barcode_video(media / f"mouse{n}", args.frames, width=width, height=height)
        for n in range(args.videos)
    ]
    warmup = write_barcode_video(media / "warmup", 200, width=width, height=height)
    print(
        f"{args.videos} videos x {args.frames} frames at {width}x{height} (mp4v), "
        f"max_workers = 2, in {work}"
    )
    walls: dict[str, list[float]] = {way: [] for way in WAYS}
    spans: dict[str, list[float]] = {way: [] for way in WAYS}
    identical: dict[str, bool] = {way: True for way in WAYS}
    reference: dict[str, bytes] | None = None
    results_by_way: dict[str, dict[str, bytes]] = {}
    for repeat in range(args.repeats):
        order = WAYS if repeat % 2 == 0 else tuple(reversed(WAYS))
        for way in order:
            wall, span, produced = measure(way, work, videos, warmup)
            walls[way].append(wall)
            spans[way].append(span)
            if way == "local" and reference is None:
                reference = produced
            results_by_way[way] = produced
            print(
                f"  repeat {repeat + 1} {way:8s} wall {wall:6.1f} s  span {span:6.1f} s", flush=True
            )
        for way in WAYS:
            identical[way] = identical[way] and results_by_way[way] == reference
    print()
    print(
        "| executor | workers | wall time of `once` (s) | processing span (s) | videos/min "
        "| bundles = local |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for way in WAYS:
        wall, span = statistics.median(walls[way]), statistics.median(spans[way])
        executor, workers = {
            "local": ("local", "2 processes"),
            "local 1t": ("local, 1 BLAS thread", "2 processes"),
            "dask 1": ("dask", "1"),
            "dask 2": ("dask", "2"),
        }[way]
        same = "yes" if identical[way] else "NO"
        print(
            f"| {executor} | {workers} | {wall:.1f} | {span:.1f} "
            f"| {60 * args.videos / span:.1f} | {same} |"
        )
    if args.out is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
