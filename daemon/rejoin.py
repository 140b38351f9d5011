"""The rest of a copy: a file that reappears under the name of one just taken.

A copier that reopens its target by path after a pause (``dd seek=N conv=notrunc``, a copy
tool's resume) or ``rsync --partial`` resumed finds the first part gone (claimed, published
or failed) and makes a new file under the same name: sparse up to where the first part ended,
or the whole file again. Taken as a new arrival, that gives two broken halves. Instead the new
file is recognised as the rest of the earlier one (longer, and each of its first bytes either
the earlier file's or still unwritten); its unwritten start is filled from the earlier part,
the earlier part (and a bundle made from it) are set aside, never deleted, and the whole
recording is processed again.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from daemon.atomic import read_json, write_json_atomic
from daemon.inbox import Arrival
from daemon.labelers import lightning_pose
from daemon.publish import move_without_replacing

# How long after a file was taken (or published, or failed) a file of the same name is looked
# at as the rest of it: a copier's pause, or a transfer resumed by hand, not a new session.
REJOIN_WINDOW_S = 3600.0
REJOINED_FILE = "rejoined.json"  # in the item's folder: what was joined, for its status
STATE_FOLDER = "rejoin"  # in the work folder: <host>.json, what was taken, across restarts
MAX_REMEMBERED = 2000  # a burst of clips must not make the state file grow without bound
CHUNK = 1 << 20
BLOCK = 4096
ZERO = bytes(BLOCK)


@dataclass
class Earlier:
    """The first part of a copy: where its bytes are now, and what was made from it."""

    path: Path
    size: int
    taken_at: str  # UTC, for the status
    since: float  # monotonic
    bundle: tuple[Path, ...] = ()
    wall: float = field(default_factory=time.time)  # when it was taken, as files' times go
    item: str = ""  # the item's name (its status, its bundle): the stem, or the whole name


@dataclass
class EarlierCopies:
    """Single files taken in the last ``window_s``, by (kind, file name).

    With ``state_file`` the memory is kept on disk (written atomically on each change, read
    on start), so a daemon restarted between the two parts of a copy still knows the first.
    """

    window_s: float = REJOIN_WINDOW_S
    state_file: Path | None = None
    _by_key: dict[tuple[str, str], Earlier] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.state_file is not None:
            self._by_key = load(self.state_file, self.window_s, time.monotonic(), time.time())

    def taken(self, kind: str, path: Path, now: float, item: str = "") -> None:
        """Note a single file just claimed (its bytes are now at ``path``) for ``item``."""
        try:
            size = path.lstat().st_size
        except OSError:
            return
        taken_at = datetime.now(UTC).strftime("%H:%M:%S UTC")
        self._by_key.pop((kind, path.name), None)  # newest last, for the bound
        self._by_key[(kind, path.name)] = Earlier(path, size, taken_at, now, item=item)
        self.save()

    def moved(self, kind: str, name: str, path: Path, bundle: tuple[Path, ...] = ()) -> None:
        """Follow a noted file to where it went (published, failed), with its bundle."""
        earlier = self._by_key.get((kind, name))
        if earlier is not None:
            earlier.path, earlier.bundle = path, bundle
            self.save()

    def adopted(self, folder: Path) -> None:
        """Follow noted files into an item ``folder`` (``<claims>/<host.pid>/<kind>/<item>``)
        that a restarted daemon adopted from a dead daemon's claims folder."""
        changed = False
        for earlier in self._by_key.values():
            item = earlier.path.parent.parent  # <item>/input/<file>
            if (
                item != folder
                and (item.parent.name, item.name)
                == (
                    folder.parent.name,
                    folder.name,
                )
                and item.parent.parent.parent == folder.parent.parent.parent
            ):
                earlier.path = folder / "input" / earlier.path.name
                changed = True
        if changed:
            self.save()

    def items(self) -> list[tuple[tuple[str, str], Earlier]]:
        return list(self._by_key.items())

    def names(self) -> dict[tuple[str, str], str]:
        """(kind, item name) -> the file taken under it, for the files taken lately: a later
        file of the same stem and another name is another recording (see collisions.py)."""
        return {(kind, e.item): name for (kind, name), e in self._by_key.items() if e.item}

    def written_on_in(self, failed: Path) -> list[tuple[str, str, Earlier]]:
        """Files followed into ``failed`` that grew since they were taken, as (kind, file
        name, where): a copier holding the file open writes on into it there (an .mp4
        failed for its missing index)."""
        found = []
        for (kind, name), earlier in self._by_key.items():
            if earlier.path.is_relative_to(failed):
                try:
                    grew = earlier.path.lstat().st_size > earlier.size
                except OSError:
                    continue
                if grew:
                    found.append((kind, name, earlier))
        return found

    def forget(self, kind: str, name: str) -> None:
        if self._by_key.pop((kind, name), None) is not None:
            self.save()

    def get(self, arrival: Arrival, now: float) -> Earlier | None:
        """The earlier part this single-file arrival may be the rest of, if any."""
        expired = [k for k, e in self._by_key.items() if now - e.since > self.window_s]
        for key in expired:
            del self._by_key[key]
        if expired:
            self.save()
        entry = arrival.entries[0]
        earlier = self._by_key.get((arrival.kind, entry.name))
        if earlier is None or len(arrival.entries) != 1:
            return None
        try:
            new, old = entry.lstat(), earlier.path.lstat()
        except OSError:
            return None
        if new.st_size <= old.st_size or (new.st_ino, new.st_dev) == (old.st_ino, old.st_dev):
            return None
        return earlier

    def covered(self, arrivals: list[Arrival], now: float) -> dict[tuple[str, str], int]:
        """Bytes at the start of each arrival that its earlier part holds: unwritten there is
        not a copy still going on (see ``inbox.has_holes``)."""
        found = {}
        for arrival in arrivals:
            earlier = self.get(arrival, now)
            if earlier is not None:
                found[arrival.key] = earlier.size
        return found

    def save(self) -> None:
        """Keep the memory on disk; a failed write only costs the memory across a restart.

        Atomic but not fsynced: a daemon killed keeps it (the page cache does), only a power
        loss may lose the last change, and a burst of claims pays no fsync each.
        """
        if self.state_file is None:
            return
        while len(self._by_key) > MAX_REMEMBERED:
            del self._by_key[next(iter(self._by_key))]
        with contextlib.suppress(OSError):
            state = [dump(key, earlier) for key, earlier in self._by_key.items()]
            write_json_atomic(self.state_file, state, durable=False)


