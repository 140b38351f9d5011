"""Publishing: a staged bundle goes into ``labeled-data/`` whole, and inputs to their place.

A new bundle folder appears in one rename. A bundle for a folder that already exists is
merged file by file with hard links, which never replace a file; a file already there with
the same bytes is fine, one with other bytes stops the merge before anything is added. The
CSV goes last, so a reader that follows ``selected_frames.csv`` never sees a frame missing.
"""

from __future__ import annotations

import filecmp
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

from daemon.atomic import write_text_atomic
from handlers.bundle import SELECTED_CSV, frame_index
from handlers.outcome import InputError


def publish_bundle(staging: Path, target: Path) -> list[str]:
    """Move the staged bundle into ``target``; return the names that were new there.

    Raises:
        InputError: a staged file would replace a different file already in ``target``.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    names = sorted(path.name for path in staging.iterdir())
    if not target.exists():
        try:
            os.rename(staging, target)
            return names
        except OSError:
            if not target.exists():
                raise
            # Another bundle for this folder landed first: merge into it instead.
    return merge_bundle(staging, target, names)


def publish_apart(staging: Path, frames: Path, reports: Path) -> None:
    """Publish the frames of ``staging`` into ``frames`` and every other file into ``reports``.

    The other files are first set aside in ``<staging>.reports`` (still ours, cleared with the
    staging folder), so a publish interrupted at any point finishes on the next attempt.
    """
    aside = staging.with_name(f"{staging.name}.reports")
    if staging.exists():
        aside.mkdir(exist_ok=True)
        for path in list(staging.iterdir()):
            if frame_index(path.name) is None:
                os.replace(path, aside / path.name)
        publish_bundle(staging, frames)
    if aside.exists():
        publish_bundle(aside, reports)


def merge_bundle(staging: Path, target: Path, names: list[str]) -> list[str]:
    """Add the staged files to an existing bundle folder without replacing any of them."""
    # CSVs list what a bundle holds (selected_frames.csv, the model's predictions.csv): a newer
    # one replaces the older, which is kept under a dated name; selected_frames.csv goes last.
    lists = sorted(
        (name for name in names if name.lower().endswith(".csv")), key=lambda n: n == SELECTED_CSV
    )
    frames = [name for name in names if name not in lists]
    clashes = [
        name
        for name in frames
        if (target / name).exists()
        and not filecmp.cmp(staging / name, target / name, shallow=False)
    ]
    if clashes:
        raise InputError(
            [
                f"labeled-data/{target.name}/ already holds {name} with different content; "
                "it was not replaced. Rename the video or remove the old frame by hand."
                for name in clashes
            ]
        )
    added = [name for name in frames if link_new(staging / name, target / name)]
    for name in lists:
        replace_keeping_old(staging / name, target / name)
        added.append(name)
    return added


def link_new(source: Path, target: Path) -> bool:
    """Give ``target`` the content of ``source`` unless it exists; True when it was added."""
    try:
        os.link(source, target)
    except FileExistsError:
        return False
    except OSError:
        # Not the same filesystem, or links are not allowed there: copy under a hidden name,
        # then link that name, which still never replaces an existing file.
        hidden = target.with_name(f".{target.name}.incoming")
        shutil.copyfile(source, hidden)
        try:
            os.link(hidden, target)
        except FileExistsError:
            return False
        finally:
            hidden.unlink(missing_ok=True)
    return True


def replace_keeping_old(source: Path, target: Path) -> None:
    """Put ``source`` at ``target``, keeping a differing old ``target`` under a dated name."""
    if target.exists():
        if filecmp.cmp(source, target, shallow=False):
            return
        link_new(target, dated_name(target.parent, target.name))
    write_text_atomic(target, source.read_text(encoding="utf-8"))


def move_without_replacing(source: Path, folder: Path) -> Path:
    """Move ``source`` into ``folder``; if the name is taken, add a timestamp to the new one."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / source.name
    if target.exists():
        target = dated_name(folder, source.name)
    if source.is_dir():
        shutil.move(str(source), str(target))
    else:
        try:
            os.rename(source, target)
        except OSError:
            shutil.move(str(source), str(target))
    return target


def dated_name(folder: Path, name: str) -> Path:
    """A free name in ``folder`` for another ``name``: ``stem.<UTC time>[-n].suffix``."""
    path = Path(name)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    candidate = folder / f"{path.stem}.{stamp}{path.suffix}"
    counter = 1
    while candidate.exists():
        candidate = folder / f"{path.stem}.{stamp}-{counter}{path.suffix}"
        counter += 1
    return candidate
