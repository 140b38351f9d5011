"""The numerical core of the inference handler, on synthetic input with known answers.

The last test is the measure the issue asks for: on predictions with errors injected at known
frames, the share recovered at N = 10 and 50 by our choice and by the Lightning Pose app's,
reimplemented here as the issue describes it. Run it with ``-s`` to see the figures.
"""

from __future__ import annotations

import numpy as np
import pytest

from handlers.inference import hardness
from tests.active_learning import lightning_pose_app, ours
from tests.synthetic_predictions import ERROR_KINDS, SyntheticPredictions, make_predictions


def straight_line(frames: int = 50, keypoints: int = 3, speed: float = 2.0) -> np.ndarray:
    """Keypoints moving right at ``speed`` px a frame, each 10 px below the previous one."""
    t = np.arange(frames, dtype=float)[:, None]
    x = np.repeat(t * speed, keypoints, axis=1)
    y = np.tile(np.arange(keypoints) * 10.0, (frames, 1))
    return np.stack([x, y], axis=-1)


def test_temporal_norm_of_straight_motion_is_the_speed() -> None:
    """Straight-line motion at 2 px a frame has a temporal norm of 2 after the first frame."""
    norm = hardness.temporal_norm(straight_line(speed=2.0))
    assert [0.0, 0.0, 0.0] == norm[0].tolist()
    np.testing.assert_allclose(norm[1:], 2.0)


def test_jump_and_return_is_zero_for_steady_motion_and_peaks_at_a_glitch() -> None:
    """Steady motion scores 0; a 30 px one-frame glitch scores 30 there and 15 beside it."""
    xy = straight_line(speed=5.0)
    np.testing.assert_allclose(hardness.jump_and_return(xy)[1:-1], 0.0, atol=1e-9)
    xy[20, 1, 1] += 30.0
    jump = hardness.jump_and_return(xy)
    assert [15.0, 30.0, 15.0] == jump[19:22, 1].round(6).tolist()
    assert 0.0 == float(jump[20, 0])


def test_jump_and_return_is_unknown_beside_a_missing_keypoint_and_at_the_ends() -> None:
    """Without both neighbours there is no midpoint: NaN, which never raises a flag."""
    xy = straight_line(speed=1.0)
    xy[10, 0] = np.nan
    jump = hardness.jump_and_return(xy)
    assert [True, True, True, False] == np.isnan(jump[[9, 10, 11, 12], 0]).tolist()
    assert np.isnan(jump[[0, -1]]).all()


def test_ensemble_spread_is_the_rms_distance_from_the_mean() -> None:
    """Two members 1 px left and right of each other's mean spread by 1 px."""
    base = straight_line(frames=5)
    shift = np.array([1.0, 0.0])
    members = np.stack([base + shift, base - shift])
    np.testing.assert_allclose(hardness.ensemble_spread(members), 1.0)


def test_pca_error_is_zero_on_the_pose_space_and_large_off_it() -> None:
    """Poses that only translate reconstruct exactly; one deformed pose does not."""
    rng = np.random.default_rng(0)
    shape = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 20.0]])
    xy = shape[None] + rng.uniform(0, 100, (200, 1, 2))
    xy[50, 2] += [15.0, -15.0]
    likelihood = np.ones((200, 3))
    error = hardness.pca_reconstruction_error(xy, likelihood, 0.9, 0.99)
    assert error is not None
    assert 50 == int(np.argmax(error.max(axis=1)))
    assert float(error[50].max()) > 10.0
    assert float(np.median(error)) < 0.5


def test_pca_error_projects_a_pose_with_a_missing_keypoint_from_the_rest() -> None:
    """A missing keypoint gets NaN; the keypoints present in that frame still get an error."""
    rng = np.random.default_rng(1)
    shape = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 20.0]])
    xy = shape[None] + rng.uniform(0, 100, (100, 1, 2))
    xy[7, 1] = np.nan
    error = hardness.pca_reconstruction_error(xy, np.ones((100, 3)), 0.9, 0.99)
    assert error is not None
    assert np.isnan(error[7, 1])
    assert np.isfinite(error[7, [0, 2]]).all()