def dump(key: tuple[str, str], earlier: Earlier) -> dict[str, object]:
    return {
        "kind": key[0],
        "name": key[1],
        "path": str(earlier.path),
        "size": earlier.size,
        "taken_at": earlier.taken_at,
        "wall": earlier.wall,
        "bundle": [str(folder) for folder in earlier.bundle],
        "item": earlier.item,
    }


def load(
    state_file: Path, window_s: float, now: float, wall_now: float
) -> dict[tuple[str, str], Earlier]:
    """The remembered copies still within ``window_s`` (by the wall clock, which outlives the
    process); an unreadable or malformed file is an empty memory, never an error."""
    found: dict[tuple[str, str], Earlier] = {}
    data = read_json(state_file)
    for entry in data if isinstance(data, list) else []:
        try:
            age = wall_now - float(entry["wall"])
            if not 0 <= age <= window_s:
                continue
            earlier = Earlier(
                Path(entry["path"]),
                int(entry["size"]),
                str(entry["taken_at"]),
                now - age,
                tuple(Path(folder) for folder in entry.get("bundle", [])),
                float(entry["wall"]),
                str(entry.get("item", "")),
            )
            found[(str(entry["kind"]), str(entry["name"]))] = earlier
        except (KeyError, TypeError, ValueError, AttributeError):
            continue
    return dict(list(found.items())[-MAX_REMEMBERED:])


def data_ranges(fd: int, size: int) -> list[tuple[int, int]]:
    """The written (non-hole) ranges of the file's first ``size`` bytes; a hole reads as
    zeros, so it never needs reading. One range when the filesystem cannot tell."""
    ranges: list[tuple[int, int]] = []
    offset = 0
    try:
        while offset < size:
            start = os.lseek(fd, offset, os.SEEK_DATA)
            if start >= size:
                break
            end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
            ranges.append((start, end))
            offset = end
    except OSError as exc:  # ENXIO: no data after offset; EINVAL: no SEEK_DATA here
        if exc.errno != errno.ENXIO:
            return [(0, size)]
    return ranges


