"""Choosing frames: the pure functions of handlers/selection.py and handlers/features.py on
synthetic inputs whose answer is known."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from handlers import frames
from handlers.video import VideoOptions, choose_frames, features, selection
from tests.benchmarks.posevideo import render_pose_video


def clusters(
    centres: npt.NDArray[np.float64], sizes: list[int], spread: float = 0.05, seed: int = 0
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """Points around each centre (``sizes`` of them), and the cluster of each point."""
    rng = np.random.default_rng(seed)
    dims = centres.shape[1]
    points = [c + spread * rng.normal(size=(s, dims)) for c, s in zip(centres, sizes, strict=True)]
    labels = [np.full(s, k) for k, s in enumerate(sizes)]
    return np.vstack(points).astype(np.float32), np.concatenate(labels).astype(np.int64)


@pytest.mark.parametrize("seed", [0, 1, 2], ids=lambda s: f"seed{s}")
def test_one_pick_per_cluster_when_n_equals_the_clusters(seed: int) -> None:
    """With n well-separated clusters of unequal size, each cluster gets exactly one frame."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(6, 8)) * 10
    points, labels = clusters(centres, [400, 200, 50, 30, 10, 5], seed=seed)
    rows = selection.choose_diverse_rows(points, 6)
    assert [1] * 6 == np.bincount(labels[rows], minlength=6).tolist()


def test_a_rare_cluster_is_reached() -> None:
    """Five frames of a distant pose among a thousand common ones are among 4 chosen."""
    centres = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [6.0, 6.0]])
    points, labels = clusters(centres, [400, 400, 200, 5], spread=0.2)
    rows = selection.choose_diverse_rows(points, 4)
    assert 3 in set(labels[rows].tolist())


@pytest.mark.parametrize("n", [1, 5, 20], ids=lambda n: f"n{n}")
def test_exactly_n_distinct_frames_even_when_frames_are_identical(n: int) -> None:
    """Identical frames leave k-means fewer clusters; the count is still exactly n, distinct."""
    points = np.zeros((50, 4), dtype=np.float32)
    chosen = selection.choose_diverse_frames(points, np.arange(100, 150), n)
    assert (n, n) == (len(chosen), len(set(chosen)))
    assert chosen == sorted(chosen)


@pytest.mark.parametrize("rows", [0, 1, 2], ids=lambda r: f"{r}-samples")
def test_a_window_with_few_samples_gives_what_it_holds(rows: int) -> None:
    """With fewer samples than frames wanted, every sample is chosen (none when there are none)."""
    rng = np.random.default_rng(0)
    rows_data = rng.integers(0, 255, size=(rows, features.FEATURE_LENGTH), dtype=np.uint8)
    chosen = selection.select_diverse_frames(rows_data, np.arange(rows, dtype=np.int64) * 8, 5)
    assert [i * 8 for i in range(rows)] == chosen.frames


def test_same_input_same_frames() -> None:
    """Choosing twice from the same features gives the same frames."""
    points, _ = clusters(np.random.default_rng(3).normal(size=(10, 5)), [30] * 10, spread=0.5)
    indices = np.arange(points.shape[0], dtype=np.int64) * 3
    first = selection.choose_diverse_frames(points, indices, 12)
    assert first == selection.choose_diverse_frames(points.copy(), indices.copy(), 12)


def test_spread_measures_on_a_line() -> None:
    """Points 0..10 on a line, chosen 0, 5 and 10: coverage mean 12/11, worst 2, redundancy 5."""
    points = np.arange(11, dtype=np.float32)[:, None]
    mean, worst, redundancy = selection.spread_measures(points, [0, 5, 10])
    assert (pytest.approx(12 / 11), 2.0, 5.0) == (mean, worst, redundancy)


def test_flicker_is_a_jump_not_a_drift() -> None:
    """Brightness drifting by 40% over the video is not flicker; three one-frame jumps are."""
    levels = np.linspace(100, 140, 300).astype(np.float32)
    levels[[50, 120, 250]] *= np.array([1.6, 0.5, 1.3], dtype=np.float32)
    assert [50, 120, 250] == np.flatnonzero(selection.flicker_rows(levels)).tolist()


def test_an_intrusion_and_its_margin_are_set_aside() -> None:
    """A stretch where much more of the frame changes is flagged, widened by the margin."""
    rng = np.random.default_rng(0)
    change = (0.02 + 0.002 * rng.normal(size=400)).astype(np.float32)
    change[100:130] = 0.3
    flags = selection.intrusion_rows(change)
    assert list(range(100, 130)) == np.flatnonzero(flags).tolist()
    widened = selection.widen(flags, np.arange(400, dtype=np.int64) * 2, margin=10)
    assert list(range(95, 135)) == np.flatnonzero(widened).tolist()