def test_pca_error_leaves_out_a_keypoint_the_model_never_finds() -> None:
    """A keypoint missing in every frame gets NaN; the others are still measured."""
    rng = np.random.default_rng(1)
    shape = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 20.0]])
    xy = shape[None] + rng.uniform(0, 100, (100, 1, 2))
    xy[:, 2] = np.nan
    error = hardness.pca_reconstruction_error(xy, np.ones((100, 3)), 0.9, 0.99)
    assert error is not None
    assert np.isnan(error[:, 2]).all()
    assert np.isfinite(error[:, :2]).all()


def test_robust_z_scores_constant_columns_zero() -> None:
    """A constant column (a keypoint the model never moves) is never an outlier."""
    values = np.full((100, 2), 4.0)
    values[:, 1] = np.arange(100)
    assert 0.0 == float(np.abs(hardness.robust_z(values)[:, 0]).max())


def test_robust_z_finds_outliers_in_a_mostly_still_column() -> None:
    """With most values tied at 0 (MAD 0), the spread comes from the upper tail, not infinity."""
    rng = np.random.default_rng(2)
    values = np.zeros((1000, 1))
    values[600:, 0] = rng.uniform(0, 2, 400)
    values[900, 0] = 60.0
    z = hardness.robust_z(values)
    assert 900 == int(np.argmax(z))
    assert float(z[900, 0]) > 10


@pytest.mark.parametrize(
    ("likelihood", "expected"),
    [(0.95, 0.0), (1.7, 0.0), (0.45, 2.0), (0.0, hardness.SEVERITY_CAP)],
    ids=["confident", "score-above-1", "half-threshold", "zero"],
)
def test_likelihood_severity(likelihood: float, expected: float) -> None:
    """Below the threshold a flag weighs threshold / likelihood (capped); above 1 is fine."""
    column = np.array([[likelihood]] + [[0.99]] * 9)
    severity = hardness.likelihood_severity(column, 0.9)
    assert expected == pytest.approx(float(severity[0, 0]))


def test_a_likelihood_below_the_threshold_everywhere_raises_no_flag() -> None:
    """A keypoint below 0.9 in every frame (another scale) is not flagged by the threshold."""
    column = np.linspace(0.1, 0.5, 10)[:, None]
    assert 0.0 == float(hardness.likelihood_severity(column, 0.9).max())


def test_frame_scores_put_every_flagged_frame_above_every_unflagged_one() -> None:
    """Flagged frames score >= 1 and unflagged frames < 1, so top-ups follow the flags."""
    rng = np.random.default_rng(3)
    signal = rng.normal(10, 1, (300, 2))
    signal[[40, 41, 200], 0] = 40.0
    scores, weights = hardness.frame_scores({"jump": signal}, np.ones((300, 2)), 0.9, 3.0)
    flagged = set(np.flatnonzero(scores >= 1).tolist())
    assert {40, 41, 200} <= flagged
    assert 1.0 > float(np.delete(scores, sorted(flagged)).max())
    assert {"jump": ["a"]} == hardness.describe_flags(200, weights, ["a", "b"])


def choose(
    scores: np.ndarray, n: int, window: tuple[int, int] | None = None, **kw: object
) -> list[int]:
    """Choose with poses that differ frame by frame, so only scores and spacing decide."""
    poses = np.arange(scores.size, dtype=float)[:, None] * np.ones((1, 4))
    window = window or (0, scores.size)
    return hardness.choose_hard_frames(scores, poses, n, window, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("flagged", "n", "window", "exclude"),
    [
        ([], 10, (0, 500), ()),
        ([100, 300], 10, (0, 500), ()),
        (list(range(0, 500, 7)), 10, (0, 500), ()),
        (list(range(0, 500, 7)), 10, (200, 260), ()),
        ([100], 27, (90, 120), {95, 100, 101}),
        ([], 60, (0, 60), ()),
    ],
    ids=[
        "nothing-flagged",
        "few-flagged",
        "many-flagged",
        "narrow-range",
        "excluded",
        "range-exact",
    ],
)
def test_choice_returns_exactly_n_distinct_frames_inside_the_window(
    flagged: list[int], n: int, window: tuple[int, int], exclude: set[int]
) -> None:
    """Exactly N distinct frames come back, all in the window and none already labeled."""
    scores = np.linspace(0.5, 0.1, 500)
    scores[flagged] = 5.0
    chosen = choose(scores, n, window, exclude=exclude)
    assert n == len(set(chosen))
    assert all(window[0] <= f < window[1] and f not in exclude for f in chosen)


