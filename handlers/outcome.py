"""What every handler returns or raises, and how it reports progress."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Progress = Callable[[float, str], None]
"""``progress(fraction, message)``: fraction in [0, 1] of the item's work done so far."""


def ignore_progress(fraction: float, message: str) -> None:
    """A progress callback for callers that do not watch progress (tests, benchmarks)."""


class InputError(Exception):
    """The arrival itself is wrong; running it again will not help.

    Carries every problem found, each worded for the person who made the file, so that one
    failed attempt tells them everything to fix.
    """

    def __init__(self, problems: Sequence[str]) -> None:
        if not problems:
            raise ValueError("InputError needs at least one problem")
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))

    def __reduce__(self) -> tuple[type[InputError], tuple[list[str]]]:
        # Worker processes send this back pickled; the default would rebuild from the joined text.
        return (InputError, (self.problems,))


class IncompleteInput(InputError):
    """The input holds less than it says it does: fewer frames decode than its container
    promises, or an .mp4's index is not there yet. Most often a copy that stalled part way;
    the daemon waits and looks again."""

    def __init__(
        self, problems: Sequence[str], decoded: int = 0, promised: int = 0, missing: str = ""
    ) -> None:
        super().__init__(problems)
        self.decoded = decoded
        self.promised = promised
        self.missing = missing

    @property
    def shortfall(self) -> str:
        """What is missing, as the start of a sentence for the status."""
        if self.missing:
            return self.missing
        return f"Only {self.decoded} of the {self.promised} frames its container promises decode"

    def __reduce__(self) -> tuple[type[IncompleteInput], tuple[list[str], int, int, str]]:  # type: ignore[override]
        return (IncompleteInput, (self.problems, self.decoded, self.promised, self.missing))


@dataclass(frozen=True)
class HandlerResult:
    """What a handler wrote into its staging folder.

    Attributes:
        selected: frame indices chosen for labeling (listed in selected_frames.csv).
        files: names of every file written into the staging folder.
        warnings: things a user should know that did not stop the item.
        report: what produced the bundle (method, parameters, measures), for the status.
    """

    selected: list[int]
    files: list[str]
    warnings: list[str] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)


def only_file_with_suffix(files: Sequence[Path], suffixes: Iterable[str], what: str) -> Path:
    """The one claimed file whose suffix is in ``suffixes`` (a sidecar may come beside it).

    Raises:
        InputError: there is none, or more than one.
    """
    wanted = {suffix.lower() for suffix in suffixes}
    found = [path for path in files if path.suffix.lower() in wanted]
    if len(found) != 1:
        names = ", ".join(path.name for path in files) or "nothing"
        raise InputError([f"expected exactly one {what}, but got {names}"])
    return found[0]
