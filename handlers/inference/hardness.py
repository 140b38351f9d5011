"""How hard a frame is for a trained model, without ground truth; and which frames to label.

Pixel error goes with signals we can compute from a model's own output: low likelihood, a
keypoint that moves far or jumps away and back, a pose a PCA of confident poses cannot
reconstruct, and models of an ensemble that disagree. Every signal is an array of shape
(frames, keypoints). Each is turned into flags (likelihood below a threshold, robust z-score
above a threshold), the flags of a frame add up to its score, and the choice takes the
highest-scoring frames while spreading them over different poses and moments.

All functions are pure and work on numpy arrays; nothing here reads a file.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
WeightArray = npt.NDArray[np.float32]

MAD_TO_SD = 1.4826
"""Scales a median absolute deviation to a standard deviation for normal data."""
Q90_TO_SD = 1.2816
"""The 90th percentile of a normal distribution lies this many SDs above its median."""
SEVERITY_CAP = 5.0
"""A flag weighs at most this many flags, so one wild keypoint cannot outvote all others."""
POOL_PER_FRAME = 3
"""Candidates considered per frame wanted when spreading the choice over poses, at least."""
MAX_FIT_ROWS = 20000
"""Poses the pose PCA is fitted on at most."""
MIN_PRESENT_SHARE = 0.5
"""A keypoint present in fewer frames than this share is left out of the pose PCA."""
MAX_POOL = 4000
"""Candidates considered at most (every flagged frame up to this), to bound the work."""
SAME_POSE_SHARE = 0.1
"""Poses closer than this share of how much poses vary count as one pose when choosing."""
LIKELIHOOD_MAX_FLAGGED_SHARE = 0.5
"""A likelihood threshold that flags more of a keypoint's frames than this says nothing."""
LIKELIHOOD_MIN_SPREAD = 0.05
"""Likelihood dips are measured in at least this share of the keypoint's median likelihood."""
SWAP_RATIO = 0.5
"""Two tracks swap between frames when swapping them costs at most this share of keeping them."""
SWAP_MIN_STEPS = 4.0
"""... and keeping them moves at least this many of the recording's median steps."""
LIMB_PARTNERS = 3
"""Nearest keypoints of the same animal each keypoint's limb lengths are measured to."""
LIMB_MIN_SPREAD = 0.1
"""Limb stretches count in steps of at least this share of the limb: a tracker that repeats
positions leaves most limbs exactly at their median, and a yardstick of nothing would flag
every frame that moves."""
LIMB_SEVERITY_CAP = 4 * SEVERITY_CAP
"""A limb stretched to several body lengths is a keypoint on another animal or off in the
arena, the largest errors in pixels: its weight keeps growing further than other flags'."""
RARE_SHARE = 0.1
"""A signal flagging more of the frames than this weighs less, in proportion (``rarity``)."""
EPISODE_MAX_FRAMES = 100
"""An error episode longer than this counts as several, so a long one can earn a few frames."""
EPISODE_DECAY = 0.75
"""The k-th frame of an episode counts 1 / k ** this: 0.5 lets a far worse episode earn a few
frames before a barely flagged one its first; 1 spreads the budget more evenly."""
SWAP_SEVERITY = 3.0
"""Flag weight of each keypoint in a swapped episode (a flag weighs 1 to SEVERITY_CAP)."""
SIZE_CAP = 4.0
"""A frame's flags count at most this many times more for the size of its error (``size_factor``):
a keypoint on the other animal, several body lengths off, is worth more labels than a
keypoint a tenth of a body length off, where every signal fires alike."""
SIZE_FREE = 1.0
"""... counting only the part of an error beyond this share of a body length."""


# ----- signals: arrays of shape (frames, keypoints) ----------------------------------------


def length(vectors: FloatArray) -> FloatArray:
    """``np.linalg.norm(vectors, axis=-1)`` for (x, y) vectors, to the last bit, without a
    reduction over an axis of two (three times faster on an hour's keypoints)."""
    x, y = vectors[..., 0], vectors[..., 1]
    return np.sqrt(x * x + y * y)


def temporal_norm(xy: FloatArray) -> FloatArray:
    """Distance each keypoint moved since the previous frame (0 for the first frame).

    Lightning Pose's ``temporal_norm`` metric, computed from the keypoints.
    """
    step = length(np.diff(xy, axis=0))
    return np.concatenate([np.zeros((1, xy.shape[1])), step])


def jump_and_return(xy: FloatArray) -> FloatArray:
    """Distance of each keypoint from the midpoint of its previous and next positions.

    A one-frame glitch at t scores its full size at t and half at t-1 and t+1, while steady
    motion, however fast, scores about 0: unlike the temporal norm, it points at the glitch
    frame and not at every frame of a fast movement. NaN where a neighbour is missing (and
    at the first and last frame): there is no midpoint to compare with.
    """
    jump = np.full(xy.shape[:2], np.nan)
    if xy.shape[0] > 2:
        jump[1:-1] = length(xy[1:-1] - (xy[:-2] + xy[2:]) / 2)
    return jump


def ensemble_spread(
    members_xy: Sequence[FloatArray], centre: FloatArray | None = None
) -> FloatArray:
    """Root-mean-square distance of each member's keypoint from the ensemble mean.

    One member at a time, in float64 whatever the members' type, so an hour of five models
    needs no stacked copy of all of them.

    Args:
        members_xy: each member's positions, shape (frames, keypoints, 2); a stacked array
            (members, frames, keypoints, 2) works too.
        centre: their ``ensemble_mean``, when already computed.
    """
    if centre is None:
        centre = ensemble_mean(members_xy)
    total = np.zeros(centre.shape[:2])
    count = np.zeros(centre.shape[:2], dtype=np.uint16)
    for member in members_xy:
        offset = member - centre
        offset *= offset  # in place: an hour's member is 28 MB in float64
        squared = offset[..., 0] + offset[..., 1]
        del offset
        seen = np.isfinite(squared)
        total += np.where(seen, squared, 0.0)
        count += seen
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sqrt(total / count)  # no member there: NaN