def test_choice_takes_the_strongest_flag_once_not_its_neighbours() -> None:
    """A glitch that lights up frames 100-104 gives one frame; the others go to other moments."""
    scores = np.full(1000, 0.1)
    scores[100:105] = [8.0, 9.0, 10.0, 9.0, 8.0]
    scores[[400, 700]] = 3.0
    assert [102, 400, 700] == choose(scores, 3)


def test_choice_discounts_a_pose_it_already_has() -> None:
    """Of ten equally hard frames in one resting pose, one is taken; the next is a new pose."""
    scores = np.full(1000, 0.1)
    resting = list(range(100, 1000, 100))
    scores[resting] = 10.0
    scores[50] = 6.0
    poses = np.zeros((1000, 4))
    poses[:, 0] = np.arange(1000) / 10.0
    poses[resting] = 500.0
    chosen = hardness.choose_hard_frames(scores, poses, 2, (0, 1000))
    assert 50 in chosen
    assert 1 == len(set(chosen) & set(resting))


def test_choice_is_the_same_for_the_same_input() -> None:
    """Same predictions, same frames."""
    data = make_predictions(frames=1500, errors_per_kind=5, seed=4)
    first = ours(data.xy, data.likelihood, 20)
    assert first == ours(data.xy, data.likelihood, 20)


# ----- the measure: recovery of injected errors, ours against the Lightning Pose app's ------------


def recovered(data: SyntheticPredictions, chosen: list[int]) -> int:
    return sum(1 for frame in chosen if frame in data.errors)


def test_ours_recovers_at_least_as_many_injected_errors_as_the_lightning_pose_app() -> None:
    """At N = 10 and 50, our choice finds at least as many injected errors as the app's."""
    datasets = [make_predictions(frames=3000, errors_per_kind=10, seed=seed) for seed in (0, 1)]
    injected = sum(len(data.errors) for data in datasets)
    print(
        f"\ninjected: {injected} single-frame errors ({', '.join(ERROR_KINDS)}) in 2 x 3000 frames"
    )
    print("share = recovered / injected (at most 2N / injected); hit rate = recovered / returned")
    print(f"{'N':>4} {'method':<34} {'returned':>8} {'recovered':>9} {'share':>6} {'hit rate':>8}")
    for n in (10, 50):
        rows = {
            "ours (likelihood threshold 0.9)": [ours(d.xy, d.likelihood, n) for d in datasets],
            "LP app (its default threshold 0)": [
                lightning_pose_app(d.xy, d.likelihood, n) for d in datasets
            ],
            "LP app (threshold 0.9)": [
                lightning_pose_app(d.xy, d.likelihood, n, 0.9) for d in datasets
            ],
        }
        found = {}
        for name, choices in rows.items():
            found[name] = sum(recovered(d, c) for d, c in zip(datasets, choices, strict=True))
            returned = sum(len(c) for c in choices)
            share, hits = found[name] / injected, found[name] / max(returned, 1)
            print(f"{n:>4} {name:<34} {returned:>8} {found[name]:>9} {share:>6.0%} {hits:>8.0%}")
        assert all(len(c) == n for c in rows["ours (likelihood threshold 0.9)"])
        assert found["ours (likelihood threshold 0.9)"] >= max(
            found["LP app (its default threshold 0)"], found["LP app (threshold 0.9)"]
        )


# ----- signals that hold through an episode ------------------------------------------------------


