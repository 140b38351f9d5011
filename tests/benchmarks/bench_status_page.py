"""The status page with thousands of items: time to write it, and its size.

    python -m tests.benchmarks.bench_status_page [--items 5000]

Writes ``--items`` status files (as the daemon writes them: most complete, some failed with
long messages, a few arriving, queued and processing) into a temporary status folder, then
times ``StatusPage.maybe_write`` as the loop calls it: the first write (every file read),
a check when nothing changed, and a rewrite after one status changed. Prints the times and
the sizes of the front page and of all pages together. Baseline in the same run: reading
every status file as ``StatusStore.all`` does (what ``framewatch status`` costs).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from daemon.status import StatusStore
from daemon.status_page import INDEX, PAGES, DaemonFacts, StatusPage

STATES = ["complete"] * 80 + ["failed"] * 15 + ["arriving", "queued", "processing"] * 2
LONG_PROBLEM = (
    "img00000144.png does not decode as a PNG image (damaged or cut short); export it again."
)


def fill(store: StatusStore, count: int) -> None:
    for n in range(count):
        state = STATES[n % len(STATES)]
        fields = {"progress": 0.4} if state == "processing" else {}
        if state == "failed":
            fields["kept"] = [{"path": f"/srv/fw/failed/zips/rec{n:05d}.zip", "name": "x"}]
        message = " ".join([LONG_PROBLEM] * 3) if state == "failed" else f"item {n}"
        store.write("videos" if n % 2 else "zips", f"rec{n:05d}", state, message, **fields)


def facts() -> DaemonFacts:
    return DaemonFacts("bench", "2026-12-01T00:00:00Z", "2026-12-01T01:00:00Z", "0 queued")


def timed(action: object) -> float:
    began = time.perf_counter()
    action()  # type: ignore[operator]
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "status"
        store = StatusStore(folder)
        fill(store, args.items)
        page = StatusPage(folder, Path(tmp) / "project", min_gap_s=0.0)
        baseline = timed(store.all)
        first = timed(lambda: page.maybe_write(facts))
        idle = timed(lambda: page.maybe_write(facts))
        store.write("videos", "rec00001", "processing", "again", progress=0.7)
        one = timed(lambda: page.maybe_write(facts))
        front = (folder / INDEX).stat().st_size
        pages = list((folder / PAGES).glob("*.html"))
        total = front + sum(path.stat().st_size for path in pages)
        print(f"{args.items} items")
        print("| step | ms |")
        print("| --- | ---: |")
        print(f"| baseline: read every status file (StatusStore.all) | {baseline * 1000:.0f} |")
        print(f"| first write (every file read, every page written) | {first * 1000:.0f} |")
        print(f"| check, nothing changed | {idle * 1000:.1f} |")
        print(f"| rewrite after one status changed | {one * 1000:.0f} |")
        print(f"front page {front / 1000:.0f} kB; {len(pages)} pages; all {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