def ellipse_frame(
    centre: tuple[float, float], angle_deg: float, tail: bool
) -> npt.NDArray[np.uint8]:
    """A grey floor with a dark elongated body (and a tail behind it) at ``centre``."""
    frame = np.full((240, 320, 3), 160, dtype=np.uint8)
    cv2.ellipse(frame, (int(centre[0]), int(centre[1])), (24, 9), angle_deg, 0, 360, (50,) * 3, -1)
    if tail:
        theta = np.radians(angle_deg + 180)
        end = (int(centre[0] + 50 * np.cos(theta)), int(centre[1] + 50 * np.sin(theta)))
        cv2.line(frame, (int(centre[0]), int(centre[1])), end, (50,) * 3, 3)
    return frame


def crop_after_walk(angle_deg: float) -> npt.NDArray[np.float32]:
    """The animal-centred feature after the body walked 60 frames along ``angle_deg``."""
    reducer = features.FrameReducer()
    step = np.array([np.cos(np.radians(angle_deg)), np.sin(np.radians(angle_deg))])
    start = np.array([160.0, 120.0]) - 30 * step
    for t in range(60):
        row = reducer(ellipse_frame(tuple(start + t * step), angle_deg, tail=True))
    return features.split_features(row)[1].astype(np.float32)


@pytest.mark.parametrize("angle", [45.0, 135.0, 200.0, 300.0], ids=lambda a: f"{a:.0f}deg")
def test_the_animal_crop_is_the_same_whichever_way_it_walks(angle: float) -> None:
    """A body walking at ``angle`` gives nearly the silhouette it gives walking east (r > 0.7),
    where the same silhouette left unturned would not (r < 0.7)."""
    east, other = crop_after_walk(0.0), crop_after_walk(angle)
    turn = cv2.getRotationMatrix2D((16, 16), angle, 1.0)
    unturned = cv2.warpAffine(east.reshape(32, 32), turn, (32, 32)).reshape(-1)
    turned_r = float(np.corrcoef(east, other)[0, 1])
    unturned_r = float(np.corrcoef(east, unturned)[0, 1])
    assert (True, True) == (turned_r > 0.7, unturned_r < 0.7), (turned_r, unturned_r)


def test_the_crop_keeps_to_the_animal_it_follows() -> None:
    """Two moving regions (two animals): with nothing followed yet the larger one is taken;
    after that the one nearest the last place, even when the other is a little larger; a
    speck under TRACK_SHARE of the largest is never taken, however near; and the largest when
    it lies within ``reach`` (a limb of the same body, which the crop holds anyway)."""
    difference = np.zeros((64, 64), dtype=np.float32)
    difference[10:20, 10:20] = 50.0  # 100 px, left
    difference[40:51, 40:51] = 50.0  # 121 px, right
    difference[30:32, 8:10] = 50.0  # 4 px speck near the left one
    first = features.tracked_blob_centre(difference, 12.0, None)
    kept = features.tracked_blob_centre(difference, 12.0, (14.0, 16.0))
    near_speck = features.tracked_blob_centre(difference, 12.0, (9.0, 31.0))
    assert first is not None and kept is not None and near_speck is not None
    assert (round(first[0]), first[2]) == (45, 121)
    assert (round(kept[0]), round(kept[1]), kept[2]) == (14, 14, 100)
    within_reach = features.tracked_blob_centre(difference, 12.0, (14.0, 16.0), reach=60.0)
    assert near_speck[2] == 100
    assert within_reach is not None and within_reach[2] == 121


def two_bodies(t: int) -> tuple[npt.NDArray[np.uint8], tuple[float, float], tuple[float, float]]:
    """Two dark bodies walking towards each other on a grey floor, far apart; which one is
    larger alternates from frame to frame (as two animals' moving regions do)."""
    frame = np.full((240, 320, 3), 160, dtype=np.uint8)
    left, right = (60.0 + 0.5 * t, 70.0), (260.0 - 0.5 * t, 170.0)
    for centre, bigger in ((left, t % 2 == 0), (right, t % 2 == 1)):
        axes = (26, 11) if bigger else (20, 8)
        cv2.ellipse(frame, (int(centre[0]), int(centre[1])), axes, 20, 0, 360, (50,) * 3, -1)
    return frame, left, right


