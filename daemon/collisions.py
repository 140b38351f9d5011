"""Arrivals that share a name: ``mouse3.avi`` and ``mouse3.mp4`` dropped together.

An item's name (the stem) names its status file and its bundle folder. Two recordings of one
stem at once would share both: the second outcome overwrites the first (a failure hidden by a
success), and their frames clash in one folder. So while they are both about, every one but
the first (by file name) goes by its whole file name: status ``mouse3.mp4.json``, bundle
``labeled-data/mouse3.mp4/``. The same goes for a file of that stem and another name that comes
within an hour of the first being taken (``rejoin.EarlierCopies.names``). The same file name
dropped again later is the usual new drop of the same recording and keeps its name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from daemon.inbox import Arrival


def tell_apart(found: list[Arrival], in_use: Mapping[tuple[str, str], str]) -> list[Arrival]:
    """``found`` with colliding names made distinct.

    ``in_use``: (kind, name) -> the first entry's file name, for items already taken.
    """
    groups: dict[tuple[str, str], list[Arrival]] = {}
    for arrival in found:
        groups.setdefault((arrival.kind, arrival.name), []).append(arrival)
    result = []
    for key, arrivals in groups.items():
        arrivals.sort(key=lambda a: a.entries[0].name)
        taken = in_use.get(key)
        for position, arrival in enumerate(arrivals):
            first = arrival.entries[0].name
            plain = taken == first if taken is not None else position == 0
            result.append(arrival if plain else replace(arrival, name=first))
    return result