def two_walkers(frames: int = 300) -> np.ndarray:
    """Two four-keypoint animals walking apart in parallel, shape (frames, 8, 2)."""
    body = np.array([[0.0, 10.0], [-4.0, 5.0], [4.0, 5.0], [0.0, -12.0]])
    t = np.arange(frames, dtype=float)[:, None, None]
    first = body[None] + np.stack([t[..., 0] * 1.5, 100 + 0 * t[..., 0]], axis=-1)
    second = body[None] + np.stack([t[..., 0] * 1.5, 200 + 0 * t[..., 0]], axis=-1)
    noise = np.random.default_rng(3).normal(0, 0.3, (frames, 8, 2))
    return np.concatenate([first, second], axis=1) + noise


NAMES = [f"{animal}_{part}" for animal in ("a", "b") for part in ("nose", "le", "re", "tail")]


def test_animals_are_told_apart_by_their_name_prefix() -> None:
    assert [[0, 1], [2, 3]] == [
        sorted(g) for g in hardness.animal_groups(["m_h", "m_t", "f_h", "f_t"])
    ]
    assert [[0, 1, 2]] == hardness.animal_groups(["snout", "left_ear", "tail_base"])
    assert [[0, 1, 2]] == hardness.animal_groups(["m_head", "m_tail", "f_head"])


def test_carry_forward_fills_a_lost_keypoint_with_its_last_position() -> None:
    xy = np.array([[[1.0, 2.0]], [[np.nan, np.nan]], [[np.nan, np.nan]], [[5.0, 6.0]]])
    filled = hardness.carry_forward(xy)
    assert [[1, 2], [1, 2], [1, 2], [5, 6]] == filled[:, 0].tolist()


def test_an_identity_swap_is_found_whole_not_only_at_its_edges() -> None:
    xy = two_walkers()
    xy[100:160] = np.concatenate([xy[100:160, 4:], xy[100:160, :4]], axis=1)
    wrong = hardness.swapped_episodes(xy[:, :4], xy[:, 4:])
    assert list(range(100, 160)) == np.flatnonzero(wrong).tolist()
    assert np.all(hardness.swap_signal(xy, NAMES)[100:160] == 1.0)


def test_a_head_tail_swap_of_one_animal_is_found_for_those_keypoints_only() -> None:
    xy = two_walkers()
    xy[200:240, [4, 7]] = xy[200:240, [7, 4]]
    swapped = hardness.swap_signal(xy, NAMES)
    assert np.all(swapped[200:240, [4, 7]] == 1.0)
    assert 0 == swapped[:, :4].sum() and 0 == swapped[:200].sum() and 0 == swapped[240:].sum()


def test_clean_walkers_have_no_swap() -> None:
    assert 0 == hardness.swap_signal(two_walkers(), NAMES).sum()


def test_limb_deviation_grows_while_a_keypoint_drifts_off_its_body() -> None:
    xy = two_walkers()
    xy[100:150, 0, 1] += np.linspace(0, 30, 50)
    limb = hardness.limb_deviation(xy, NAMES)
    assert limb[149, 0] > 1.0 > 0.4 > limb[:100, 0].max()
    assert 0.4 > limb[:, 4:].max()


def test_low_likelihood_is_judged_on_the_recordings_own_scale() -> None:
    """A dip from 0.08 to 0.02 counts as much as one from 0.8 to 0.2; a flat score says nothing."""
    low = np.full((100, 2), 0.08)
    low[50, 0] = 0.02
    high = low * 10
    assert hardness.low_likelihood(low)[50, 0] == pytest.approx(0.75)
    assert hardness.low_likelihood(high)[50, 0] == pytest.approx(0.75)
    flat = 0.5 + np.random.default_rng(0).normal(0, 0.001, (100, 2))
    assert 0 == hardness.z_severity(hardness.low_likelihood(flat), 3.0, 0.05).sum()


def test_a_signal_flagging_most_frames_weighs_less() -> None:
    weights = np.zeros((100, 2))
    weights[:5, 0] = 1.0
    assert 1.0 == hardness.rarity(weights)
    weights[:50, 0] = 1.0
    assert 0.2 == pytest.approx(hardness.rarity(weights))


def test_motion_flags_at_the_edges_of_a_swap_are_dropped() -> None:
    swapped = np.zeros((10, 1), dtype=bool)
    swapped[3:6] = True
    assert [2, 3, 5, 6] == np.flatnonzero(hardness.swap_edges(swapped)[:, 0]).tolist()