@pytest.mark.parametrize("keep", [True, False], ids=["keep-to-one", "largest"])
def test_the_crop_stays_on_one_of_two_animals(keep: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Over 70 frames of two animals, the crop's centre stays on one of them from frame 30
    on; taking the largest region instead (the choice before) swaps between them."""
    monkeypatch.setattr(features, "KEEP_TO_ONE", keep)
    reducer = features.FrameReducer()
    on: list[int] = []
    for t in range(70):
        frame, left, right = two_bodies(t)
        reducer(frame)
        centre = reducer._centre  # the place the crop is cut around
        if t >= 30:
            assert centre is not None
            gaps = [float(np.hypot(centre[0] - a[0], centre[1] - a[1])) for a in (left, right)]
            on.append(int(np.argmin(gaps)))
    swaps = int(np.count_nonzero(np.diff(on)))
    assert (swaps == 0) == keep, swaps


def test_feature_rows_have_the_documented_length() -> None:
    """A frame, colour or luma, becomes FEATURE_LENGTH bytes."""
    reducer = features.FrameReducer()
    colour = reducer(ellipse_frame((100, 100), 30, tail=False))
    luma = reducer(np.full((240, 320), 90, dtype=np.uint8))
    assert [features.FEATURE_LENGTH] * 2 == [colour.size, luma.size]


@pytest.fixture(scope="module")
def pose_video(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    """A short rendered pose video with a hand at start and end and flicker frames."""
    folder = tmp_path_factory.mktemp("pose")
    video = render_pose_video(folder / "pose.mp4", seed=5, frames=900, flickers=4)
    return video.path, video


@pytest.mark.parametrize("n", [10, 30], ids=lambda n: f"n{n}")
def test_no_hand_or_flicker_frame_is_chosen(pose_video: tuple[Path, object], n: int) -> None:
    """On a rendered video with a hand and flicker, the choice holds none of those frames."""
    path, video = pose_video
    scan = frames.scan_video(path, reduce=features.FrameReducer())
    options = VideoOptions(frames_per_video=n, frame_range=(0.0, 1.0), context_frames=2)
    chosen = choose_frames(scan, options)
    distractor = video.distractor  # type: ignore[attr-defined]
    assert (n, []) == (len(chosen), [i for i in chosen if distractor[i]])


def test_coherence_fades_noise_and_keeps_what_is_held() -> None:
    """A column that holds its value for a while keeps its weight (> 0.9); jitter loses it
    (< 0.1)."""
    rng = np.random.default_rng(0)
    held = np.repeat(rng.normal(size=30), 20)
    columns = np.stack([held, rng.normal(size=600)], axis=1).astype(np.float32)
    weight = selection.coherence(columns)
    assert (True, True) == (weight[0] > 0.9, weight[1] < 0.1), weight


def test_a_hand_is_found_over_a_changing_usual_but_a_brief_pose_is_not() -> None:
    """Where the usual change steps up mid-video (two animals, a moved object), a hand that
    adds 0.1 of the frame for 90 frames lies under the whole-video limit but is found as a rise
    over the running usual; a rise as high for 15 frames (a still animal's rare pose) is not."""
    rng = np.random.default_rng(0)
    change = (0.04 + 0.003 * rng.normal(size=1200)).astype(np.float32)
    change[600:] += 0.06
    change[100:190] += 0.1
    change[800:815] += 0.1
    indices = np.arange(1200, dtype=np.int64)
    assert not selection.intrusion_rows(change)[100:190].any()
    found = np.flatnonzero(selection.local_intrusion_rows(change, indices))
    assert (True, True) == (set(range(110, 180)) <= set(found), found.max() < 190)


def test_a_still_animal_brief_rare_poses_are_found(tmp_path: Path) -> None:
    """A body that stays in place, moving only its limbs, visits rare poses 8 times for 8-16
    frames in 600: 20 frames hold at least 6 of the visits (the choice before coherence
    weighting, whose crop jittered between the moving limbs, held 3)."""
    video = render_pose_video(
        tmp_path / "still.mp4", seed=0, frames=600, flickers=0, hand=False, stationary=True
    )
    scan = frames.scan_video(video.path, reduce=features.FrameReducer())
    options = VideoOptions(frames_per_video=20, frame_range=(0.0, 1.0), context_frames=2)
    chosen = np.array(choose_frames(scan, options))
    visits = set(video.rare_visit[chosen].tolist()) - {-1}
    assert len(visits) >= 6, sorted(visits)


def test_smoothing_averages_close_frames_and_leaves_sparse_samples() -> None:
    """A one-frame spike is spread over the 5 samples within 2 frames when samples are
    consecutive frames; samples 10 frames apart (a long video) are left as they are."""
    rows = np.zeros((20, 1), dtype=np.float32)
    rows[10] = 5.0
    close = selection.smoothed_in_time(rows, np.arange(20, dtype=np.int64), frames=2)
    sparse = selection.smoothed_in_time(rows, np.arange(20, dtype=np.int64) * 10, frames=2)
    assert np.allclose(close[8:13, 0], 1.0) and close[[7, 13], 0].tolist() == [0.0, 0.0]
    assert np.array_equal(sparse, rows)


def test_a_second_choice_adds_the_poses_the_first_did_not_cover() -> None:
    """With the first choice's rows taken, the second lands on the clusters it missed.

    Twelve well-separated poses, the first four held ten times as long as the rest: a first
    choice of 6 takes six of them. Only excluding those rows, the next 6 return to poses
    already labeled (their other frames are still there; here all six again); counting them
    as covered, the next 6 are exactly the six poses not yet labeled.
    """
    centres = np.random.default_rng(3).normal(size=(12, 8)) * 10
    points, labels = clusters(centres, [300] * 4 + [30] * 8, seed=3)
    first = selection.choose_diverse_rows(points, 6)
    assert 6 == len(set(labels[first]))
    second = selection.choose_diverse_rows(points, 6, taken=first)
    assert 6 == len(set(second)) and not set(second) & set(first)
    assert set(range(12)) == set(labels[first]) | set(labels[second])
    assert second == selection.choose_diverse_rows(points, 6, taken=first)
    rest = np.setdiff1d(np.arange(points.shape[0]), first)
    excluded_only = rest[selection.choose_diverse_rows(points[rest], 6)]
    assert len(set(labels[first]) | set(labels[excluded_only])) < 12


def test_a_labeled_frame_between_samples_is_stood_for_by_the_nearest_sample() -> None:
    """A long video's samples are every k-th frame; a labeled frame maps to the nearest one."""
    indices = np.arange(0, 100, 10, dtype=np.int64)
    assert [0, 1, 9] == selection.rows_standing_for(indices, [4, 14, 95, 400])
    assert [0, 1] == selection.rows_standing_for(indices, [3, 5, 6, 8])
    assert [] == selection.rows_standing_for(indices, [])


def posed_features(seed: int = 0) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    """Feature rows of a recording holding 12 poses in turn, and the pose of each row.

    Poses 0-3 are held for 90 frames at a time, 4-11 for 15; each pose is a square at its own
    place in the frame and its own silhouette pattern, with a little noise on every frame.
    """
    rng = np.random.default_rng(seed)
    silhouettes = rng.integers(0, 256, size=(12, features.CROP_SIZE[0] * features.CROP_SIZE[1]))
    side = features.THUMB_SIZE[0]
    order = [0, 4, 1, 5, 2, 6, 3, 7, 0, 8, 1, 9, 2, 10, 3, 11]
    rows, poses = [], []
    for pose in order:
        thumb = np.full((side, side), 100.0)
        y, x = divmod(pose, 4)
        thumb[4 + 8 * y : 8 + 8 * y, 4 + 7 * x : 8 + 7 * x] = 180.0
        for _ in range(90 if pose < 4 else 15):
            noisy = np.concatenate([thumb.ravel(), silhouettes[pose]]) + rng.normal(0, 2, 2048)
            rows.append(np.clip(noisy, 0, 255))
            poses.append(pose)
    return np.asarray(rows, dtype=np.uint8), np.asarray(poses, dtype=np.int64)


@pytest.mark.parametrize("seed", [0, 1], ids=lambda s: f"seed{s}")
def test_frames_already_labeled_count_as_covering_their_poses(seed: int) -> None:
    """Through select_diverse_frames: a second 6 with the first 6 taken are the 6 other poses.

    Samples are 3 frames apart (as a long video's), so rows are not smoothed and each is its
    pose (this recording switches poses abruptly, and smoothing would blend a border row into
    a pose that is neither). Only excluding the first frames (NOVELTY off, the choice as it
    was), the second 6 repeat poses the first already holds.
    """
    rows, poses = posed_features(seed)
    indices = 3 * np.arange(rows.shape[0], dtype=np.int64)

    def pose_of(frames: list[int]) -> set[int]:
        return {int(p) for p in poses[np.searchsorted(indices, frames)]}

    first = selection.select_diverse_frames(rows, indices, 6).frames
    assert 6 == len(pose_of(first))
    taken = np.isin(indices, first)
    second = selection.select_diverse_frames(rows, indices, 6, taken=taken).frames
    assert 6 == len(set(second)) and not set(second) & set(first)
    assert set(range(12)) == pose_of(first) | pose_of(second)
    assert second == selection.select_diverse_frames(rows, indices, 6, taken=taken).frames
    old = selection.NOVELTY
    try:
        selection.NOVELTY = False
        again = selection.select_diverse_frames(rows, indices, 6, taken=taken).frames
    finally:
        selection.NOVELTY = old
    assert 6 == len(set(again)) and not set(again) & set(first)
    assert len(pose_of(first) | pose_of(again)) <= 8
