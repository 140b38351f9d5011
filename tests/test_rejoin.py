"""The rest of a copy (daemon/rejoin.py): which bytes make a file the rest of another, and
what of the memory of taken files survives a restart."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

from daemon import rejoin


def sparse_rest(path: Path, data: bytes, written_from: int) -> None:
    """``data`` as a copier that reopened the path leaves it: a hole up to ``written_from``."""
    with path.open("wb") as out:
        out.truncate(len(data))
        out.seek(written_from)
        out.write(data[written_from:])


def test_rest_is_recognised_filled_and_a_foreign_byte_refused(tmp_path: Path) -> None:
    """A hole or the same bytes where the first part was: the rest (its start filled in, the
    copier's bytes untouched); one other byte there: not the rest."""
    rng = random.Random(3)
    data = rng.randbytes(3_000_123)
    part = data[:1_700_001]
    earlier, later = tmp_path / "part.avi", tmp_path / "rest.avi"
    earlier.write_bytes(part)
    for written_from in (0, 4096 * 100, 1_000_003, len(part)):
        sparse_rest(later, data, written_from)
        assert rejoin.continues(earlier, later), written_from
        rejoin.fill_start(earlier, later)
        assert data == later.read_bytes(), written_from
    sparse_rest(later, data, 1_000_003)
    with later.open("r+b") as out:
        out.seek(1_200_000)
        out.write(b"\x01")
    assert not rejoin.continues(earlier, later)
    earlier.write_bytes(data)
    assert not rejoin.continues(earlier, later), "not longer: not the rest"


def test_memory_is_read_back_within_its_age_and_bound(tmp_path: Path) -> None:
    """Taken files are read back by a new process; older than the window, a malformed entry
    or a broken file are left out, never an error; the file stays bounded."""
    state = tmp_path / "work" / "rejoin" / "host.json"
    part = tmp_path / "part.avi"
    part.write_bytes(b"x" * 10)
    copies = rejoin.EarlierCopies(state_file=state)
    copies.taken("videos", part, time.monotonic())
    copies.moved("videos", "part.avi", part, (tmp_path / "bundle",))
    again = rejoin.EarlierCopies(state_file=state)
    [(key, earlier)] = again.items()
    assert ("videos", "part.avi") == key and (part, 10) == (earlier.path, earlier.size)
    assert (tmp_path / "bundle",) == earlier.bundle
    entries = json.loads(state.read_text())
    old = dict(entries[0], name="old.avi", wall=time.time() - rejoin.REJOIN_WINDOW_S - 5)
    state.write_text(json.dumps([*entries, old, {"kind": "videos"}]))
    assert [("videos", "part.avi")] == [
        k for k, _ in rejoin.EarlierCopies(state_file=state).items()
    ]
    state.write_text("{not json")
    assert [] == rejoin.EarlierCopies(state_file=state).items()
    many = [dict(entries[0], name=f"c{i}.avi") for i in range(rejoin.MAX_REMEMBERED + 50)]
    state.write_text(json.dumps(many))
    assert rejoin.MAX_REMEMBERED == len(rejoin.EarlierCopies(state_file=state).items())