def written_blocks(fd: int, size: int) -> list[tuple[int, int]]:
    """``data_ranges`` widened to whole blocks and merged: outside them every block of the
    first ``size`` bytes is a hole (zero, not written)."""
    merged: list[tuple[int, int]] = []
    for start, end in data_ranges(fd, size):
        start, end = start - start % BLOCK, min(-(-end // BLOCK) * BLOCK, size)
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def foreign_blocks(earlier: Path, later: Path) -> list[int] | None:
    """Offsets of the blocks of ``later``'s first ``len(earlier)`` bytes that differ from
    ``earlier`` but are still zero (the copier has not written them yet); None when one of
    them holds other bytes (or ``later`` is not longer): not the rest of the same copy.

    Holes are not read, the rest is read in chunks and compared with memcmp: meant for a
    thread, off the loop.
    """
    size = earlier.stat().st_size
    if later.stat().st_size <= size:
        return None
    unwritten: list[int] = []
    with earlier.open("rb") as old, later.open("rb") as new:
        position = 0
        for start, end in [*written_blocks(new.fileno(), size), (size, size)]:
            unwritten += range(position, start, BLOCK)  # a hole in later: not written yet
            for offset in range(start, end, CHUNK):
                length = min(CHUNK, end - offset)
                old.seek(offset)
                new.seek(offset)
                a, b = old.read(length), new.read(length)
                if a == b:
                    continue
                for i in range(0, len(a), BLOCK):
                    mine, theirs = a[i : i + BLOCK], b[i : i + BLOCK]
                    if mine != theirs:
                        if theirs != ZERO[: len(theirs)] and any(
                            b and a != b for a, b in zip(mine, theirs, strict=True)
                        ):  # a byte the copier wrote that is not the earlier part's
                            return None
                        unwritten.append(offset + i)  # (partly) unwritten: fill it
            position = end
    return unwritten


def continues(earlier: Path, later: Path) -> bool:
    """True when ``later`` is longer than ``earlier`` and each of its first bytes is either
    the earlier file's or still zero (not written yet): the rest of the same copy."""
    return foreign_blocks(earlier, later) is not None


def fill_start(earlier: Path, later: Path, blocks: list[int] | None = None) -> int:
    """Write the earlier part's bytes into the blocks of ``later`` not written yet (zero);
    the number of bytes filled in. Nothing written by the copier is changed."""
    if blocks is None:
        blocks = foreign_blocks(earlier, later) or []
    filled = 0
    with earlier.open("rb") as old, later.open("r+b") as new:
        for start, count in runs(blocks):
            for offset in range(start, start + count * BLOCK, CHUNK):
                old.seek(offset)
                data = old.read(min(CHUNK, start + count * BLOCK - offset))
                new.seek(offset)
                new.write(data)
                filled += len(data)
        new.flush()
        os.fsync(new.fileno())
    return filled


def runs(blocks: list[int]) -> list[tuple[int, int]]:
    """Ascending block offsets as (first offset, number of consecutive blocks)."""
    found: list[tuple[int, int]] = []
    for offset in blocks:
        if found and found[-1][0] + found[-1][1] * BLOCK == offset:
            found[-1] = (found[-1][0], found[-1][1] + 1)
        else:
            found.append((offset, 1))
    return found


def prepare(earlier: Path, later: Path) -> bool:
    """The reading and writing part of a join, for a thread: True (and ``later`` filled in
    from ``earlier``) when ``later`` is the rest of ``earlier``."""
    blocks = foreign_blocks(earlier, later)
    if blocks is None:
        return False
    fill_start(earlier, later, blocks)
    return True


@dataclass
class Pending:
    """A claimed file being compared with its earlier part in a thread."""

    item: Any  # daemon.claim.ClaimedItem
    earlier: Earlier
    future: Future[bool]


@dataclass
class Joins:
    """Comparisons of a claimed file with its earlier part, run in one thread so that
    reading gigabytes never holds up the loop; the loop collects them with ``done``."""

    _pending: list[Pending] = field(default_factory=list)
    _pool: ThreadPoolExecutor | None = None

    def begin(self, item: Any, earlier: Earlier, later: Path, wake: Callable[[], None]) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rejoin")
        future = self._pool.submit(prepare, earlier.path, later)
        future.add_done_callback(lambda _: wake())
        self._pending.append(Pending(item, earlier, future))

    def done(self, wait: bool = False) -> list[Pending]:
        """The comparisons that finished (all of them, waiting, with ``wait``)."""
        finished = [p for p in self._pending if wait or p.future.done()]
        for pending in finished:
            self._pending.remove(pending)
            with contextlib.suppress(Exception):
                pending.future.exception()  # wait for it
        return finished

    def reading(self, folder: Path) -> bool:
        """True while an earlier part in ``folder`` (a waiting item's input) is being read."""
        return any(p.earlier.path.parent == folder for p in self._pending)

    def __len__(self) -> int:
        return len(self._pending)


@dataclass(frozen=True)
class Joined:
    """What joining did, for the new item's status."""

    name: str
    earlier_size: int
    size: int
    taken_at: str
    kept: str
    bundle_kept: tuple[str, ...]
    unqueued: int = 0  # its frames taken off the Lightning Pose app's queue

    def message(self) -> str:
        moved = "; the bundle made from it was moved to " + ", ".join(self.bundle_kept)
        unqueued = (
            f" Its {self.unqueued} frames waiting to be labeled in the Lightning Pose app were "
            "taken off the queue (labeled frames keep their lines)."
        )
        return (
            f"{self.name} is the rest of the copy taken at {self.taken_at} "
            f"({self.earlier_size} bytes then, {self.size} now): it was joined to it and the "
            f"whole recording is processed again. The earlier part was kept as {self.kept}"
            + (moved if self.bundle_kept else "")
            + "."
            + (unqueued if self.unqueued else "")
        )


def join(earlier: Earlier, later: Path, aside: Path, filled: bool = False) -> Joined:
    """Make ``later`` the whole copy and set the earlier part and its bundle ``aside``
    (``filled``: ``prepare`` already filled its start)."""
    if not filled:
        fill_start(earlier.path, later)
    kept = move_without_replacing(earlier.path, aside)
    bundles = [
        str(move_without_replacing(folder, aside / "bundles"))
        for folder in earlier.bundle
        if folder.exists()
    ]
    unqueued = sum(
        lightning_pose.unqueue_superseded(folder.parent.parent, folder.name)
        for folder in earlier.bundle
        if folder.parent.name == "labeled-data"
        and lightning_pose.is_app_project(folder.parent.parent)
    )
    joined = Joined(
        later.name,
        earlier.size,
        later.stat().st_size,
        earlier.taken_at,
        str(kept),
        tuple(bundles),
        unqueued,
    )
    return joined


def note_joined(folder: Path, joined: Joined) -> None:
    write_json_atomic(folder / REJOINED_FILE, {"message": joined.message()})


def joined_note(folder: Path) -> list[str]:
    """The join message kept in an item's folder, as a warning for its final status."""
    data = read_json(folder / REJOINED_FILE)
    return [str(data["message"])] if isinstance(data, dict) and "message" in data else []


def waiting_message(name: str, earlier: Earlier) -> str:
    return (
        f"{name} looks like the rest of the copy taken at {earlier.taken_at} "
        f"({earlier.size} bytes then): it is joined to it once the copy has been still for a "
        "while."
    )


def follow(kept: list[Path], name: str) -> Path | None:
    """Where the input ``name`` went among ``kept`` (a taken name gets a dated one)."""
    stem, suffix = Path(name).stem, Path(name).suffix
    for path in kept:
        if path.name == name or (path.name.startswith(stem + ".") and path.suffix == suffix):
            return path
    return None


def put_back_message(name: str, failed_at: Path) -> str:
    return (
        f"{name} was written on in failed/ after it was failed (at {failed_at}): its copy was "
        "still going on. It was put back in the inbox and is taken again once the copy has "
        "been still for a while."
    )


def put_back(path: Path, target: Path) -> bool:
    """Rename ``path`` to ``target`` unless something is there already (a new drop)."""
    if target.exists():
        return False
    try:
        os.rename(path, target)
    except OSError:
        return False
    return True
