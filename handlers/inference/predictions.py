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
import itertools
import math
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
from pandas.api.types import is_bool_dtype, is_numeric_dtype

from handlers.bundle import frame_filename
from handlers.outcome import InputError

COORDS = ("x", "y", "likelihood")
MAX_CELL_EXAMPLES = 5
"""Bad cells named one by one in a message; the rest are counted."""
ROWS_PER_BLOCK = 4096
"""Rows parsed into one array block; memory stays near the size of the numbers themselves."""

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Predictions:
    """One model's predictions for one video.

    Attributes:
        path: the file they came from.
        scorer: the scorer name of the first header row.
        keypoints: keypoint names, in column order (``individual_bodypart`` for multi-animal).
        xy: positions, shape (frames, keypoints, 2); NaN where the model gave none; float64,
            or float32 for an ensemble's members (see ``load_predictions``).
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


@contextmanager
def open_rows(path: Path) -> Iterator[Iterator[list[str]]]:
    """The non-empty rows of a CSV file, read one at a time (an hour of output is big).

    Raises:
        InputError: the file cannot be read as CSV text.
    """
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            yield (row for row in csv.reader(handle) if row)
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
    if len(parts) != len(coords):
        problems.append(
            f"{path.name}: expected a bodyparts cell above every coords cell, but the bodyparts "
            f"row has {len(parts)} and the coords row {len(coords)}"
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


@dataclass
class _Examples:
    """How many times one kind of problem occurred, and the first few occurrences."""

    count: int = 0
    shown: list[str] = field(default_factory=list)

    def add(self, where: object) -> None:
        self.count += 1
        if len(self.shown) < MAX_CELL_EXAMPLES:
            self.shown.append(str(where))

    def __str__(self) -> str:
        more = self.count - len(self.shown)
        return ", ".join(self.shown) + (f" and {more} more" if more > 0 else "")


@dataclass
class _BodyProblems:
    """What is wrong with the rows of a table, gathered while it streams past."""

    path: Path
    width: _Examples = field(default_factory=_Examples)
    cells: _Examples = field(default_factory=_Examples)
    numbers: _Examples = field(default_factory=_Examples)

    def sentences(self, width: int) -> list[str]:
        name = self.path.name
        found = []
        if self.width.count:
            found.append(
                f"{name}: expected {width + 1} cells on every row, but {self.width.count} "
                f"line(s) have a different number: {self.width}"
            )
        if self.cells.count:
            found.append(
                f"{name}: expected numbers, but {self.cells.count} cell(s) are not: {self.cells}"
            )
        if self.numbers.count:
            found.append(
                f"{name}: expected the first column to number the frames 0, 1, 2, ... one row "
                f"a frame, but got {self.numbers}"
            )
        return found


def parse_cells(cells: Sequence[str], line: int, problems: _BodyProblems) -> list[float]:
    """One row's cells as floats: empty and ``nan`` are NaN; bad cells are noted as NaN."""
    try:
        return [float(text) if text.strip() else math.nan for text in cells]
    except ValueError:
        pass
    values = []
    for column, text in enumerate(cells, start=2):
        try:
            values.append(float(text) if text.strip() else math.nan)
        except ValueError:
            values.append(math.nan)
            problems.cells.add(f"line {line} column {column} ({text.strip()[:20]!r})")
    return values


def parse_body(
    path: Path, rows: Iterable[list[str]], width: int, first_line: int, numbered: bool
) -> tuple[FloatArray, list[str]]:
    """The rows after the header as floats (frame column dropped), and every problem with them.

    Args:
        rows: the rows, streamed; ``first_line`` is the file line of the first.
        width: cells a row holds besides its first (frame) column.
        numbered: the first column must count the frames 0, 1, 2, ...
    """
    problems = _BodyProblems(path)
    blocks: list[FloatArray] = []
    block = np.empty((ROWS_PER_BLOCK, width))
    filled = 0
    for index, row in enumerate(rows):
        line = first_line + index
        if len(row) == width + 2 and not row[-1].strip():
            row = row[:-1]  # a trailing comma
        if len(row) != width + 1:
            problems.width.add(line)
            row = (row + [""] * (width + 1))[: width + 1]
        if numbered and row[0].strip() != str(index) and not _is_number(row[0], index):
            problems.numbers.add(f"line {line} ({row[0]!r})")
        block[filled] = parse_cells(row[1:], line, problems)
        filled += 1
        if filled == ROWS_PER_BLOCK:
            blocks.append(block)
            block, filled = np.empty((ROWS_PER_BLOCK, width)), 0
    blocks.append(block[:filled])
    return np.concatenate(blocks), problems.sentences(width)


