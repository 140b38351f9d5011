"""The pure parts of multi-view sessions: names, sync rules, aligning samples, the joint choice."""

from __future__ import annotations

import numpy as np
import pytest

from daemon.sessions import split_view
from handlers import frames as frames_module
from handlers.video.joint import (
    common_length,
    count_mismatch,
    median_interval,
    nearest_rows,
    rate_mismatch,
    select_joint_frames,
)
from handlers.video.session import SessionOptions, choose_session_frames

VIEWS = ["top", "side", "cam-top"]


@pytest.mark.parametrize(
    ("stem", "expected"),
    [
        ("mouse1_top", ("mouse1", "top")),
        ("mouse_1_side", ("mouse_1", "side")),
        ("m_cam-top", ("m", "cam-top")),  # the longest view name that fits wins
        ("_top", None),  # no session name
        ("mouse1top", None),
        ("mouse1_back", None),
        ("mouse1_Top", None),  # view names are exact
    ],
    ids=lambda value: str(value),
)
def test_split_view_finds_the_session_and_view(stem: str, expected: object) -> None:
    """``<session>_<view>`` splits for a known view only, the longest view name first."""
    assert expected == split_view(stem, VIEWS)


def test_equal_counts_are_in_sync() -> None:
    """Views with the same frame count pass without offsets."""
    assert count_mismatch({"top": 60, "side": 60}, {}) is None


def test_count_mismatch_names_every_view() -> None:
    """A mismatch names every view's count and the offsets way out."""
    problem = count_mismatch({"back": 60, "side": 55, "top": 60}, {})
    assert problem is not None
    assert "(back 60, side 55, top 60)" in problem.message
    assert '"offsets"' in problem.message


def test_offsets_allow_different_counts_that_overlap() -> None:
    """With offsets, counts may differ; the session is the frames every view shares."""
    assert count_mismatch({"top": 60, "side": 55}, {"top": 5}) is None
    assert 55 == common_length({"top": 60, "side": 55}, {"top": 5})
    assert 50 == common_length({"top": 60, "side": 55}, {"top": 10})
    assert count_mismatch({"top": 60, "side": 55}, {"top": 60}) is not None


def test_rates_must_agree_within_one_percent() -> None:
    """30 and 30.2 frames a second pass; 30 and 25 fail, both rates named."""
    assert rate_mismatch({"top": 1000 / 30, "side": 1000 / 30.2}) is None
    problem = rate_mismatch({"top": 1000 / 30, "side": 1000 / 25})
    assert problem is not None and "top 30.00, side 25.00" in problem.message
    assert rate_mismatch({"top": 1000 / 30, "side": float("nan")}) is None


def test_median_interval_of_timestamps() -> None:
    """The median step of increasing timestamps; NaN when there is none."""
    assert 40.0 == median_interval(np.array([0.0, 40.0, 80.0, 121.0, 160.0]))
    assert np.isnan(median_interval(np.array([0.0])))


def test_nearest_rows_aligns_samples_of_different_strides() -> None:
    """Each wanted frame maps to the row of the nearest sampled frame (a tie: the later)."""
    sampled = np.array([0, 4, 8, 12], dtype=np.int64)
    wanted = np.array([0, 1, 3, 6, 7, 13, 20], dtype=np.int64)
    assert [0, 0, 1, 2, 2, 3, 3] == nearest_rows(sampled, wanted).tolist()


def test_joint_choice_counts_a_pose_only_one_view_sees() -> None:
    """Each view sees a rare pose the other does not: the joint choice takes both, while a
    choice from the first view alone misses the second view's."""
    rng = np.random.default_rng(0)
    frames = 200
    first = rng.integers(100, 110, size=(frames, 2048), dtype=np.uint8)
    second = rng.integers(100, 110, size=(frames, 2048), dtype=np.uint8)
    first[40:50, 1024:1280] = 250  # the animal part: a pose only the first view shows
    second[150:160, 1280:1536] = 250  # and one only the second view shows
    indices = np.arange(frames, dtype=np.int64)

    def hits(chosen: list[int], start: int) -> bool:
        return any(start <= frame < start + 10 for frame in chosen)

    alone = select_joint_frames([first], indices, 3).frames
    joint = select_joint_frames([first, second], indices, 3).frames
    assert hits(alone, 40) and not hits(alone, 150), alone
    assert 3 == len(set(joint)) and hits(joint, 40) and hits(joint, 150), joint


def test_joint_choice_counts_labeled_moments_as_covered() -> None:
    """A moment labeled before (in any view) covers its pose in every view: a second choice
    of three skips that pose and still takes the other view's rare pose, and never the
    labeled moment itself; with only exclusion it would spend a frame on the same pose."""
    rng = np.random.default_rng(0)
    frames = 200
    first = rng.integers(100, 110, size=(frames, 2048), dtype=np.uint8)
    second = rng.integers(100, 110, size=(frames, 2048), dtype=np.uint8)
    first[40:50, 1024:1280] = 250
    second[150:160, 1280:1536] = 250
    indices = np.arange(frames, dtype=np.int64)
    taken = np.zeros(frames, dtype=bool)
    taken[45] = True

    chosen = select_joint_frames([first, second], indices, 3, taken=taken).frames
    assert 3 == len(set(chosen)) and 45 not in chosen, chosen
    assert not any(40 <= frame < 50 for frame in chosen), chosen
    assert any(150 <= frame < 160 for frame in chosen), chosen
    # Excluding the labeled moment alone leaves its pose's other frames to be chosen again.
    kept = ~taken
    excluded = select_joint_frames([first[kept], second[kept]], indices[kept], 3).frames
    assert any(40 <= frame < 50 for frame in excluded), excluded


def test_session_choice_takes_labeled_frames_as_covered() -> None:
    """Through the session handler's choice: a frame already labeled in some view (the
    daemon's exclude_frames, in session numbering) is not chosen again, its pose counts as
    covered, and the other view's rare pose is still taken."""
    rng = np.random.default_rng(0)
    count = 200
    thumbs = {
        view: rng.integers(100, 110, size=(count, 2048), dtype=np.uint8) for view in VIEWS[:2]
    }
    thumbs["top"][40:50, 1024:1280] = 250
    thumbs["side"][150:160, 1280:1536] = 250
    indices = np.arange(count, dtype=np.int64)
    scans = {
        view: frames_module.VideoScan(count, 64, 64, indices, rows, np.zeros(count), np.zeros(0))
        for view, rows in thumbs.items()
    }
    options = SessionOptions(
        session="s",
        files={"top": "s_top.mp4", "side": "s_side.mp4"},
        frames_per_video=3,
        frame_range=(0.0, 1.0),
        context_frames=0,
        exclude_frames=frozenset({45}),
    )
    chosen = choose_session_frames(scans, options, count).frames
    assert 3 == len(set(chosen)) and not any(40 <= frame < 50 for frame in chosen), chosen
    assert any(150 <= frame < 160 for frame in chosen), chosen
