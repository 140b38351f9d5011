"""Synthetic model predictions with errors injected at known frames, and a CSV writer for them.

Two animals of four keypoints each (nose, left ear, right ear, tail base) walk, turn and rest
in an arena; the "model" sees them with a little noise and high likelihood, and sometimes
with low likelihood at the right place (an occlusion: not an error). Errors are injected at
known, well separated single frames:

- ``jump``: one keypoint lands 25-60 px away, with high likelihood (confidently wrong);
- ``identity``: the two animals' keypoints swap for one frame (a tracker's identity flip);
- ``left_right``: the ears of one animal swap (a mirror-image pose);
- ``low_likelihood``: one or two keypoints a few pixels off, with likelihood 0.05-0.4.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

BODY = np.array([[0.0, 18.0], [-7.0, 9.0], [7.0, 9.0], [0.0, -20.0]])
"""Keypoint offsets from the animal's centre when it faces +y: nose, left ear, right ear, tail."""
PARTS = ("nose", "left_ear", "right_ear", "tail")
KEYPOINTS = tuple(f"{animal}_{part}" for animal in ("a", "b") for part in PARTS)
ERROR_KINDS = ("jump", "identity", "left_right", "low_likelihood")


@dataclass(frozen=True)
class SyntheticPredictions:
    """Predictions with injected errors.

    Attributes:
        xy: shape (frames, 8, 2).
        likelihood: shape (frames, 8).
        errors: frame index -> the kind of error injected there.
    """

    xy: FloatArray
    likelihood: FloatArray
    errors: dict[int, str]


