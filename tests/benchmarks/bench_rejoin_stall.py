"""The loop's longest stall while the rest of a copy is compared with a multi-GB first part.

    python -m tests.benchmarks.bench_rejoin_stall [--gib 2] [--tail-mib 64]

Writes a first part of ``--gib`` GiB (real bytes) and two rests of it: one as a copier that
reopens the path leaves it (a hole where the first part was, then ``--tail-mib`` MiB written:
``dd seek=N conv=notrunc``), one as ``rsync --partial`` resumed leaves it (the whole file
again). A stand-in for the daemon's loop turns every 10 ms and notes its longest turn, while

- before: main's code runs in the turn (``continues`` then ``fill_start``, as the loop did);
- after: the turn hands the work to ``rejoin.Joins`` and only collects it when done.

Both run in the same process on the same files (page cache warm for both); prints the
longest turn, and how long the whole comparison took.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from daemon import rejoin

CHUNK = 1 << 20
BLOCK = 4096


def continues_before(earlier: Path, later: Path) -> bool:
    """main's ``continues`` (before this change), verbatim."""
    size = earlier.stat().st_size
    if later.stat().st_size <= size:
        return False
    with earlier.open("rb") as old, later.open("rb") as new:
        for offset in range(0, size, CHUNK):
            a = old.read(min(CHUNK, size - offset))
            b = new.read(len(a))
            if a != b and any(
                b[i : i + BLOCK] != a[i : i + BLOCK] and any(b[i : i + BLOCK])
                for i in range(0, len(a), BLOCK)
            ):
                return False
    return True


def fill_before(earlier: Path, later: Path) -> None:
    """main's ``fill_start`` (before this change), verbatim but for the count."""
    size = earlier.stat().st_size
    with earlier.open("rb") as old, later.open("r+b") as new:
        for offset in range(0, size, CHUNK):
            a = old.read(min(CHUNK, size - offset))
            new.seek(offset)
            b = new.read(len(a))
            if a == b:
                continue
            for i in range(0, len(a), BLOCK):
                if b[i : i + BLOCK] != a[i : i + BLOCK]:
                    new.seek(offset + i)
                    new.write(a[i : i + BLOCK])
        new.flush()
        os.fsync(new.fileno())


def write_part(path: Path, gib: float) -> int:
    block = os.urandom(CHUNK)
    total = int(gib * (1 << 30))
    with path.open("wb") as out:
        for offset in range(0, total, CHUNK):
            out.write(offset.to_bytes(8, "little") + block[8 : min(CHUNK, total - offset)])
    return total


def write_rest(earlier: Path, later: Path, tail: int, whole: bool) -> None:
    """The rest of ``earlier``: its bytes again (``whole``) or a hole there, then ``tail``."""
    size = earlier.stat().st_size
    with later.open("wb") as out:
        if whole:
            with earlier.open("rb") as old:
                while chunk := old.read(CHUNK):
                    out.write(chunk)
        out.seek(size)
        out.write(os.urandom(tail))


def loop(work_in_turn: Callable[[], None], collect: Callable[[], bool]) -> tuple[float, float]:
    """Turn every 10 ms; the first turn runs ``work_in_turn``; stop once ``collect`` says the
    work is done. The longest turn and the elapsed time, in seconds."""
    longest, started, first = 0.0, time.monotonic(), True
    while True:
        turn = time.monotonic()
        if first:
            work_in_turn()
            first = False
        done = collect()
        longest = max(longest, time.monotonic() - turn)
        if done:
            return longest, time.monotonic() - started
        time.sleep(0.01)


def run_before(earlier: Path, later: Path) -> tuple[float, float]:
    """main: the comparison and the filling in run in the loop's turn."""

    def turn() -> None:
        assert continues_before(earlier, later)
        fill_before(earlier, later)

    return loop(turn, lambda: True)


def run_after(earlier: Path, later: Path) -> tuple[float, float]:
    """This branch: the turn hands them to ``rejoin.Joins`` and collects the result."""
    joins = rejoin.Joins()
    finished: list[rejoin.Pending] = []
    rest = rejoin.Earlier(earlier, earlier.stat().st_size, "", 0.0)

    def collect() -> bool:
        finished.extend(joins.done())
        return bool(finished)

    result = loop(lambda: joins.begin(None, rest, later, lambda: None), collect)
    assert finished[0].future.result() is True
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gib", type=float, default=2.0)
    parser.add_argument("--tail-mib", type=int, default=64)
    parser.add_argument("--folder", type=Path, default=None, help="where to write (a disk)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.folder) as tmp:
        root = Path(tmp)
        earlier = root / "part.avi"
        write_part(earlier, args.gib)
        print(f"first part: {earlier.stat().st_size / (1 << 30):.2f} GiB")
        print("| rest of the copy | code | loop's longest turn (s) | comparison took (s) |")
        print("|---|---|---|---|")
        for case, whole in (("reopened by path (hole)", False), ("rsync resumed (whole)", True)):
            later = root / "rest.avi"
            write_rest(earlier, later, args.tail_mib << 20, whole)
            longest, took = run_before(earlier, later)
            print(f"| {case} | before (main) | {longest:.3f} | {took:.2f} |")
            write_rest(earlier, later, args.tail_mib << 20, whole)
            longest, took = run_after(earlier, later)
            print(f"| {case} | after (thread) | {longest:.3f} | {took:.2f} |")
            later.unlink()


if __name__ == "__main__":
    main()
