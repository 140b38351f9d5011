"""Model outputs on disk: pose predictions and per-keypoint metrics, loaded and checked.

Predictions come in the DeepLabCut / Lightning Pose layout: header rows ``scorer``,
``bodyparts`` (multi-animal DeepLabCut adds ``individuals`` before it) and ``coords``, each
keypoint as an ``x, y, likelihood`` triple, then one row a frame whose first cell is the frame
number. Metric files (``STEM_temporal_norm.csv`` ...) have one header row of keypoint names and
one row a frame. Loaders collect every problem of a file before they raise, so that one
failed drop tells the user everything to fix.

Real outputs are messy and must still load: empty cells and ``nan`` are missing keypoints,
likelihoods may exceed 1 (some tools write a score), columns may be constant.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from handlers.bundle import frame_filename
from handlers.outcome import InputError

COORDS = ("x", "y", "likelihood")
MAX_CELL_EXAMPLES = 5
"""Bad cells named one by one in a message; the rest are counted."""

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Predictions:
    """One model's predictions for one video.

    Attributes:
        path: the file they came from.
        scorer: the scorer name of the first header row.
        keypoints: keypoint names, in column order (``individual_bodypart`` for multi-animal).
        xy: positions, shape (frames, keypoints, 2); NaN where the model gave none.
        likelihood: confidence, shape (frames, keypoints); may exceed 1; NaN read as 0.
    """

    path: Path
    scorer: str
    keypoints: tuple[str, ...]
    xy: FloatArray
    likelihood: FloatArray

    @property
    def frame_count(self) -> int:
        return int(self.xy.shape[0])


def read_rows(path: Path) -> list[list[str]]:
    """All rows of a CSV file as text cells.

    Raises:
        InputError: the file cannot be read as text.
    """
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            return [row for row in csv.reader(handle) if row]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError([f"{path.name} could not be read as a CSV text file ({exc})"]) from exc


def header_problems(path: Path, rows: list[list[str]]) -> tuple[list[str], int]:
    """Problems with the header rows, and how many header rows there are (3 or 4)."""
    firsts = [row[0].strip().lower() for row in rows[:4]]
    # Multi-animal DeepLabCut puts an ``individuals`` row between scorer and bodyparts.
    count = 4 if firsts[1:2] == ["individuals"] else 3
    expected = ["scorer", "individuals", "bodyparts", "coords"]
    if count == 3:
        expected.remove("individuals")
    if firsts[:count] == expected:
        return [], count
    got = ", ".join(repr(cell) for cell in firsts[:3]) or "an empty file"
    return [
        f"{path.name}: expected three header rows starting with 'scorer', 'bodyparts' and "
        f"'coords' (the DeepLabCut / Lightning Pose layout), but the first cells are {got}. "
        "Export the predictions as that CSV layout."
    ], count


def keypoint_columns(path: Path, header: list[list[str]]) -> tuple[list[str], list[str]]:
    """Keypoint names from the header rows, and the problems with the coords row."""
    coords = [cell.strip().lower() for cell in header[-1][1:]]
    parts = [cell.strip() for cell in header[-2][1:]]
    individuals = [cell.strip() for cell in header[1][1:]] if len(header) == 4 else []
    problems = []
    unknown = sorted({cell for cell in coords if cell not in COORDS})
    if unknown:
        problems.append(
            f"{path.name}: unknown coords {', '.join(map(repr, unknown))} in the coords row; "
            "expected only x, y and likelihood"
        )
    if len(coords) % 3 or coords != list(COORDS) * (len(coords) // 3):
        problems.append(
            f"{path.name}: expected the coords row to repeat x, y, likelihood for every "
            f"keypoint, but got {', '.join(coords) or 'nothing'}"
        )
    names = []
    for start in range(0, len(parts) - 2, 3):
        name = parts[start]
        if individuals:
            name = f"{individuals[start]}_{name}"
        names.append(name)
        if len(set(parts[start : start + 3])) != 1:
            problems.append(
                f"{path.name}: expected the three columns of keypoint {name!r} to carry the same "
                f"bodypart name, but got {', '.join(parts[start : start + 3])}"
            )
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        problems.append(f"{path.name}: keypoint(s) {', '.join(duplicates)} appear more than once")
    return names, problems


def parse_numbers(
    path: Path, rows: list[list[str]], width: int, first_row: int
) -> tuple[FloatArray, list[str]]:
    """The cells of ``rows`` (frame column excluded) as floats, and every problem with them.

    Empty cells and ``nan`` become NaN. ``first_row`` is the file line of ``rows[0]``.
    """
    problems = []
    short = [first_row + i for i, row in enumerate(rows) if len(row) != width + 1]
    if short:
        problems.append(
            f"{path.name}: expected {width + 1} cells on every row, but line(s) "
            f"{_list_some(short)} have a different number"
        )
        rows = [(row + [""] * (width + 1))[: width + 1] for row in rows]
    cells = np.array([row[1:] for row in rows], dtype=str).reshape(len(rows), width)
    cells = np.char.strip(cells)
    cells[cells == ""] = "nan"
    try:
        return cells.astype(np.float64), problems
    except ValueError:
        pass
    values = np.full(cells.shape, np.nan)
    bad = []
    for (r, c), text in np.ndenumerate(cells):
        try:
            values[r, c] = float(text)
        except ValueError:
            bad.append(f"line {first_row + r} column {c + 2} ({text[:20]!r})")
    problems.append(
        f"{path.name}: expected numbers, but {len(bad)} cell(s) are not: {_list_some(bad)}"
    )
    return values, problems


def frame_number_problems(path: Path, rows: list[list[str]], first_row: int) -> list[str]:
    """Problems with the first column, which must count the frames 0, 1, 2, ... in order."""
    expected = [str(i) for i in range(len(rows))]
    found = [row[0].strip() for row in rows]
    if found == expected:
        return []
    wrong = [
        f"line {first_row + i} ({text!r})"
        for i, text in enumerate(found)
        if not _is_int(text) or int(float(text)) != i
    ]
    if not wrong:
        return []
    return [
        f"{path.name}: expected the first column to number the frames 0, 1, 2, ... one row a "
        f"frame, but got {_list_some(wrong)}"
    ]


def load_predictions(path: Path) -> Predictions:
    """Read one predictions CSV.

    Raises:
        InputError: every problem found in the file.
    """
    rows = read_rows(path)
    problems, header_count = header_problems(path, rows)
    if problems:
        raise InputError(problems)
    header, body = rows[:header_count], rows[header_count:]
    names, problems = keypoint_columns(path, header)
    width = len(header[-1]) - 1
    if not body:
        problems.append(f"{path.name}: expected one row a frame, but the file has no rows")
    if problems:
        raise InputError(problems)
    values, cell_problems = parse_numbers(path, body, width, header_count + 1)
    problems = cell_problems + frame_number_problems(path, body, header_count + 1)
    if problems:
        raise InputError(problems)
    triples = values.reshape(len(body), len(names), 3)
    likelihood = np.nan_to_num(triples[:, :, 2], nan=0.0)
    scorer = header[0][1].strip() if len(header[0]) > 1 else ""
    return Predictions(path, scorer, tuple(names), triples[:, :, :2].copy(), likelihood)


def load_metric(path: Path, keypoints: Sequence[str], frame_count: int) -> FloatArray:
    """Read a per-keypoint metric file into shape (frames, keypoints), NaN where absent.

    Raises:
        InputError: the header names keypoints the predictions lack, a cell is not a number,
            or the file has another number of rows than the predictions.
    """
    rows = read_rows(path)
    if not rows:
        raise InputError([f"{path.name}: expected a header row of keypoint names, but it is empty"])
    columns = [cell.strip() for cell in rows[0][1:]]
    problems = []
    unknown = [name for name in columns if name not in keypoints]
    if unknown:
        problems.append(
            f"{path.name}: keypoint column(s) {', '.join(map(repr, unknown))} are not in the "
            f"predictions (which have {', '.join(keypoints)}); is it from another model?"
        )
    body = rows[1:]
    if len(body) != frame_count:
        problems.append(
            f"{path.name}: expected {frame_count} rows, one a frame as in the predictions, "
            f"but got {len(body)}"
        )
    values, cell_problems = parse_numbers(path, body, len(columns), 2)
    problems += cell_problems
    if problems:
        raise InputError(problems)
    metric = np.full((frame_count, len(keypoints)), np.nan)
    for column, name in enumerate(columns):
        metric[:, keypoints.index(name)] = values[:, column]
    return metric


def ensemble_problems(members: Sequence[Predictions]) -> list[str]:
    """Problems that keep prediction files from being one ensemble for one video."""
    if len(members) < 2:
        return []
    first = members[0]
    problems = []
    for other in members[1:]:
        if other.keypoints != first.keypoints:
            problems.append(
                f"ensemble members disagree on keypoints: {first.path.name} has "
                f"{', '.join(first.keypoints)}, but {other.path.name} has "
                f"{', '.join(other.keypoints)}"
            )
        if other.frame_count != first.frame_count:
            problems.append(
                f"ensemble members disagree on length: {first.path.name} has "
                f"{first.frame_count} frames, but {other.path.name} has {other.frame_count}"
            )
    return problems


def write_predictions_csv(
    path: Path, stem: str, predictions: Predictions, frames: Sequence[int]
) -> None:
    """Write the predictions of ``frames`` in the same three-header-row layout.

    The index is the frame's path in the project (``labeled-data/STEM/img%08d.png``), as in
    a labeled-data CSV, so a labeling tool can start from the model's guess.
    """
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["scorer", *[predictions.scorer] * (3 * len(predictions.keypoints))])
        writer.writerow(["bodyparts", *[k for k in predictions.keypoints for _ in COORDS]])
        writer.writerow(["coords", *COORDS * len(predictions.keypoints)])
        for frame in sorted(frames):
            cells = []
            for k in range(len(predictions.keypoints)):
                x, y = predictions.xy[frame, k]
                cells += [_format(x), _format(y), _format(predictions.likelihood[frame, k])]
            writer.writerow([f"labeled-data/{stem}/{frame_filename(frame)}", *cells])


def _format(value: float) -> str:
    return "" if not np.isfinite(value) else f"{value:.4f}"


def _is_int(text: str) -> bool:
    try:
        return float(text).is_integer()
    except ValueError:
        return False


def _list_some(items: Sequence[object]) -> str:
    shown = ", ".join(str(item) for item in items[:MAX_CELL_EXAMPLES])
    more = len(items) - MAX_CELL_EXAMPLES
    return shown + (f" and {more} more" if more > 0 else "")