def test_episodes_bridge_short_gaps_and_cut_long_runs() -> None:
    flagged = np.zeros(400, dtype=bool)
    flagged[[10, 12, 14, 30]] = True
    flagged[100:350] = True
    number = hardness.episodes(flagged, gap=2)
    assert number[10] == number[12] == number[14] != number[30]
    assert number[100] == number[199] != number[200] != number[300]


def test_later_frames_of_an_episode_count_less() -> None:
    scores = np.array([9.0, 9.0, 9.0, 4.0])
    episode = np.array([0, 0, 0, 1])
    priority = hardness.episode_priority([0, 1, 2, 3], scores, episode)
    decay = hardness.EPISODE_DECAY
    assert priority.tolist() == pytest.approx([9.0, 9 / 2**decay, 9 / 3**decay, 4.0])
    assert priority[1] < 9.0


def test_column_quantile_is_nanquantile_column_by_column() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(size=(1001, 4))
    values[rng.random(values.shape) < 0.3] = np.nan
    values[:, 3] = np.nan
    for q in (0.5, 0.9):
        with pytest.warns(RuntimeWarning):
            expected = np.nanquantile(values, q, axis=0)
        np.testing.assert_allclose(hardness.column_quantile(values, q), expected)


def test_column_quantiles_match_nanquantile_with_ties_and_uneven_gaps() -> None:
    """Partitions, not a sort: the same values on repeats (a tracker that holds still) and
    columns missing different numbers of cells."""
    rng = np.random.default_rng(1)
    values = np.round(rng.normal(size=(500, 5)) * 3)
    values[rng.random(values.shape) < 0.2] = np.nan
    values[:, 0] = 7.0
    values[:1, 4] = np.nan
    values[1:, 4] = np.nan  # a column with no number at all
    qs = (0.0, 0.1, 0.5, 0.9, 1.0)
    with pytest.warns(RuntimeWarning):
        expected = [np.nanquantile(values, q, axis=0) for q in qs]
    for got, want in zip(hardness.column_quantiles(values, qs), expected, strict=True):
        np.testing.assert_array_equal(got, want)


def test_pose_axes_span_the_same_space_as_an_svd() -> None:
    """The scatter matrix's eigenvectors keep the same three pose axes an SVD finds."""
    rng = np.random.default_rng(2)
    poses = rng.normal(size=(400, 3)) @ rng.normal(size=(3, 8)) + rng.normal(size=(400, 8)) * 1e-3
    basis = hardness.pca_basis(poses, 0.99)
    assert basis is not None
    _, axes = basis
    _, _, reference = np.linalg.svd(poses - poses.mean(axis=0), full_matrices=False)
    assert axes.shape[0] == 3
    np.testing.assert_allclose(axes.T @ axes, reference[:3].T @ reference[:3], atol=1e-9)


def test_ensemble_of_float32_members_as_a_list_scores_like_the_stacked_float64() -> None:
    """The handler keeps members as float32 and never stacks them; the spread is the same
    to far below a pixel."""
    rng = np.random.default_rng(3)
    base = straight_line(frames=50)
    members = [base + rng.normal(0, 1.0, base.shape) for _ in range(5)]
    stacked = hardness.ensemble_spread(np.stack(members))
    light = [m.astype(np.float32) for m in members]
    listed = hardness.ensemble_spread(light, hardness.ensemble_mean(light))
    np.testing.assert_allclose(listed, stacked, atol=1e-4)
    assert not np.allclose(stacked, 0.0)


def test_body_length_is_the_animals_nose_to_tail() -> None:
    """Two walkers of nose-to-tail 22 px: the body length is that, whatever their distance."""
    assert 21.0 < hardness.body_length(two_walkers(), NAMES) < 23.0


