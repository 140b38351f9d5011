"""Settling: an arrival is complete once nothing about its files changed for ``settle_s``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from daemon.inbox import Arrival, Signature, signature

# A file with holes that stays still this long is taken after all: a filesystem that keeps
# finished files sparse must not hold them for ever.
SPARSE_GRACE_S = 600.0


@dataclass
class _Seen:
    signature: Signature
    since: float

    @property
    def has_holes(self) -> bool:
        return any(entry[4] for entry in self.signature)


@dataclass
class SettleTracker:
    """Remembers when each arrival's files last changed, as seen by successive scans.

    Time is the observer's (monotonic), never the file's mtime: a copy that preserves an old
    mtime, or a share whose clock is off, must still wait ``settle_s`` of observed stillness.
    """

    settle_s: float
    sparse_grace_s: float = SPARSE_GRACE_S
    _seen: dict[tuple[str, str], _Seen] = field(default_factory=dict)

    def needed(self, seen: _Seen) -> float:
        """Stillness needed: ``settle_s``, or the sparse grace while a file still has holes."""
        return max(self.settle_s, self.sparse_grace_s) if seen.has_holes else self.settle_s

    def unfilled(self) -> list[tuple[str, str]]:
        """Keys of the arrivals held back because a file of theirs still has holes."""
        return [key for key, seen in self._seen.items() if seen.has_holes]

    def observe(
        self,
        arrivals: Iterable[Arrival],
        now: float,
        covered: Mapping[tuple[str, str], int] | None = None,
    ) -> list[Arrival]:
        """Record one scan; return the arrivals unchanged for at least ``settle_s``.

        ``covered``: bytes at the start of an arrival's file that an earlier part holds."""
        settled = []
        current = {}
        for arrival in arrivals:
            sig = signature(arrival.entries, (covered or {}).get(arrival.key, 0))
            if sig is None:
                continue
            seen = self._seen.get(arrival.key)
            if seen is None or seen.signature != sig:
                seen = _Seen(sig, now)
            current[arrival.key] = seen
            if now - seen.since >= self.needed(seen):
                settled.append(arrival)
        self._seen = current
        return settled

    def next_deadline(self, now: float) -> float | None:
        """When the next arrival still settling could be declared settled (monotonic time)."""
        deadlines = [seen.since + self.needed(seen) for seen in self._seen.values()]
        future = [deadline for deadline in deadlines if deadline > now]
        return min(future) if future else None

    def watched(self) -> dict[tuple[str, str], tuple[Signature, float, float]]:
        """Each arrival seen by the last scan: its files as seen, since when (monotonic) they
        have not changed, and the stillness it needs; for the ``arriving`` status."""
        return {
            key: (seen.signature, seen.since, self.needed(seen)) for key, seen in self._seen.items()
        }

    def forget(self, arrival: Arrival) -> None:
        self._seen.pop(arrival.key, None)