def ensemble_mean(members_xy: Sequence[FloatArray]) -> FloatArray:
    """Mean over ensemble members, ignoring members that have none there (one at a time, in
    float64); any per-frame array works (positions, metrics)."""
    total = np.zeros(np.shape(members_xy[0]))
    count = np.zeros(np.shape(members_xy[0]), dtype=np.uint16)
    for member in members_xy:
        seen = np.isfinite(member)
        total += np.where(seen, member, 0.0)
        count += seen
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / count


def mean_of(arrays: Sequence[FloatArray]) -> FloatArray:
    """``np.mean(arrays, axis=0)`` (the same sums, in the same order) without stacking them."""
    total = np.array(arrays[0], dtype=np.float64)
    for array in arrays[1:]:
        total += array
    return total / len(arrays)


def confident_rows(
    xy: FloatArray, likelihood: FloatArray, threshold: float
) -> npt.NDArray[np.bool_]:
    """Frames where every keypoint is present and at least ``threshold`` likely."""
    present = np.all(np.isfinite(xy), axis=(1, 2))
    return present & np.all(likelihood >= threshold, axis=1)


def pca_basis(poses: FloatArray, explained: float) -> tuple[FloatArray, FloatArray] | None:
    """Mean and principal axes keeping ``explained`` of the pose variance.

    Always leaves at least one axis out, so that an error remains to be measured.

    Args:
        poses: shape (frames, 2 * keypoints), no NaN.

    Returns:
        (mean, axes as rows), or None when there are too few poses to fit.
    """
    if poses.shape[0] < 3 or poses.shape[1] < 2:
        return None
    mean = poses.mean(axis=0)
    centred = poses - mean
    # Eigenvectors of the small (2K x 2K) scatter matrix are the SVD's axes, without the
    # (frames x 2K) left factor an SVD computes and throws away: a tenth of the time.
    eigenvalues, eigenvectors = np.linalg.eigh(centred.T @ centred)
    variance = np.clip(eigenvalues[::-1], 0.0, None)
    axes = eigenvectors[:, ::-1].T
    total = float(variance.sum())
    if total == 0.0:
        return mean, axes[:0]
    share = np.cumsum(variance) / total
    keep = int(np.searchsorted(share, explained) + 1)
    return mean, axes[: min(keep, poses.shape[1] - 1, poses.shape[0])]


