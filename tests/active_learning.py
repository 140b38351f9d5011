"""Two ways to choose the frames to label from a model's predictions, for tests and benchmarks.

``ours`` is what the inference handler does (handlers/hardness.py with the config's
defaults); ``lightning_pose_app`` is the known approach as issue 4 describes the Lightning Pose
app's, reimplemented here so both run on the same arrays in the same process.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from sklearn.cluster import KMeans

from handlers.inference import hardness

FloatArray = npt.NDArray[np.float64]


def ours(
    xy: FloatArray,
    likelihood: FloatArray,
    n: int,
    likelihood_threshold: float = 0.9,
    members_xy: FloatArray | None = None,
    keypoints: Sequence[str] | None = None,
) -> list[int]:
    """Our choice, as the handler makes it with the default config (context margin 2)."""
    signals = hardness.model_signals(
        xy, likelihood, likelihood_threshold, 0.99, members_xy=members_xy, keypoints=keypoints
    )
    scores, _ = hardness.frame_scores(signals, likelihood, likelihood_threshold, 3.0)
    factor = hardness.frame_size_factor(xy, signals, keypoints)
    window = (2, xy.shape[0] - 2)
    poses = hardness.pose_features(xy)
    return hardness.choose_hard_frames(scores, poses, n, window, factor=factor)


def random_frames(xy: FloatArray, likelihood: FloatArray, n: int, seed: int = 0) -> list[int]:
    """``n`` distinct frames drawn at random inside the handler's window (context margin 2)."""
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(np.arange(2, xy.shape[0] - 2), size=n, replace=False).tolist())


def lightning_pose_app(
    xy: FloatArray,
    likelihood: FloatArray,
    n: int,
    likelihood_threshold: float = 0.0,
    z: float = 3.0,
) -> list[int]:
    """The known approach, as the issue describes the Lightning Pose app's.

    Per keypoint, flag likelihood below the threshold (the app's default is 0) and |z| > 3 of
    each metric (temporal norm and pose-PCA error, given as if the model had written those
    files); keep frames above the median keypoint motion; score = number of flags; keep the
    10 x N highest with a score above 0; k-means on their keypoint coordinates (frames with a
    missing keypoint dropped); take the highest-scoring frame of each cluster.
    """
    pca = hardness.pca_reconstruction_error(xy, likelihood, 0.9, 0.99)
    metrics = [hardness.temporal_norm(xy), *([pca] if pca is not None else [])]
    kept = xy.copy()
    kept[likelihood < likelihood_threshold] = np.nan
    flags_of_moving = []
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows and columns
        steps = np.nanmean(np.linalg.norm(np.diff(kept, axis=0), axis=2), axis=1)
        motion = np.nan_to_num(np.concatenate([[0.0], steps]), nan=0.0)
        moving = np.flatnonzero(motion > np.percentile(motion, 50))
        for metric in metrics:
            values = metric[moving]
            zscores = (values - np.nanmean(values, axis=0)) / np.nanstd(values, axis=0)
            flags_of_moving.append((np.abs(np.nan_to_num(zscores)) > z).sum(axis=1))
    flags = (likelihood[moving] < likelihood_threshold).sum(axis=1) + np.sum(
        flags_of_moving, axis=0
    )
    top = np.argsort(-flags, kind="stable")[: 10 * n]
    top = top[flags[top] > 0]
    frames, scores = moving[top], flags[top]
    complete = np.all(np.isfinite(xy[frames]), axis=(1, 2))
    frames, scores = frames[complete], scores[complete]
    if frames.size == 0:
        return []
    labels = KMeans(n_clusters=min(n, frames.size), n_init=10, random_state=0).fit_predict(
        xy[frames].reshape(frames.size, -1)
    )
    return sorted(int(frames[labels == c][np.argmax(scores[labels == c])]) for c in set(labels))
