"""The Lightning Pose app's project.yaml lists framewatch reads by hand (keypoint_names,
view_names): one reader for both, flow or block style, only at the top level."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.labelers.lightning_pose import PROJECT_FILE, read_keypoints, top_level_list
from daemon.labelers.multiview import read_view_names

PROJECT = """\
data:
  view_names: [nested]   # not top level: ignored
keypoint_names:   # block style
  - nose
  - "tail base"  # quoted
view_names: ['top', side]
other: 1
"""


def test_both_styles_quotes_and_comments(tmp_path: Path) -> None:
    (tmp_path / PROJECT_FILE).write_text(PROJECT)
    assert ["nose", "tail base"] == read_keypoints(tmp_path)
    assert ["top", "side"] == read_view_names(tmp_path)
    assert top_level_list(tmp_path / PROJECT_FILE, "absent") is None


def test_a_project_without_the_lists(tmp_path: Path) -> None:
    (tmp_path / PROJECT_FILE).write_text("data:\n  csv_file: x.csv\n")
    assert [] == read_view_names(tmp_path)
    with pytest.raises(ValueError, match="expected a keypoint_names list"):
        read_keypoints(tmp_path)