def pca_reconstruction_error(
    xy: FloatArray, likelihood: FloatArray, threshold: float, explained: float
) -> FloatArray | None:
    """Per keypoint, how far the pose lies from the pose space of the confident frames.

    Lightning Pose's ``pca_singleview_error``, but fitted on the model's own confident
    predictions, so it works for outputs that never came with that file. A frame with missing
    keypoints is projected from the keypoints it has (least squares); a missing keypoint
    gets NaN. A keypoint missing in most frames is left out of the pose (NaN throughout), so
    that one never-found keypoint does not leave no frame to fit on.

    Returns:
        shape (frames, keypoints), or None when too few frames have the pose's keypoints.
    """
    usable = np.mean(np.all(np.isfinite(xy), axis=2), axis=0) >= MIN_PRESENT_SHARE
    if not usable.all():
        part = pca_reconstruction_error(xy[:, usable], likelihood[:, usable], threshold, explained)
        if part is None:
            return None
        partial = np.full(likelihood.shape, np.nan)
        partial[:, usable] = part
        return partial
    frames, keypoints, _ = xy.shape
    flat = xy.reshape(frames, 2 * keypoints)
    fit_rows = confident_rows(xy, likelihood, threshold)
    if fit_rows.sum() < 2 * keypoints + 1:
        fit_rows = np.all(np.isfinite(flat), axis=1)
    fit = flat[fit_rows]
    # Evenly spaced rows describe the pose space as well as all of an hour's worth, faster.
    basis = pca_basis(fit[:: max(1, fit.shape[0] // MAX_FIT_ROWS)], explained)
    if basis is None:
        return None
    mean, axes = basis
    centred = flat - mean
    complete = np.all(np.isfinite(flat), axis=1)
    if complete.all():  # no copy of an hour's poses to pick the complete rows
        recon = centred @ axes.T @ axes
    else:
        recon = np.full_like(flat, np.nan)
        recon[complete] = centred[complete] @ axes.T @ axes
    # Rows missing the same keypoints share one least-squares problem: solve it once for all.
    masks, pattern = np.unique(np.isfinite(flat[~complete]), axis=0, return_inverse=True)
    rows = np.flatnonzero(~complete)
    for number, seen in enumerate(masks):
        group = rows[pattern.ravel() == number]
        if seen.any() and axes.shape[0]:
            coef, *_ = np.linalg.lstsq(axes[:, seen].T, centred[group][:, seen].T, rcond=None)
            recon[group] = coef.T @ axes
        else:
            recon[group] = 0.0
    centred -= recon  # the error, in place
    del recon
    return length(centred.reshape(frames, keypoints, 2))


def animal_groups(keypoints: Sequence[str]) -> list[list[int]]:
    """Keypoint indices per animal, aligned by body part; one group when there is one animal.

    Multi-animal names are ``animal_part`` (``female_head``, ``male_head``): a split works when
    every prefix has the same set of parts. Otherwise all keypoints are one animal.
    """
    split = [name.split("_", 1) for name in keypoints]
    if len(keypoints) < 2 or any(len(parts) != 2 for parts in split):
        return [list(range(len(keypoints)))]
    animals: dict[str, dict[str, int]] = {}
    for index, (animal, part) in enumerate(split):
        animals.setdefault(animal, {})[part] = index
    parts = sorted(next(iter(animals.values())))
    if len(animals) < 2 or any(sorted(found) != parts for found in animals.values()):
        return [list(range(len(keypoints)))]
    return [[found[part] for part in parts] for found in animals.values()]


def carry_forward(xy: FloatArray) -> FloatArray:
    """Each missing keypoint at its last known position, so a track lost for a while still
    compares with where it comes back (vectorized over frames)."""
    seen = np.all(np.isfinite(xy), axis=-1)
    if seen.all():
        return xy  # nothing to carry (an hour's gather is 0.1 s)
    index = np.where(seen, np.arange(xy.shape[0])[:, None], 0)
    np.maximum.accumulate(index, axis=0, out=index)
    return np.take_along_axis(xy, index[:, :, None], axis=0)


def distance(a: FloatArray, b: FloatArray) -> FloatArray:
    """Euclidean distance over the last axis (x, y); ``np.hypot`` is faster than ``norm``."""
    return np.hypot(a[..., 0] - b[..., 0], a[..., 1] - b[..., 1])


def part_mean(values: FloatArray) -> FloatArray:
    """Mean over parts (axis 1) ignoring NaN; a single part is returned as it is."""
    return values[:, 0] if values.shape[1] == 1 else np.nanmean(values, axis=1)


def swapped_episodes(first: FloatArray, second: FloatArray) -> npt.NDArray[np.bool_]:
    """Frames where two tracks are swapped relative to the rest of the recording.

    A swap between frames t-1 and t is where exchanging the tracks at t matches frame t-1
    far better than keeping them (the assignment cost of a swap below ``SWAP_RATIO`` of
    keeping, and keeping a jump of several median steps; swapping back needs only a jump of
    one median step). Every swap flips the state; the state the recording spends least time
    in is the wrong one. So a swap lasting 200 frames
    is found whole, not only at its two edges; a one-frame glitch of a swap is a one-frame
    episode.

    Args:
        first, second: shape (frames, parts, 2), the same parts in the same order, no NaN
            needed (see ``carry_forward``; NaN never counts as a swap).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        keep = part_mean(distance(first[1:], first[:-1]) + distance(second[1:], second[:-1]))
        swap = part_mean(distance(first[1:], second[:-1]) + distance(second[1:], first[:-1]))
    return swap_state(keep, swap)


def swap_state(keep: FloatArray, swap: FloatArray) -> npt.NDArray[np.bool_]:
    """``swapped_episodes`` from its costs between consecutive frames (frames - 1 of each):
    of keeping the two tracks, and of exchanging them."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        # Median of the steps that move: a tool that repeats positions writes many zeros.
        moved = keep[keep > 0]
        floor = SWAP_MIN_STEPS * float(np.median(moved)) if moved.size else np.inf
    cheaper = swap < SWAP_RATIO * keep
    strong = np.flatnonzero(cheaper & (keep > floor)) + 1
    # Swapping back may be a smaller move (the animals met): a weaker swap ends an episode.
    weak = np.flatnonzero(cheaper & (keep > floor / SWAP_MIN_STEPS)) + 1
    state = np.zeros(keep.size + 1, dtype=bool)
    is_strong = np.isin(weak, strong)
    swapped, since = False, 0
    for frame, firm in zip(weak.tolist(), is_strong.tolist(), strict=True):
        if firm or swapped:
            if swapped:
                state[since:frame] = True
            swapped, since = not swapped, frame
    if swapped:
        state[since:] = True
    return ~state if 2 * int(state.sum()) > state.size else state


def swap_signal(xy: FloatArray, keypoints: Sequence[str] | None) -> FloatArray:
    """Per keypoint, 1 in frames where it is swapped with another track, else 0.

    Identity swaps between animals (whole animals exchanged) and swaps between two keypoints
    of one animal (left/right, head/tail): both are two tracks exchanged for a while.
    """
    filled = carry_forward(xy)
    frames, count, _ = xy.shape
    swapped = np.zeros((frames, count), dtype=bool)
    groups = animal_groups(keypoints) if keypoints is not None else [list(range(count))]
    for a in range(len(groups)):
        for b in range(a + 1, len(groups)):
            both = groups[a] + groups[b]
            wrong = swapped_episodes(filled[:, groups[a]], filled[:, groups[b]])
            swapped[:, both] |= wrong[:, None]
    # Every pair of keypoints of an animal: each keypoint's steps once, the crossed steps
    # per pair, on contiguous x and y rows (the same sums ``swapped_episodes`` makes). In
    # float32, 2.5 times faster: a swap is a jump of several median steps, far above 1e-7.
    x = filled[..., 0].T.astype(np.float32, order="C")
    y = filled[..., 1].T.astype(np.float32, order="C")
    step = np.hypot(x[:, 1:] - x[:, :-1], y[:, 1:] - y[:, :-1])
    for group in groups:
        for i, first in enumerate(group):
            for second in group[i + 1 :]:
                keep = step[first] + step[second]
                swap = np.hypot(x[first, 1:] - x[second, :-1], y[first, 1:] - y[second, :-1])
                swap += np.hypot(x[second, 1:] - x[first, :-1], y[second, 1:] - y[first, :-1])
                wrong = swap_state(keep, swap)
                if wrong.any():
                    swapped[:, [first, second]] |= wrong[:, None]
    return swapped.astype(np.float64)


def limb_deviation(xy: FloatArray, keypoints: Sequence[str] | None) -> FloatArray:
    """Per keypoint, how far its distances to its nearest body partners stray from usual.

    Each keypoint is paired with its ``LIMB_PARTNERS`` nearest keypoints of the same animal
    (by median distance); the signal is the largest relative deviation of those distances
    from their medians. A keypoint drifting off, or a nose and tail swapped, stretches its
    limbs for as long as the error lasts, whatever the animal does meanwhile.
    """
    frames, count, _ = xy.shape
    deviation = np.zeros((count, frames))  # a row per keypoint, transposed at the end
    groups = animal_groups(keypoints) if keypoints is not None else [list(range(count))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for group in groups:
            if len(group) < 2:
                continue
            part = xy[:: max(1, frames // MAX_FIT_ROWS), group]
            px, py = part[..., 0], part[..., 1]
            pairs = np.hypot(px[:, :, None] - px[:, None, :], py[:, :, None] - py[:, None, :])
            size = len(group)
            typical = column_quantile(pairs.reshape(-1, size * size), 0.5).reshape(size, size)
            del pairs
            np.fill_diagonal(typical, np.inf)
            partners = np.argsort(np.nan_to_num(typical, nan=np.inf), axis=1)
            # Contiguous x and y rows, and each limb measured once for both its ends.
            x, y = np.ascontiguousarray(xy[:, group, 0].T), np.ascontiguousarray(xy[:, group, 1].T)
            lengths: dict[tuple[int, int], FloatArray] = {}
            for i, keypoint in enumerate(group):
                for j in partners[i, : min(LIMB_PARTNERS, len(group) - 1)].tolist():
                    usual = typical[i, j]
                    if not np.isfinite(usual) or usual <= 0:
                        continue
                    limb = (min(i, j), max(i, j))
                    if limb not in lengths:
                        lengths[limb] = np.hypot(x[i] - x[j], y[i] - y[j])
                    stray = lengths[limb] - usual
                    np.abs(stray, out=stray)
                    stray /= usual
                    np.fmax(deviation[keypoint], stray, out=deviation[keypoint])
    return np.ascontiguousarray(deviation.T)


def body_length(xy: FloatArray, keypoints: Sequence[str] | None) -> float:
    """How big one animal is, in pixels: per animal, the median over frames of the largest
    distance between two of its keypoints; the median over animals (NaN with one keypoint)."""
    groups = animal_groups(keypoints) if keypoints is not None else [[*range(xy.shape[1])]]
    part = xy[:: max(1, xy.shape[0] // MAX_FIT_ROWS)]
    sizes = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for group in groups:
            if len(group) < 2:
                continue
            points = part[:, group]
            gaps = length(points[:, :, None] - points[:, None, :])
            sizes.append(float(np.nanmedian(np.nanmax(gaps, axis=(1, 2)))))
    return float(np.nanmedian(sizes)) if sizes and np.isfinite(sizes).any() else float("nan")


def partner_length(xy: FloatArray, keypoints: Sequence[str] | None) -> FloatArray:
    """Per keypoint, the median distance to its nearest keypoint of the same animal (NaN
    alone). A limb's relative stretch times this is a lower bound of how far the keypoint
    moved off: any of its limbs changed by at least that many pixels."""
    groups = animal_groups(keypoints) if keypoints is not None else [[*range(xy.shape[1])]]
    part = xy[:: max(1, xy.shape[0] // MAX_FIT_ROWS)]
    nearest = np.full(xy.shape[1], np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for group in groups:
            if len(group) < 2:
                continue
            points = part[:, group]
            typical = np.nanmedian(length(points[:, :, None] - points[:, None, :]), axis=0)
            np.fill_diagonal(typical, np.inf)
            nearest[group] = np.where(np.isfinite(typical.min(axis=1)), typical.min(axis=1), np.nan)
    return nearest


def swap_size(xy: FloatArray, swapped: npt.NDArray[np.bool_]) -> FloatArray:
    """Per swapped cell, its largest distance to another keypoint swapped in that frame (the
    track it took the place of, or one beside it): how far off a swap puts it, in pixels."""
    size = np.zeros(swapped.shape)
    rows = np.flatnonzero(swapped.sum(axis=1) >= 2)
    if rows.size:
        points = xy[rows]
        gaps = length(points[:, :, None] - points[:, None, :])
        both = swapped[rows][:, :, None] & swapped[rows][:, None, :]
        size[rows] = np.nanmax(np.where(both, np.nan_to_num(gaps, nan=0.0), 0.0), axis=2)
    return size


def error_size(
    xy: FloatArray, signals: Mapping[str, FloatArray], keypoints: Sequence[str] | None
) -> FloatArray:
    """Per frame, how many pixels its worst keypoint is likely off, from the signals measured
    in pixels: the pose-PCA error and the ensemble spread beyond their keypoint's median, a
    limb's stretch (times the keypoint's nearest limb: ``partner_length``) and a swap (the
    distance to the track it took the place of). 0 where none says anything.

    Flags count how many signals fire, not how far off a keypoint is; on a real model's bad
    stretch every signal fires on every frame, and this tells the frames apart.
    """
    size = np.zeros(xy.shape[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for name in ("pca_singleview", "ensemble_spread"):
            if name in signals:
                # Beyond the keypoint's usual: a PCA of two animals that move apart leaves
                # tens of pixels on every frame, and that floor is no error.
                beyond = signals[name] - column_quantile(signals[name], 0.5)
                np.fmax(size, np.nanmax(beyond, axis=1), out=size)
        if "limb" in signals:
            limb_px = signals["limb"] * partner_length(xy, keypoints)
            np.fmax(size, np.nanmax(limb_px, axis=1), out=size)
        if "swap" in signals:
            np.fmax(size, swap_size(xy, signals["swap"] > 0).max(axis=1), out=size)
    return np.nan_to_num(size, nan=0.0)


def size_factor(size: FloatArray, body: float) -> FloatArray:
    """How much more a frame's flags count for the size of its error: 1 + its size in body
    lengths beyond ``SIZE_FREE`` of one, at most ``SIZE_CAP``; 1 when the body length is
    unknown. Errors smaller than that (an ear a few pixels off) all count alike, so they
    still share the budget episode by episode."""
    if not np.isfinite(body) or body <= 0:
        return np.ones_like(size)
    return np.clip(1.0 + size / body - SIZE_FREE, 1.0, SIZE_CAP)


def frame_size_factor(
    xy: FloatArray, signals: Mapping[str, FloatArray], keypoints: Sequence[str] | None
) -> FloatArray:
    """``size_factor`` of ``error_size``: the ``factor`` ``frame_scores`` takes."""
    return size_factor(error_size(xy, signals, keypoints), body_length(xy, keypoints))


def low_likelihood(likelihood: FloatArray) -> FloatArray:
    """How far each likelihood dips below its keypoint's usual, on the recording's own scale.

    The median minus the likelihood, divided by the keypoint's median: a model that scores
    above 1, or below 0.1 everywhere, is judged against itself, and ``robust_z`` then asks
    whether the dip is unusual for this recording. A dip counts in steps of at least
    ``LIKELIHOOD_MIN_SPREAD`` (see ``frame_scores``), so a likelihood that never separates
    frames (constant, or noise on a flat level) raises no flag.
    """
    median = column_quantile(likelihood, 0.5)
    scale = np.where(np.abs(median) > 0, np.abs(median), 1.0)
    return (median - likelihood) / scale


def model_signals(
    xy: FloatArray,
    likelihood: FloatArray,
    likelihood_threshold: float,
    pca_explained: float,
    given: Mapping[str, FloatArray] | None = None,
    members_xy: Sequence[FloatArray] | None = None,
    keypoints: Sequence[str] | None = None,
) -> dict[str, FloatArray]:
    """Every error-like signal for one video's predictions, each (frames, keypoints).

    Metrics the model wrote itself (``given``: ``temporal_norm``, ``pca_singleview``,
    ``pca_multiview``) are used as they are; the ones it did not write are computed from the
    keypoints (all but ``pca_multiview``, which needs the camera views). ``jump`` points at
    the glitch frame itself; ``ensemble_spread`` needs two members or more. ``swap`` (needs
    the keypoint names to tell animals apart), ``limb`` and ``low_likelihood`` hold through
    episodes.
    """
    signals = dict(given or {})
    if "temporal_norm" not in signals:
        signals["temporal_norm"] = temporal_norm(xy)
    signals["jump"] = jump_and_return(xy)
    if "pca_singleview" not in signals:
        error = pca_reconstruction_error(xy, likelihood, likelihood_threshold, pca_explained)
        if error is not None:
            signals["pca_singleview"] = error
    if members_xy is not None and len(members_xy) > 1:
        signals["ensemble_spread"] = ensemble_spread(members_xy)
    signals["low_likelihood"] = low_likelihood(likelihood)
    signals["limb"] = limb_deviation(xy, keypoints)
    signals["swap"] = swap_signal(xy, keypoints)
    return signals


# ----- flags and scores ----------------------------------------------------------------------


def column_quantile(values: FloatArray, q: float) -> FloatArray:
    """Per column, the ``q`` quantile ignoring NaN (linear, as ``np.nanquantile``; NaN for an
    all-NaN column)."""
    return column_quantiles(values, (q,))[0]


def column_quantiles(values: FloatArray, qs: Sequence[float]) -> list[FloatArray]:
    """``column_quantile`` for each of ``qs``, without sorting.

    ``np.nanquantile`` walks column by column in Python, and a sort of an hour's frames
    costs more than needed. Here each column's numbers are taken apart once and each
    quantile read by ``ranked_quantile``.
    """
    results = np.full((len(qs), values.shape[1]), np.nan)
    for column, row in enumerate(np.ascontiguousarray(values.T)):  # a column a row
        numbers = row[~np.isnan(row)]  # a copy, partitioned in place
        if numbers.size:
            results[:, column] = [ranked_quantile(numbers, q) for q in qs]
    return list(results)


def ranked_quantile(numbers: FloatArray, q: float) -> float:
    """The ``q`` quantile of ``numbers`` (no NaN, at least one), linear as ``np.quantile``.

    Its rank is put in place by a one-rank partition (of ``numbers``, in place), and the rank
    below it is the largest value left of it: the same two values, and so the same result,
    as a sort gives.
    """
    last = numbers.size - 1
    position = q * last
    low = int(np.floor(position))
    high = min(low + 1, last)
    numbers.partition(high)
    above = numbers[high]
    below = numbers[:high].max() if low < high else above
    return float(below + (above - below) * (position - low))


def column_robust_stats(values: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per column: median, 90th percentile and median absolute deviation (NaN ignored),
    from one pass over each column's numbers (``robust_z`` on an hour's signals)."""
    stats = np.full((3, values.shape[1]), np.nan)
    for column, row in enumerate(np.ascontiguousarray(values.T)):
        numbers = row[~np.isnan(row)]
        if numbers.size:
            median = ranked_quantile(numbers, 0.5)
            upper = ranked_quantile(numbers, 0.9)
            numbers -= median
            np.abs(numbers, out=numbers)
            stats[:, column] = median, upper, ranked_quantile(numbers, 0.5)
    return stats[0], stats[1], stats[2]


def robust_spread(
    values: FloatArray,
    centre: FloatArray,
    upper_quantile: FloatArray | None = None,
    deviation: FloatArray | None = None,
) -> FloatArray:
    """Per column, a standard deviation estimated from the bulk of the values.

    The median absolute deviation, scaled; where over half the values tie (a keypoint that
    rests, or a tool that repeats the last position) that is 0, so the spread of the upper
    tail, (90th percentile - median) / 1.2816, stands in; then the plain SD (computed only
    when a column needs it). ``upper_quantile`` and ``deviation`` (the median absolute
    deviation): when already known.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        if deviation is None:
            deviation = column_quantile(np.abs(values - centre), 0.5)
        spread = MAD_TO_SD * deviation
        if upper_quantile is None:
            upper_quantile = column_quantile(values, 0.9)
        upper = (upper_quantile - centre) / Q90_TO_SD
        spread = np.where(spread > 0, spread, upper)
        if not np.all(spread > 0):
            spread = np.where(spread > 0, spread, np.nanstd(values, axis=0))
    return np.where(np.isfinite(spread) & (spread > 0), spread, np.inf)


def robust_z(values: FloatArray, min_spread: float = 0.0) -> FloatArray:
    """Per column, (value - median) / robust spread; NaN stays NaN, a constant column gives 0.

    Median and a robust spread rather than mean and SD, so that the glitches we look for do
    not widen the yardstick they are measured with. ``min_spread`` keeps noise on a nearly
    flat column from becoming a yardstick of nothing.
    """
    centre, upper, deviation = column_robust_stats(values)
    spread = np.maximum(robust_spread(values, centre, upper, deviation), min_spread)
    z = values - centre
    z /= spread
    return z


def z_severity(
    values: FloatArray, z_threshold: float, min_spread: float = 0.0, cap: float = SEVERITY_CAP
) -> FloatArray:
    """Weight of each cell's flag: z / threshold where z > threshold (capped), else 0."""
    return severity(robust_z(values, min_spread), z_threshold, cap)


def severity(z: FloatArray, z_threshold: float, cap: float = SEVERITY_CAP) -> FloatArray:
    """``z_severity`` from z-scores already computed."""
    ratio = z / z_threshold  # one array, worked in place: an hour's are 14 MB each
    below = ~(ratio > 1.0)  # NaN too
    np.minimum(ratio, cap, out=ratio)
    ratio[below] = 0.0
    return ratio


def likelihood_severity(likelihood: FloatArray, threshold: float) -> FloatArray:
    """Weight of each low-likelihood flag: threshold / likelihood where below it (capped).

    The same scale as ``z_severity`` (how far past the threshold), so a keypoint the model
    barely sees weighs as much as one that jumps far.

    A threshold that flags most of a keypoint's frames (a likelihood on another scale, or
    always low) separates nothing and weighs 0 for that keypoint; ``low_likelihood`` judges
    such a keypoint against its own recording instead.
    """
    if threshold <= 0:
        return np.zeros_like(likelihood)
    below = likelihood < threshold
    telling = np.mean(below, axis=0) <= LIKELIHOOD_MAX_FLAGGED_SHARE
    ratio = np.maximum(likelihood, 0.0)  # one array, worked in place
    with np.errstate(divide="ignore"):
        np.divide(threshold, ratio, out=ratio)
    np.minimum(ratio, SEVERITY_CAP, out=ratio)
    ratio[~(below & telling)] = 0.0
    return ratio


def near_miss(zscores: Iterable[FloatArray], z_threshold: float) -> FloatArray:
    """Per frame, how close its worst keypoint came to a flag, in [0, 1); orders the rest.

    Args:
        zscores: each signal's ``robust_z``.
    """
    closest = None
    for z in zscores:
        # A missing cell counts as 0 (NaN skipped; 0 is the floor of the clip below).
        ratio = np.nan_to_num(np.fmax.reduce(z, axis=1), nan=0.0) / z_threshold
        closest = ratio if closest is None else np.maximum(closest, ratio)
    if closest is None:
        return np.zeros(0)
    return np.clip(closest, 0.0, 0.999)


def frame_scores(
    signals: Mapping[str, FloatArray],
    likelihood: FloatArray,
    likelihood_threshold: float,
    z_threshold: float,
) -> tuple[FloatArray, dict[str, WeightArray]]:
    """Score every frame: the weighted count of its flags, or its near miss when it has none.

    A flagged frame scores 1 plus its weighted flags (each signal's weights scaled by its
    ``rarity``), any unflagged frame less than 1, so topping up from unflagged frames takes
    the next most suspicious ones. Scores are summed in float64; the weights kept for
    saying why are float32 (an hour's seven signals: 50 MB less at the peak).

    Args:
        signals: error-like metrics, each shape (frames, keypoints); high is bad.
        likelihood: shape (frames, keypoints).

    Returns:
        The score per frame, and each signal's flag weights (for saying why a frame was chosen).
    """
    weights: dict[str, WeightArray] = {}
    total = np.zeros(likelihood.shape[0])
    closest = np.zeros(likelihood.shape[0])
    for name, w, z in signal_weights(signals, likelihood, likelihood_threshold, z_threshold):
        if z is not None:
            closest = np.maximum(closest, near_miss([z], z_threshold))
        w *= rarity(w)
        total += w.sum(axis=1)
        weights[name] = w.astype(np.float32)
    return np.where(total > 0, 1.0 + total, closest), weights


def signal_weights(
    signals: Mapping[str, FloatArray],
    likelihood: FloatArray,
    likelihood_threshold: float,
    z_threshold: float,
) -> Iterator[tuple[str, FloatArray, FloatArray | None]]:
    """Each signal's flag weights before ``rarity``, and its z-scores where graded by them;
    one at a time, so that an hour's arrays are not all held at once."""
    special = ("swap", "low_likelihood", "limb")
    beside = swap_edges(signals["swap"] > 0) if "swap" in signals else None
    for name, values in signals.items():
        if name not in special:
            z = robust_z(moved(name, values))
            w = severity(z, z_threshold)
            if beside is not None and name in ("temporal_norm", "jump"):
                w = np.where(beside, 0.0, w)
            yield name, w, z
    if "low_likelihood" in signals:
        low = signals["low_likelihood"]
        yield "low_likelihood", z_severity(low, z_threshold, LIKELIHOOD_MIN_SPREAD), None
    if "limb" in signals:
        limb = z_severity(signals["limb"], z_threshold, LIMB_MIN_SPREAD, LIMB_SEVERITY_CAP)
        yield "limb", limb, None
    if "swap" in signals:
        yield "swap", SWAP_SEVERITY * signals["swap"], None
    yield "likelihood", likelihood_severity(likelihood, likelihood_threshold), None


def moved(name: str, values: FloatArray) -> FloatArray:
    """Motion signals without exact zeros: a tool that repeats the last position (on fly-pair,
    four frames in ten) writes steps of 0 that are no motion, and would shrink the yardstick
    until every real step is flagged."""
    if name in ("temporal_norm", "jump"):
        return np.where(values == 0, np.nan, values)
    return values


def swap_edges(swapped: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """Cells on either side of where a swap starts or ends.

    A swap makes motion signals (temporal norm, jump) light up at its edges, on both sides:
    they say no more than the swap itself, and would give an episode's first and last frames
    the weight of two errors each. So those flags are dropped there.
    """
    before = swapped.copy()
    before[1:] = swapped[:-1]
    after = swapped.copy()
    after[:-1] = swapped[1:]
    return (swapped != before) | (swapped != after)


def rarity(weights: FloatArray | WeightArray) -> float:
    """How much a signal's flags say: 1, or less when it flags more than ``RARE_SHARE`` of frames.

    A flag raised on most frames (a likelihood on its own scale, a tracker that jitters
    everywhere) does not tell one frame from another; its weight shrinks in proportion.
    """
    share = float(np.mean(weights.max(axis=1) > 0)) if weights.size else 0.0
    return min(1.0, RARE_SHARE / share) if share > 0 else 1.0


def describe_flags(
    frame: int, weights: Mapping[str, FloatArray | WeightArray], keypoints: Sequence[str]
) -> dict[str, list[str]]:
    """The flags of one frame: each flagged signal with its keypoints, strongest first.

    For example ``{"jump": ["male_head"], "likelihood": ["male_head", "female_thorax"]}``.
    """
    flagged = {}
    for name, w in weights.items():
        row = w[frame]
        order = [int(k) for k in np.argsort(-row, kind="stable") if row[k] > 0]
        if order:
            flagged[name] = (float(row.sum()), [keypoints[k] for k in order])
    ranked = sorted(flagged.items(), key=lambda item: -item[1][0])
    return {name: names for name, (_, names) in ranked}


# ----- choosing frames ------------------------------------------------------------------------


def spaced_peaks(order: Sequence[int], spacing: int, limit: int) -> list[int]:
    """Walk frames in ``order`` and keep each that is more than ``spacing`` from all kept.

    One glitch lights up a few neighbouring frames; keeping only the strongest of them
    spends the labeling budget on different moments.
    """
    if not order:
        return []
    blocked = np.zeros(max(order) + spacing + 2, dtype=bool)
    kept: list[int] = []
    for frame in order:
        if len(kept) >= limit:
            break
        if not blocked[frame]:
            kept.append(frame)
            blocked[max(frame - spacing, 0) : frame + spacing + 1] = True
    return kept


def pose_features(xy: FloatArray) -> FloatArray:
    """Flattened keypoints with missing ones set to that keypoint's median, for distances."""
    flat = xy.reshape(xy.shape[0], -1).copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        fill = np.nan_to_num(np.nanmedian(flat, axis=0), nan=0.0)
    missing = ~np.isfinite(flat)
    flat[missing] = np.take(fill, np.nonzero(missing)[1])
    return flat


def pose_scale(poses: FloatArray) -> float:
    """How much poses vary: the root-mean-square spread of a coordinate over frames."""
    return float(np.sqrt(np.mean(np.var(poses, axis=0)))) if poses.size else 0.0


def diverse_by_pose(
    frames: Sequence[int], scores: FloatArray, poses: FloatArray, n: int, same_pose: float
) -> list[int]:
    """Pick ``n`` of ``frames`` greedily by score, discounting poses close to ones picked.

    A frame's score counts in full when its pose is at least ``same_pose`` (RMS distance per
    coordinate) from every pose picked so far, and in proportion when closer; so a model that
    fails again and again on one resting pose gets one or two of those frames, not all, while
    different failures are never traded for weaker ones merely to fill pose clusters.
    """
    remaining = list(frames)
    if not remaining:
        return []
    width = np.sqrt(poses.shape[1])
    gap = np.full(len(remaining), np.inf)
    picked: list[int] = []
    while remaining and len(picked) < n:
        discount = np.minimum(gap / same_pose, 1.0) if same_pose > 0 else np.ones(len(gap))
        best = int(np.argmax(scores[remaining] * discount))
        frame = remaining.pop(best)
        gap = np.delete(gap, best)
        picked.append(frame)
        if remaining:
            distance = np.linalg.norm(poses[remaining] - poses[frame], axis=1) / width
            gap = np.minimum(gap, distance)
    return picked


def run_starts(flagged: npt.NDArray[np.bool_], gap: int) -> npt.NDArray[np.bool_]:
    """True where a run of flagged frames starts: a flagged frame more than ``gap`` frames
    after the last flagged frame before it (shorter gaps are bridged). Vectorized."""
    frames = np.arange(flagged.size)
    last = np.where(flagged, frames, -(gap + 2))
    np.maximum.accumulate(last, out=last)
    previous = np.concatenate([[-(gap + 2)], last[:-1]])
    return flagged & (frames - previous > gap + 1)


def episodes(flagged: npt.NDArray[np.bool_], gap: int) -> npt.NDArray[np.int64]:
    """Number the error episodes: runs of flagged frames, bridging gaps up to ``gap`` frames.

    Every unflagged frame is an episode of its own; one longer than ``EPISODE_MAX_FRAMES``
    counts as one per that many frames.
    """
    frames = np.arange(flagged.size)
    starts = run_starts(flagged, gap)
    number = np.maximum(np.cumsum(starts) - 1, 0)
    first = np.flatnonzero(starts)[number] if starts.any() else frames
    # A long episode is cut into pieces of EPISODE_MAX_FRAMES, each earning a frame a round.
    pieces = flagged.size // EPISODE_MAX_FRAMES + 1
    flagged_number = number * pieces + (frames - first) // EPISODE_MAX_FRAMES
    alone = (int(starts.sum()) + 1) * pieces + frames
    return np.where(flagged, flagged_number, alone)


def episode_priority(
    pool: Sequence[int], scores: FloatArray, episode: npt.NDArray[np.int64]
) -> FloatArray:
    """Scores of ``pool`` (strongest first) divided by 1 + how many of its episode came before.

    A long swap lights up hundreds of frames; its second frame counts half, its third a third,
    so twenty different episodes get twenty frames and one long one a few, while an episode
    far worse than the rest can still earn a second frame before a barely flagged one.
    """
    seen: dict[int, int] = {}
    priority = scores.copy()
    for frame in pool:
        rank = seen.get(int(episode[frame]), 0)
        seen[int(episode[frame])] = rank + 1
        priority[frame] = scores[frame] / (1 + rank) ** EPISODE_DECAY
    return priority


def within_run(factor: FloatArray, flagged: npt.NDArray[np.bool_], gap: int) -> FloatArray:
    """Each flagged frame's ``factor`` over the largest in its run of flagged frames (gaps up
    to ``gap`` bridged, as ``episodes`` does, without cutting long runs); 1 elsewhere."""
    scale = np.ones(factor.size)
    if not flagged.any():
        return scale
    run = np.cumsum(run_starts(flagged, gap))[flagged]  # 1, 2, ... for the flagged frames
    largest = np.zeros(int(run.max()) + 1)
    np.maximum.at(largest, run, factor[flagged])
    scale[flagged] = factor[flagged] / np.where(largest[run] > 0, largest[run], 1.0)
    return scale


def choose_hard_frames(
    scores: FloatArray,
    poses: FloatArray,
    n: int,
    window: tuple[int, int],
    exclude: Iterable[int] = (),
    spacing: int = 4,
    factor: FloatArray | None = None,
) -> list[int]:
    """Choose ``n`` distinct frames the model finds hardest, spread over episodes and poses.

    0. With ``factor`` (``frame_size_factor``), a flagged frame's flags are scaled by its
       error size relative to the largest of its run of flagged frames (``within_run``):
       where every signal fires on every frame of a long bad stretch, the frames with a
       keypoint on the other animal come first, and the stretch's pieces with the largest
       errors earn the most frames; distinct episodes still compete by their flags alone.

    1. Candidates strongest first, at most one per ``spacing`` frames: one glitch lights up
       a few neighbouring frames, and only its strongest is kept.
    2. Frames with a full flag's weight (score 2) form episodes (``episodes``); each frame's
       score is divided by 1 + the frames of its episode ahead of it (``episode_priority``).
    3. A greedy pick by that priority that discounts poses close to those already picked
       (``diverse_by_pose``).
    4. Top up from the next most suspicious frames, first keeping the spacing, then not, so
       exactly ``min(n, frames available)`` come back.

    Args:
        scores: per frame, from ``frame_scores``.
        poses: per frame, from ``pose_features``.
        n: frames wanted.
        window: first and one-past-last frame that may be chosen (range and context margins).
        exclude: frames that must not be chosen (already labeled).
        spacing: chosen frames are more than this many frames apart while candidates last.
        factor: per frame, how much larger its error looks (``frame_size_factor``).

    Returns:
        The chosen frame indices, sorted.
    """
    if factor is not None:  # a flagged frame stays above every unflagged one (score 1)
        scores = 1.0 + (scores - 1.0) * within_run(factor, scores >= 2.0, spacing)
    start, stop = window
    allowed = np.zeros(scores.size, dtype=bool)
    allowed[start:stop] = True
    excluded = [f for f in exclude if 0 <= f < scores.size]
    allowed[excluded] = False
    candidates = np.flatnonzero(allowed)
    if candidates.size == 0 or n <= 0:
        return []
    # Stable sort: equal scores go in frame order, so the same input gives the same frames.
    order = [int(f) for f in candidates[np.argsort(-scores[candidates], kind="stable")]]
    flagged = int(np.sum(scores[candidates] >= 1.0))
    pool = spaced_peaks(order, spacing, min(max(POOL_PER_FRAME * n, flagged), MAX_POOL))
    same_pose = SAME_POSE_SHARE * pose_scale(poses[candidates])
    priority = episode_priority(pool, scores, episodes(scores >= 2.0, spacing))
    chosen = diverse_by_pose(pool, priority, poses, n, same_pose)
    chosen = spaced_peaks([*chosen, *order], spacing, n)
    if len(chosen) < n:
        taken = set(chosen)
        chosen += [f for f in order if f not in taken][: n - len(chosen)]
    return sorted(chosen)
