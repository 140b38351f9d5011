"""Claiming: move an arrival out of the inbox before any work, so it is done exactly once.

A claim is a rename into ``<work>/claims/<host>.<pid>/``, a folder no other process uses. A
rename is atomic on one filesystem, so of two daemons (or two hosts on one share) racing for
a file exactly one gets it. Items a dead daemon of this host had claimed are adopted on the
next start and redone.
"""

from __future__ import annotations

import os
import shutil
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daemon.atomic import read_json, write_json_atomic
from daemon.inbox import Arrival, signature

OWNER_FILE = "owner.json"
META_FILE = "item.json"
RESULT_FILE = "result.json"
PROGRESS_FILE = "progress.json"
CLAIMED_FILE = "claimed.json"  # the input's signature right after the claim


@dataclass(frozen=True)
class ClaimedItem:
    """An arrival that this daemon owns, with its private folder.

    Layout of ``folder``: ``input/`` the claimed files, ``staging/`` the bundle being written,
    ``item.json`` where the files came from, ``progress.json`` the worker's progress,
    ``result.json`` the handler's result once it returned (so a restart publishes it without
    running the handler again).
    """

    kind: str
    name: str
    folder: Path
    origins: tuple[Path, ...]

    @property
    def input(self) -> Path:
        return self.folder / "input"

    @property
    def staging(self) -> Path:
        return self.folder / "staging"

    @property
    def files(self) -> list[Path]:
        return sorted(self.input.iterdir()) if self.input.is_dir() else []

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.folder.name)


