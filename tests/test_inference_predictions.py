"""Loading prediction and metric CSVs: the layouts real tools write, and what is refused."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import numpy as np
import pytest

from handlers.inference import predictions
from handlers.inference.predictions import load_metric, load_predictions, write_predictions_csv
from handlers.outcome import InputError
from tests.harness import shared_file

HEADER = (
    "scorer,m,m,m,m,m,m\n"
    "bodyparts,nose,nose,nose,tail,tail,tail\n"
    "coords,x,y,likelihood,x,y,likelihood\n"
)


def write(tmp_path: Path, text: str, name: str = "s.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_reads_positions_likelihoods_and_missing_keypoints(tmp_path: Path) -> None:
    """Empty cells and nan are missing keypoints (likelihood 0); scores above 1 are kept."""
    path = write(tmp_path, HEADER + "0,1,2,0.9,3,4,1.7\n1,,,0,nan,nan,\n")
    predictions = load_predictions(path)
    assert ("nose", "tail") == predictions.keypoints
    assert [[1.0, 2.0], [3.0, 4.0]] == predictions.xy[0].tolist()
    assert np.isnan(predictions.xy[1]).all()
    assert [[0.9, 1.7], [0.0, 0.0]] == predictions.likelihood.tolist()


def test_reads_multi_animal_header_and_trailing_commas(tmp_path: Path) -> None:
    """DeepLabCut's individuals row names keypoints per animal; trailing commas are harmless."""
    text = (
        "scorer,m,m,m,m,m,m,\n"
        "individuals,fly1,fly1,fly1,fly2,fly2,fly2,\n"
        "bodyparts,head,head,head,head,head,head,\n"
        "coords,x,y,likelihood,x,y,likelihood,\n"
        "0,1,2,1,3,4,1,\n"
    )
    predictions = load_predictions(write(tmp_path, text))
    assert ("fly1_head", "fly2_head") == predictions.keypoints


@pytest.mark.parametrize(
    ("body", "phrase"),
    [
        (
            "0,1,2,1,3,4\n",
            "expected 7 cells on every row, but 1 line(s) have a different number: 4",
        ),
        ("0,1,2,1,3,4,1\n2,1,2,1,3,4,1\n", "number the frames 0, 1, 2"),
        ("", "the file has no rows"),
        (
            "".join(f"{i},x,2,1,3,4,1\n" for i in range(9)),
            "9 cell(s) are not: line 4 column 2 ('x')",
        ),
    ],
    ids=["short-row", "frame-gap", "no-rows", "many-bad-cells"],
)
def test_refuses_a_bad_body_saying_where(tmp_path: Path, body: str, phrase: str) -> None:
    """Rows of the wrong width, frames out of order, no rows, text cells: named with lines."""
    with pytest.raises(InputError, match=re.escape(phrase)):
        load_predictions(write(tmp_path, HEADER + body))


def test_metric_file_fills_its_keypoints_in_prediction_order(tmp_path: Path) -> None:
    """A metric with a subset of keypoints, in any order, lands in the predictions' columns."""
    path = write(tmp_path, ",tail\n0,5.0\n1,\n", "s_temporal_norm.csv")
    metric = load_metric(path, ("nose", "tail"), 2)
    assert np.isnan(metric[:, 0]).all()
    assert 5.0 == metric[0, 1]
    assert np.isnan(metric[1, 1])


def test_written_predictions_read_back(tmp_path: Path) -> None:
    """predictions.csv keeps the layout, indexed by the frame's path in the project."""
    source = load_predictions(write(tmp_path, HEADER + "0,1,2,0.9,3,4,1\n1,5,6,0.8,,,0\n"))
    out = tmp_path / "predictions.csv"
    write_predictions_csv(out, "s", source, [1])
    lines = out.read_text().splitlines()
    assert HEADER.splitlines() == lines[:3]
    assert "labeled-data/s/img00000001.png,5.0000,6.0000,0.8000,,,0.0000" == lines[3]


def test_the_fast_parser_reads_a_real_file_as_the_row_by_row_one_does() -> None:
    """fly-pair (missing keypoints, scores above 1): the same numbers from either parser."""
    path = shared_file("fly-pair/clip.csv")
    fast = predictions.clean_body(path, 3, 12)
    with predictions.open_rows(path) as rows:
        body = itertools.islice(rows, 3, None)
        slow, problems = predictions.parse_body(path, body, 12, 4, numbered=True)
    assert fast is not None and [] == problems
    np.testing.assert_array_equal(slow, fast)
    assert np.isnan(fast).any()
