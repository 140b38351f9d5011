"""Status files: ``<status>/<kind>/<name>.json``, one per arrival, rewritten atomically."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from daemon.atomic import read_json, write_json_atomic

ARRIVING = "arriving"  # seen, still being copied (daemon/arriving.py)
QUEUED = "queued"
PROCESSING = "processing"
COMPLETE = "complete"
FAILED = "failed"
STATES = (ARRIVING, QUEUED, PROCESSING, COMPLETE, FAILED)

DONE_MESSAGE = "Proceed to the next tab to label frames."
NAME_MAX = 255  # bytes in one file name, on every filesystem a share is likely to use


def status_file_name(name: str) -> str:
    """``NAME.json``, or, when that is longer than a file name may be (255 bytes), the name
    cut at a character boundary plus ``~`` and a hash of the whole name: still unique, still
    found by its start, and the status inside says the whole name (and ``status_file``)."""
    whole = f"{name}.json"
    if len(whole.encode("utf-8", "surrogateescape")) <= NAME_MAX:
        return whole
    digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    room = NAME_MAX - len(f"~{digest}.json")
    cut = name.encode("utf-8", "surrogateescape")[:room].decode("utf-8", "ignore")
    return f"{cut}~{digest}.json"


def utc_now() -> str:
    """Now, as the status files write time: ISO 8601, UTC, whole seconds, ``Z``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class StatusStore:
    """The status folder of one daemon."""

    folder: Path

    def path(self, kind: str, name: str) -> Path:
        return self.folder / kind / status_file_name(name)

    def read(self, kind: str, name: str) -> dict[str, Any] | None:
        data = read_json(self.path(kind, name))
        return data if isinstance(data, dict) else None

    def write(
        self,
        kind: str,
        name: str,
        state: str,
        message: str,
        fresh: bool = False,
        durable: bool = True,
        **fields: Any,
    ) -> dict[str, Any]:
        """Replace an item's status, keeping fields of the previous one that are not restated.

        Keeping them means a later ``processing`` update does not drop, say, the attempt count;
        ``fresh`` starts over, for a new arrival that reuses a name; ``durable=False`` skips
        the fsync (see ``write_text_atomic``).
        """
        previous = {} if fresh else (self.read(kind, name) or {})
        status = {
            **{key: value for key, value in previous.items() if key not in _RESET_EACH_RUN},
            "kind": kind,
            "name": name,
            "state": state,
            "progress": fields.pop("progress", previous.get("progress", 0.0)),
            "message": message,
            "frames_selected": previous.get("frames_selected", 0),
            "bundle": f"labeled-data/{name}",
            **fields,
            "updated": utc_now(),
        }
        if self.path(kind, name).name != f"{name}.json":
            status["status_file"] = self.path(kind, name).name  # see status_file_name
        write_json_atomic(self.path(kind, name), status, durable=durable)
        return status

    def all(self) -> list[dict[str, Any]]:
        """Every readable status file, sorted by kind and name."""
        found = []
        for path in sorted(self.folder.glob("*/*.json")):
            data = read_json(path)
            if isinstance(data, dict):
                found.append(data)
        return found


# Fields that describe how one run ended; any new state replaces them.
_RESET_EACH_RUN = frozenset(
    {"problems", "warnings", "report", "pictures", "reports_folder", "inputs", "kept"}
)