def process_start_ticks(pid: int) -> str | None:
    """The kernel's start time of ``pid``: with the pid, it names one process even if pids wrap."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def owner_is_alive(owner: dict[str, Any]) -> bool:
    """True when the process that wrote ``owner`` still runs (on this host)."""
    pid = owner.get("pid")
    if not isinstance(pid, int):
        return False
    return process_start_ticks(pid) == owner.get("started") is not None


def rename_checked(source: Path, target: Path) -> bool:
    """Rename, returning False when ``source`` was already gone (someone else took it).

    On NFS a rename can report failure and still have happened, so a failure is looked at
    again before it counts.
    """
    try:
        os.rename(source, target)
    except FileNotFoundError:
        return target.exists() and not source.exists()
    except OSError:
        if target.exists() and not source.exists():
            return True
        raise
    return True


@dataclass
class ClaimFolder:
    """This process's claims folder."""

    work: Path
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)

    @property
    def claims(self) -> Path:
        return self.work / "claims"

    @property
    def folder(self) -> Path:
        return self.claims / f"{self.host}.{self.pid}"

    def open(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        owner = {"host": self.host, "pid": self.pid, "started": process_start_ticks(self.pid)}
        write_json_atomic(self.folder / OWNER_FILE, owner)

    def close(self) -> None:
        """Remove this process's claims folder on a clean stop, if no item was left in it."""
        remove_empty_tree(self.folder)

    def claim(self, arrival: Arrival) -> ClaimedItem | None:
        """Move ``arrival`` into this claims folder; None if another process got it first."""
        folder = self.folder / arrival.kind / arrival.entries[0].name
        count = 1
        while folder.exists():  # an item of this name is still here (waiting for a retry)
            count += 1
            folder = self.folder / arrival.kind / f"{arrival.entries[0].name}.{count}"
        (folder / "input").mkdir(parents=True, exist_ok=False)
        write_json_atomic(
            folder / META_FILE,
            {
                "kind": arrival.kind,
                "name": arrival.name,
                "origins": [str(e) for e in arrival.entries],
            },
        )
        first, *rest = arrival.entries
        if not rename_checked(first, folder / "input" / first.name):
            shutil.rmtree(folder)  # holds only our item.json: nothing was claimed
            return None
        for entry in rest:
            rename_checked(entry, folder / "input" / entry.name)
        item = ClaimedItem(arrival.kind, arrival.name, folder, arrival.entries)
        note_claimed_signature(item)
        return item

    def put_back(self, item: ClaimedItem) -> bool:
        """Return an unfinished item's files to the inbox; False when a name there is taken."""
        by_name = {origin.name: origin for origin in item.origins}
        files = item.files
        if any(by_name.get(path.name, Path()).exists() for path in files):
            return False
        for path in files:
            origin = by_name.get(path.name, item.origins[0].parent / path.name)
            os.rename(path, origin)
        release(item)
        return True

    def adopt_orphans(self) -> list[ClaimedItem]:
        """Take over the items of this host's daemons that died, so they are redone."""
        adopted = []
        for other in sorted(self.claims.glob(f"{glob_escape(self.host)}.*")):
            owner = read_json(other / OWNER_FILE)
            if other == self.folder or not isinstance(owner, dict) or owner_is_alive(owner):
                continue
            for item_folder in sorted(other.glob("*/*")):
                target = self.folder / item_folder.parent.name / item_folder.name
                target.parent.mkdir(parents=True, exist_ok=True)
                if rename_checked(item_folder, target):
                    item = load_item(target)
                    if item is not None and not item.files and not (target / RESULT_FILE).exists():
                        # Killed between making the folder and the rename: nothing was
                        # claimed, the file is still in its inbox. Not an item to fail.
                        release(item)
                    elif item is not None:
                        claim_stragglers(item)
                        adopted.append(item)
            remove_empty_tree(other)
        return adopted


def input_signature(item: ClaimedItem) -> list[list[Any]] | None:
    """The claimed input's signature, paths relative to the item's folder (which may move)."""
    found = signature(item.files)
    if found is None:
        return None
    return [[os.path.relpath(path, item.folder), *rest] for path, *rest in found]


def note_claimed_signature(item: ClaimedItem) -> None:
    """Keep the input's signature as claimed, to tell later whether a writer went on."""
    write_json_atomic(item.folder / CLAIMED_FILE, input_signature(item))


def input_changed(item: ClaimedItem) -> bool:
    """True when the claimed input is no longer as it was claimed: a writer that held the file
    open across a stall went on writing into it. False when nothing was noted (older claims).
    """
    claimed = read_json(item.folder / CLAIMED_FILE)
    if not isinstance(claimed, list):
        return False
    return input_signature(item) != claimed


def claim_stragglers(item: ClaimedItem) -> None:
    """Bring in what a killed daemon had not renamed yet (a sidecar after its video).

    A claim renames the main file first and the rest after; a daemon killed in between left
    the sidecar alone in the inbox, where it would wait for ever and the video run without it.
    """
    if item.files and (item.folder / RESULT_FILE).exists():
        return  # the handler already ran with what was there
    claimed = {path.name for path in item.files}
    brought = False
    for origin in item.origins[1:]:
        if origin.name not in claimed and origin.exists():
            brought = rename_checked(origin, item.input / origin.name) or brought
    if brought:
        note_claimed_signature(item)


def load_item(folder: Path) -> ClaimedItem | None:
    """A claimed item from its folder, or None when its item.json is unreadable."""
    meta = read_json(folder / META_FILE)
    if not isinstance(meta, dict) or not (folder / "input").is_dir():
        return None
    origins = tuple(Path(origin) for origin in meta.get("origins", []))
    return ClaimedItem(str(meta["kind"]), str(meta["name"]), folder, origins)


def release(item: ClaimedItem) -> None:
    """Remove an item's private folder once its input files have all been moved elsewhere.

    Refuses while ``input/`` still holds anything: user files are never deleted.
    """
    if item.files:
        raise RuntimeError(f"refusing to remove {item.folder}: input files are still in it")
    shutil.rmtree(item.folder)


def remove_empty_tree(folder: Path) -> None:
    """Remove a dead daemon's claims folder if only empty folders and owner.json remain."""
    if any(path.is_file() and path.name != OWNER_FILE for path in folder.rglob("*")):
        return
    shutil.rmtree(folder, ignore_errors=True)


def glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)