def walk(rng: np.random.Generator, frames: int, arena: float) -> tuple[FloatArray, FloatArray]:
    """A centre path and heading that alternate between moving and resting."""
    moving = np.repeat(rng.random(frames // 100 + 1) < 0.6, 100)[:frames]
    speed = np.where(moving, rng.uniform(1.0, 4.0, frames), 0.0)
    turn = np.cumsum(rng.normal(0, 0.08, frames) * (moving + 0.1))
    heading = np.cumsum(turn * 0.02) + rng.uniform(0, 2 * np.pi)
    step = np.stack([np.cos(heading), np.sin(heading)], axis=1) * speed[:, None]
    centre = arena / 2 + np.cumsum(step, axis=0)
    # Fold the path back into the arena, as walls would.
    centre = np.abs((centre + arena) % (2 * arena) - arena)
    return np.clip(centre, 40, arena - 40), heading


def animal_keypoints(centre: FloatArray, heading: FloatArray) -> FloatArray:
    """Keypoints of one animal, shape (frames, 4, 2), rotated to its heading."""
    angle = heading - np.pi / 2
    cos, sin = np.cos(angle)[:, None], np.sin(angle)[:, None]
    x = centre[:, None, 0] + cos * BODY[None, :, 0] - sin * BODY[None, :, 1]
    y = centre[:, None, 1] + sin * BODY[None, :, 0] + cos * BODY[None, :, 1]
    return np.stack([x, y], axis=-1)


def make_predictions(
    frames: int = 3000, errors_per_kind: int = 10, seed: int = 0, arena: float = 600.0
) -> SyntheticPredictions:
    """Predictions for two animals with ``errors_per_kind`` single-frame errors of each kind."""
    rng = np.random.default_rng(seed)
    xy, likelihood = clean_predictions(rng, frames, arena)
    count = errors_per_kind * len(ERROR_KINDS)
    slots = rng.choice(np.arange(1, frames // 20 - 1), size=count, replace=False) * 20
    slots += rng.integers(-4, 5, size=count)
    kinds = np.repeat(ERROR_KINDS, errors_per_kind)
    errors = {int(frame): str(kind) for frame, kind in zip(slots, kinds, strict=True)}
    for frame, kind in errors.items():
        inject(rng, xy, likelihood, frame, kind)
    return SyntheticPredictions(xy, likelihood, errors)


def clean_predictions(
    rng: np.random.Generator, frames: int, arena: float
) -> tuple[FloatArray, FloatArray]:
    """Two animals seen with a little noise and high likelihood, 1% of it a little lower."""
    parts = [animal_keypoints(*walk(rng, frames, arena)) for _ in range(2)]
    xy = np.concatenate(parts, axis=1) + rng.normal(0, 0.7, (frames, 8, 2))
    likelihood = rng.uniform(0.95, 1.0, (frames, 8))
    occluded = rng.random((frames, 8)) < 0.01
    likelihood[occluded] = rng.uniform(0.6, 0.95, int(occluded.sum()))
    return xy, likelihood


def inject(
    rng: np.random.Generator, xy: FloatArray, likelihood: FloatArray, frame: int, kind: str
) -> None:
    """Make frame ``frame`` wrong in the way ``kind`` says (in place)."""
    if kind == "jump":
        keypoint = rng.integers(8)
        angle = rng.uniform(0, 2 * np.pi)
        xy[frame, keypoint] += rng.uniform(25, 60) * np.array([np.cos(angle), np.sin(angle)])
    elif kind == "identity":
        xy[frame] = np.concatenate([xy[frame, 4:], xy[frame, :4]])
    elif kind == "left_right":
        first = 4 * rng.integers(2)
        xy[frame, [first + 1, first + 2]] = xy[frame, [first + 2, first + 1]]
    else:
        keypoints = rng.choice(8, size=rng.integers(1, 3), replace=False)
        xy[frame, keypoints] += rng.normal(0, 5, (len(keypoints), 2))
        likelihood[frame, keypoints] = rng.uniform(0.05, 0.4, len(keypoints))


def write_csv(
    path: Path, xy: FloatArray, likelihood: FloatArray, scorer: str = "synthetic"
) -> Path:
    """Write predictions in the DeepLabCut / Lightning Pose layout (three header rows)."""
    keypoints = KEYPOINTS[: xy.shape[1]]
    lines = [
        ",".join(["scorer", *[scorer] * (3 * len(keypoints))]),
        ",".join(["bodyparts", *[k for k in keypoints for _ in range(3)]]),
        ",".join(["coords", *["x", "y", "likelihood"] * len(keypoints)]),
    ]
    for frame in range(xy.shape[0]):
        cells = []
        for k in range(len(keypoints)):
            x, y = xy[frame, k]
            cells += [f"{x:.3f}", f"{y:.3f}", f"{likelihood[frame, k]:.4f}"]
        lines.append(",".join([str(frame), *cells]))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# ----- error processes: errors that last, as a real model makes them ---------------------------

PROCESSES = ("identity", "left_right", "head_tail", "drift", "occlusion")
"""Multi-frame errors: animals swapped, ears swapped, nose and tail swapped, one keypoint
drifting slowly away and snapping back, a keypoint occluded (low likelihood, wandering)."""
CALIBRATIONS = ("calibrated", "always_low", "always_high", "score_above_1")
"""How the likelihood is written: as made, x 0.1, 0.99-1 everywhere (errors too), 2.5 x + 0.3."""


@dataclass(frozen=True)
class SyntheticEpisodes:
    """Predictions with error episodes: ``episodes`` holds (first, one past last, process)."""

    xy: FloatArray
    likelihood: FloatArray
    episodes: list[tuple[int, int, str]]

    def recovered(self, chosen: list[int]) -> int:
        """Episodes with at least one chosen frame inside."""
        return sum(1 for a, b, _ in self.episodes if any(a <= f < b for f in chosen))

    def in_error(self, chosen: list[int]) -> int:
        """Chosen frames that fall inside an episode."""
        return sum(1 for f in chosen if any(a <= f < b for a, b, _ in self.episodes))


def make_episodes(
    processes: tuple[str, ...],
    calibration: str = "calibrated",
    frames: int = 3000,
    count: int = 8,
    seed: int = 0,
    lengths: tuple[int, int] = (5, 200),
) -> SyntheticEpisodes:
    """``count`` error episodes of the given processes (in turn), each 5-200 frames long,
    one in each of ``count`` equal slices of the recording, then the likelihood rewritten."""
    rng = np.random.default_rng(seed)
    xy, likelihood = clean_predictions(rng, frames, 600.0)
    slot = frames // count
    found = []
    for number in range(count):
        process = processes[number % len(processes)]
        length = int(rng.integers(lengths[0], min(lengths[1], slot - 20) + 1))
        first = number * slot + int(rng.integers(10, slot - length - 9))
        stop = first + length
        animal = 4 * int(rng.integers(2))
        span = slice(first, stop)
        if process == "identity":
            xy[span] = np.concatenate([xy[span, 4:], xy[span, :4]], axis=1)
        elif process == "left_right":
            xy[span, [animal + 1, animal + 2]] = xy[span, [animal + 2, animal + 1]]
        elif process == "head_tail":
            xy[span, [animal, animal + 3]] = xy[span, [animal + 3, animal]]
        elif process == "drift":
            keypoint = animal + int(rng.integers(4))
            angle = rng.uniform(0, 2 * np.pi)
            ramp = np.linspace(0, rng.uniform(20, 40), length)[:, None]
            xy[span, keypoint] += ramp * np.array([np.cos(angle), np.sin(angle)])
            # Only the part more than 10 px off is an error worth a label.
            first += int(np.searchsorted(ramp[:, 0], 10.0))
        else:
            keypoint = animal + int(rng.integers(4))
            wander = np.cumsum(rng.normal(0, 2.0, (length, 2)), axis=0)
            xy[span, keypoint] += wander + rng.normal(0, 6.0, (length, 2))
            likelihood[span, keypoint] = rng.uniform(0.02, 0.4, length)
        found.append((first, stop, process))
    if calibration == "always_low":
        likelihood = likelihood * 0.1
    elif calibration == "always_high":
        likelihood = rng.uniform(0.99, 1.0, likelihood.shape)
    elif calibration == "score_above_1":
        likelihood = likelihood * 2.5 + 0.3
    return SyntheticEpisodes(xy, likelihood, found)