def clean_body(path: Path, header_count: int, width: int) -> FloatArray | None:
    """The rows after the header through pandas' C parser, when the file is clean; else None.

    An hour of five models' output is 26 million cells: the row-by-row parser that names
    every bad cell takes about 20 s for it, this about 3 s. Anything unusual (a blank line in
    the header, a bad cell, a short row, frames not numbered 0, 1, 2 ...) returns None, and
    the row-by-row parser then says what is wrong.
    """
    try:
        # No dtype: pandas' own number inference is about a third cheaper than a forced
        # float64; a column with a cell that is not a number then fails the conversion.
        # An open file, not a path: pandas then parses in one thread, not in chunks over
        # threads that each hold their own table (50 MB less at the peak, less CPU in all).
        with path.open("rb") as handle:
            frame = pd.read_csv(handle, header=None, skiprows=header_count, encoding="utf-8-sig")
        types = frame.dtypes
        if not all(is_numeric_dtype(t) and not is_bool_dtype(t) for t in types):
            return None  # text, or True/False, somewhere: the row-by-row parser names it
        values = frame.to_numpy(dtype=np.float64)
    except (ValueError, TypeError, OSError, UnicodeDecodeError, pd.errors.ParserError):
        return None
    del frame  # an hour's member is 40 MB; hold one copy, not two
    if values.ndim == 2 and values.shape[1] == width + 2 and np.isnan(values[:, -1]).all():
        values = values[:, :-1]  # a trailing comma on every row
    if values.ndim != 2 or values.shape[1] != width + 1 or values.shape[0] == 0:
        return None
    if not np.array_equal(values[:, 0], np.arange(values.shape[0])):
        return None
    return values[:, 1:]  # a view: the caller takes its own arrays from it


def load_predictions(path: Path, xy_dtype: type[np.floating] = np.float64) -> Predictions:
    """Read one predictions CSV.

    ``xy_dtype=np.float32`` halves the positions' memory, for ensemble members that are only
    averaged (in float64) and compared: 0.1 ppm of a coordinate is far below any error we
    look for. The likelihood stays float64, so that a cell of exactly the threshold stays
    on its side of it.

    Raises:
        InputError: every problem found in the file.
    """
    with open_rows(path) as rows:
        head = list(itertools.islice(rows, 4))
        problems, header_count = header_problems(path, head)
        if problems:
            raise InputError(problems)
        header = [trim_trailing_empty(row) for row in head[:header_count]]
        names, problems = keypoint_columns(path, header)
        if problems:
            raise InputError(problems)
        width = len(header[-1]) - 1
        fast = clean_body(path, header_count, width)
        if fast is not None:
            values, problems = fast, []
        else:
            body = itertools.chain(head[header_count:], rows)
            values, problems = parse_body(path, body, width, header_count + 1, numbered=True)
    if values.shape[0] == 0:
        problems.append(f"{path.name}: expected one row a frame, but the file has no rows")
    if problems:
        raise InputError(problems)
    triples = values.reshape(values.shape[0], len(names), 3)
    likelihood = np.nan_to_num(triples[:, :, 2], nan=0.0)
    scorer = header[0][1].strip() if len(header[0]) > 1 else ""
    xy = triples[:, :, :2].astype(xy_dtype)
    return Predictions(path, scorer, tuple(names), xy, likelihood)


def trim_trailing_empty(row: list[str]) -> list[str]:
    """A header row without the empty cells a trailing comma leaves at its end."""
    end = len(row)
    while end > 1 and not row[end - 1].strip():
        end -= 1
    return row[:end]


def load_metric(path: Path, keypoints: Sequence[str], frame_count: int) -> FloatArray:
    """Read a per-keypoint metric file into shape (frames, keypoints), NaN where absent.

    Raises:
        InputError: the header names keypoints the predictions lack, a cell is not a number,
            or the file has another number of rows than the predictions.
    """
    with open_rows(path) as rows:
        header = next(rows, None)
        if header is None:
            raise InputError(
                [f"{path.name}: expected a header row of keypoint names, but it is empty"]
            )
        columns = [cell.strip() for cell in trim_trailing_empty(header)[1:]]
        values, problems = parse_body(path, rows, len(columns), 2, numbered=False)
    unknown = [name for name in columns if name not in keypoints]
    if unknown:
        problems.append(
            f"{path.name}: keypoint column(s) {', '.join(map(repr, unknown))} are not in the "
            f"predictions (which have {', '.join(keypoints)}); is it from another model?"
        )
    if values.shape[0] != frame_count:
        problems.append(
            f"{path.name}: expected {frame_count} rows, one a frame as in the predictions, "
            f"but got {values.shape[0]}"
        )
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


def _is_number(text: str, expected: int) -> bool:
    """True when ``text`` is ``expected`` written another way (``7.0``, `` 7``)."""
    try:
        return float(text) == expected
    except ValueError:
        return False
