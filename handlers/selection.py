"""Choosing frames: pure functions over per-frame features, with no video in sight."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning

EMBED_DIMS = 32


def frame_window(
    frame_count: int, frame_range: tuple[float, float], context: int
) -> tuple[int, int]:
    """First and one-past-last frame that may be chosen.

    The window is the ``frame_range`` fraction of the video, shrunk by ``context`` frames at
    both ends so that every chosen frame has all its context frames in the video.
    """
    start = max(math.floor(frame_range[0] * frame_count), context)
    stop = min(math.ceil(frame_range[1] * frame_count), frame_count - context)
    return start, max(start, stop)


def embed_frames(thumbs: npt.NDArray[np.uint8], dims: int = EMBED_DIMS) -> npt.NDArray[np.float32]:
    """Project reduced frames onto their main axes of variation (PCA), for distances."""
    data = thumbs.astype(np.float32)
    dims = min(dims, data.shape[0], data.shape[1])
    if dims < 1 or float(data.std()) == 0.0:
        return np.zeros((data.shape[0], 1), dtype=np.float32)
    return PCA(n_components=dims, random_state=0).fit_transform(data).astype(np.float32)


def nearest_to_centres(
    features: npt.NDArray[np.float32], n: int, seed: int = 0
) -> list[int]:
    """Rows nearest each of ``n`` k-means centres, one distinct row per non-empty cluster."""
    n = min(n, features.shape[0])
    if n == 0:
        return []
    with warnings.catch_warnings():
        # Many identical frames leave fewer distinct clusters than asked; we top up below.
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = KMeans(n_clusters=n, n_init=3, random_state=seed).fit(features)
    chosen: list[int] = []
    for cluster, centre in enumerate(model.cluster_centers_):
        members = np.flatnonzero(model.labels_ == cluster)
        if members.size:
            distances = np.linalg.norm(features[members] - centre, axis=1)
            chosen.append(int(members[np.argmin(distances)]))
    return chosen


def farthest_point_fill(
    features: npt.NDArray[np.float32], chosen: Iterable[int], n: int
) -> list[int]:
    """Add rows, each the one farthest from all rows chosen so far, until there are ``n``."""
    picked = list(dict.fromkeys(chosen))
    if features.shape[0] == 0:
        return picked
    if not picked:
        picked.append(0)
    gap = np.min(
        np.linalg.norm(features[:, None, :] - features[None, picked, :], axis=2), axis=1
    )
    while len(picked) < min(n, features.shape[0]):
        gap[picked] = -1.0
        row = int(np.argmax(gap))
        picked.append(row)
        gap = np.minimum(gap, np.linalg.norm(features - features[row], axis=1))
    return picked


def choose_diverse_frames(
    features: npt.NDArray[np.float32],
    indices: npt.NDArray[np.int64],
    n: int,
    seed: int = 0,
) -> list[int]:
    """Choose ``n`` distinct frames that spread over the feature space.

    k-means with ``n`` centres and the frame nearest each centre, as labs know it; where
    identical frames leave clusters empty, farthest-point picks make up the count, so exactly
    ``min(n, len(indices))`` distinct frames come back.

    Args:
        features: one row per candidate frame.
        indices: the frame index of each row.
        n: how many frames to choose.
        seed: fixes k-means, so the same input gives the same frames.

    Returns:
        The chosen frame indices, sorted.
    """
    rows = nearest_to_centres(features, n, seed)
    rows = farthest_point_fill(features, rows, n)
    return sorted(int(indices[row]) for row in rows)


def spread_fill(
    chosen: Iterable[int], start: int, stop: int, n: int, exclude: frozenset[int]
) -> list[int]:
    """Top up ``chosen`` with frames evenly spaced over [start, stop) until there are ``n``."""
    picked = set(chosen)
    free = [i for i in range(start, stop) if i not in picked and i not in exclude]
    need = n - len(picked)
    if need > 0 and free:
        positions = np.linspace(0, len(free) - 1, num=min(need, len(free)))
        picked.update(free[int(round(p))] for p in positions)
    return sorted(picked)
