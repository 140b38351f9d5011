"""Scan time of a busy inbox with and without the ``arriving`` statuses, in the same run.

    python -m tests.benchmarks.bench_arriving [--others 2000] [--arrivals 300] [--rounds 10]

One daemon (not started: its ``scan`` is called directly, as the loop calls it) on a
temporary root. The videos inbox holds ``--others`` files that are not arrivals (notes,
exports) and ``--arrivals`` videos being copied: before every scan each one grows by 4 kB.
Rounds alternate between the daemon as it is (arriving statuses on) and the same daemon with
``note_arriving`` replaced by a no-op (off). Prints the mean and worst scan time of each, and
how long after the first scan every arrival had its status file.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from daemon.config import Settings
from daemon.logs import configure_logging
from daemon.service import Daemon


def grow(files: list[Path]) -> None:
    chunk = b"\1" * 4096
    for path in files:
        with path.open("ab") as handle:
            handle.write(chunk)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--others", type=int, default=2000)
    parser.add_argument("--arrivals", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    configure_logging()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        settings = Settings.model_validate({"root": root, "watch": {"settle_s": 1e6}})
        daemon = Daemon(settings)
        daemon.prepare()
        inbox = settings.folder("videos")
        for n in range(args.others):
            (inbox / f"notes{n:05d}.txt").write_bytes(b"x" * 100)
        files = [inbox / f"rig{n:04d}.mp4" for n in range(args.arrivals)]
        grow(files)
        status = settings.folder("status") / "videos"
        started = time.monotonic()
        daemon.scan(time.monotonic())
        daemon.arriving.flush(timeout_s=120)
        all_written = time.monotonic() - started
        written = len(list(status.glob("*.json")))
        real_note = daemon.note_arriving
        times: dict[str, list[float]] = {"on": [], "off": []}
        for _ in range(args.rounds):
            for mode in ("on", "off"):
                daemon.note_arriving = real_note if mode == "on" else (lambda *a: None)  # type: ignore[method-assign]
                grow(files)
                began = time.perf_counter()
                daemon.scan(time.monotonic())
                times[mode].append(time.perf_counter() - began)
                time.sleep(0.5)  # the writer thread's updates fall between scans, as in the loop
        daemon.note_arriving = real_note  # type: ignore[method-assign]
        daemon.arriving.close()
        print(f"{args.others} other files, {args.arrivals} arrivals growing, {args.rounds} rounds")
        print(f"first scan to every arriving status written: {all_written:.2f} s ({written} files)")
        print("| arriving statuses | scan mean ms | scan worst ms |")
        print("| --- | ---: | ---: |")
        for mode in ("off", "on"):
            ms = [t * 1000 for t in times[mode]]
            print(f"| {mode} | {statistics.mean(ms):.1f} | {max(ms):.1f} |")


if __name__ == "__main__":
    main()