def test_a_swap_is_as_large_as_the_distance_between_the_swapped_tracks() -> None:
    """An identity swap of walkers 100 px apart puts each keypoint about 100 px off; a
    head/tail swap the nose-to-tail distance; unswapped keypoints 0."""
    xy = two_walkers()
    xy[100:160] = np.concatenate([xy[100:160, 4:], xy[100:160, :4]], axis=1)
    xy[200:240, [4, 7]] = xy[200:240, [7, 4]]
    swapped = hardness.swap_signal(xy, NAMES) > 0
    size = hardness.swap_size(xy, swapped)
    assert 95 < size[100:160].min() and size[100:160].max() < 125
    assert 20 < size[200:240, [4, 7]].min() and size[200:240, [4, 7]].max() < 24
    assert 0 == size[:100].sum() and 0 == size[200:240, :4].sum()


def test_error_size_counts_a_keypoint_on_the_other_animal_in_body_lengths() -> None:
    """A nose moved onto the other animal (100 px) makes a larger error, and so a larger
    factor, than a nose 8 px off; both more than an untouched frame's 1."""
    xy = two_walkers()
    xy[50:60, 0, 1] += 8.0
    xy[150:160, 0] = xy[150:160, 4]
    likelihood = np.ones(xy.shape[:2])
    signals = hardness.model_signals(xy, likelihood, 0.9, 0.99, keypoints=NAMES)
    factor = hardness.frame_size_factor(xy, signals, NAMES)
    assert factor[150:160].min() == hardness.SIZE_CAP
    assert 1.0 == factor[10] == factor[50:60].min()
    assert np.all(hardness.error_size(xy, signals, NAMES)[150:160] > 60)


def test_a_severe_long_episode_gets_more_frames_than_each_mild_one() -> None:
    """A real model's worst frames come in long episodes: one 90-frame stretch with a nose on
    the other animal earns more of 10 frames than any of five 30-frame stretches with a nose
    10 px off, and each of those still earns at least one."""
    xy = two_walkers(900)
    severe = range(100, 190)
    mild = [range(start, start + 30) for start in (300, 420, 540, 660, 780)]
    xy[100:190, 0] = xy[100:190, 4] + np.array([3.0, 0.0])
    for span in mild:
        xy[span.start : span.stop, 0, 1] += 10.0
    chosen = ours(xy, np.ones(xy.shape[:2]), 10, keypoints=NAMES)
    in_severe = sum(f in severe for f in chosen)
    in_mild = [sum(f in span for f in chosen) for span in mild]
    assert 10 == len(set(chosen))
    assert in_severe > max(in_mild) and min(in_mild) >= 1, (chosen, in_severe, in_mild)


def test_in_a_long_bad_stretch_the_frames_with_the_largest_errors_come_first() -> None:
    """A 300-frame stretch with a nose 10 px off, and in its middle 50 frames with the nose on
    the other animal: all 4 frames chosen show the nose on the other animal. Without the
    error sizes, the flags alone send two of them to the stretch's edges."""
    xy = two_walkers(900)
    xy[100:400, 0, 1] += 10.0
    xy[250:300, 0] = xy[250:300, 4] + np.array([3.0, 0.0])
    likelihood = np.ones(xy.shape[:2])
    signals = hardness.model_signals(xy, likelihood, 0.9, 0.99, keypoints=NAMES)
    scores, _ = hardness.frame_scores(signals, likelihood, 0.9, 3.0)
    factor = hardness.frame_size_factor(xy, signals, NAMES)
    poses = hardness.pose_features(xy)
    by_size = hardness.choose_hard_frames(scores, poses, 4, (2, 898), factor=factor)
    by_flags = hardness.choose_hard_frames(scores, poses, 4, (2, 898))
    assert all(250 <= f < 300 for f in by_size), by_size
    assert 2 >= sum(250 <= f < 300 for f in by_flags), by_flags


def test_sizes_never_put_a_flagged_frame_below_an_unflagged_one() -> None:
    """Scaled by its run's largest error, a flagged frame still outranks any frame without a
    flag: frames 10-19 (flagged, small errors beside a large one) beat frame 50 (0.9)."""
    scores = np.full(100, 0.1)
    scores[10:21] = 3.0
    scores[50] = 0.9
    factor = np.ones(100)
    factor[20] = hardness.SIZE_CAP
    chosen = hardness.choose_hard_frames(
        scores, np.zeros((100, 2)), 4, (0, 100), spacing=0, factor=factor
    )
    assert 50 not in chosen and 20 in chosen, chosen
