"""Rendered two-camera sessions with known 3-D poses: a top camera and a side camera.

A stick figure (nose, three spine points, tail tip, four paws) walks over the floor. Three
common poses are held most of the time; four rare poses are visited twice each for 8-16
frames: two that only the top camera sees (the tail or the head swung sideways: a change in
y) and two that only the side camera sees (rearing, the tail raised: a change in z). The pose
of a view is the body-frame keypoints as that camera projects them (x, y from the top; x, z
from the side), so it ignores where the animal is and which way it faces.

Setups (``SETUPS``), each a way a view can see the animal worse than another:

- ``one-sided``: both views clean; the rare poses each camera alone sees are the hard part;
- ``clutter``: the side view also shows two dark objects rolling over its floor and a light
  patch that drifts, so its whole frame and its animal crop carry motion that is no pose;
- ``occluded``: a board stands in front of the side camera over part of the arena; behind it
  the side view shows nothing of the animal (its pose there is known, and counts, all the same).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from tests.benchmarks.posevideo import ANIMAL_BGR, floor_texture, smooth_noise, walk_path

# Parameters: head height, head sideways, tail sideways, tail height, front paws height.
COMMON = np.array([[10, 0, 0, 5, 0], [14, 8, 12, 5, 0], [8, -8, -12, 5, 0]], dtype=float)
RARE = np.array(
    [[10, 22, 0, 5, 0], [10, 0, 35, 5, 0], [40, 0, 0, 5, 30], [10, 0, 0, 38, 0]], dtype=float
)
RARE_SEEN_BY = ("top", "top", "side", "side")
VIEWS = ("top", "side")
SETUPS = ("one-sided", "clutter", "occluded")
BOARD_BGR = (120, 125, 130)


@dataclass(frozen=True)
class Session:
    """The rendered views and their ground truth."""

    paths: dict[str, Path]
    poses: dict[str, npt.NDArray[np.float64]]
    rare_visit: npt.NDArray[np.int64]
    rare_view: list[str]


def body_points(p: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The nine keypoints (x forward, y left, z up) of one frame's parameters."""
    head_z, head_y, tail_y, tail_z, paw_z = p
    return np.array(
        [
            [45, head_y, head_z],
            [25, head_y / 3, 10],
            [0, 0, 12],
            [-25, tail_y / 4, 10],
            [-50, tail_y, tail_z],
            [20, 12, paw_z],
            [20, -12, paw_z],
            [-20, 12, 0],
            [-20, -12, 0],
        ],
        dtype=float,
    )


def schedule(
    rng: np.random.Generator, frames: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Parameters per frame and the rare visit of each frame (-1: none)."""
    visits = [r for r in range(len(RARE)) for _ in range(2)]
    rng.shuffle(visits)
    starts = (np.linspace(0.1, 0.9, len(visits) + 2)[1:-1] * frames).astype(int)
    params = np.zeros((frames, 5))
    visit = np.full(frames, -1, dtype=np.int64)
    t = 0
    while t < frames:
        params[t : t + 60] = COMMON[int(rng.integers(len(COMMON)))]
        t += int(rng.integers(40, 100))
    for number, (start, rare) in enumerate(zip(starts, visits, strict=True)):
        length = int(rng.integers(8, 17))
        params[start : start + length] = RARE[rare]
        visit[start : start + length] = number
    params += smooth_noise(rng, frames, 5, 1.0, 8)
    return params, visit


def render_session(folder: Path, seed: int, frames: int = 600, setup: str = "one-sided") -> Session:
    """Render ``top`` and ``side`` views of one session (320x240, 30 fps, mp4v) of ``setup``."""
    rng = np.random.default_rng(seed)
    params, visit = schedule(rng, frames)
    position, heading = walk_path(rng, frames, 320, 240, margin=70)
    floors = {view: floor_texture(rng, 320, 240) for view in VIEWS}
    clutter = rolling_objects(rng, frames) if setup == "clutter" else None
    name = f"synth-{setup}{seed}"
    writers = {
        view: cv2.VideoWriter(
            str(folder / f"{name}_{view}.mp4"),
            cv2.VideoWriter_fourcc(*"mp4v"),
            30.0,
            (320, 240),
        )
        for view in VIEWS
    }
    poses: dict[str, list[npt.NDArray[np.float64]]] = {view: [] for view in VIEWS}
    for t in range(frames):
        body = body_points(params[t])
        c, s = np.cos(heading[t]), np.sin(heading[t])
        world = body @ np.array([[c, s, 0], [-s, c, 0], [0, 0, 1]])
        world[:, :2] += (position[t] - [160, 120]) * 0.6
        image_points = {
            "top": np.stack([160 + world[:, 0], 120 + world[:, 1]], 1),
            "side": np.stack([160 + world[:, 0], 180 - 1.5 * world[:, 2] - 0.2 * world[:, 1]], 1),
        }
        poses["top"].append(body[:, :2].ravel())
        poses["side"].append(body[:, [0, 2]].ravel())
        for view in VIEWS:
            image = floors[view].copy()
            if view == "side" and clutter is not None:
                draw_clutter(image, clutter, t)
            draw_figure(image, image_points[view])
            if view == "side" and setup == "occluded":
                image[:, 165:250] = BOARD_BGR
            image += rng.normal(0, 3, image.shape).astype(np.float32)
            writers[view].write(np.clip(image, 0, 255).astype(np.uint8))
    for writer in writers.values():
        writer.release()
    return Session(
        {view: folder / f"{name}_{view}.mp4" for view in VIEWS},
        {view: np.asarray(poses[view]) for view in VIEWS},
        visit,
        [RARE_SEEN_BY[rare] for rare in sorted(set(range(len(RARE))))],
    )


def draw_figure(image: npt.NDArray[np.float32], points: npt.NDArray[np.float64]) -> None:
    """Spine and tail as a thick line, paws and nose as dots."""
    p = [tuple(round(float(v)) for v in point) for point in points]
    cv2.polylines(image, [np.array(p[:5], np.int32)], False, ANIMAL_BGR, 9, cv2.LINE_AA)
    for paw, joint in ((5, 1), (6, 1), (7, 3), (8, 3)):
        cv2.line(image, p[joint], p[paw], ANIMAL_BGR, 3, cv2.LINE_AA)
        cv2.circle(image, p[paw], 4, ANIMAL_BGR, -1, cv2.LINE_AA)
    cv2.circle(image, p[0], 5, (40, 40, 200), -1, cv2.LINE_AA)


def rolling_objects(rng: np.random.Generator, frames: int) -> npt.NDArray[np.float64]:
    """Centres (frames, 2 objects, 2) of two objects bouncing over a 320x240 floor."""
    here = rng.uniform([40, 40], [280, 200], size=(2, 2))
    speed = rng.uniform(-2.0, 2.0, size=(2, 2))
    path = np.empty((frames, 2, 2))
    for t in range(frames):
        here += speed
        bounce = (here < [20, 20]) | (here > [300, 220])
        speed[bounce] *= -1
        path[t] = here
    return path


def draw_clutter(image: npt.NDArray[np.float32], path: npt.NDArray[np.float64], t: int) -> None:
    """Two dark rolling objects and a light patch drifting across the floor at frame ``t``."""
    for x, y in path[t]:
        cv2.circle(image, (round(x), round(y)), 11, (45, 50, 60), -1, cv2.LINE_AA)
    x = round(40 + 240 * (0.5 + 0.5 * np.sin(t / 47)))
    image[20:90, max(x - 35, 0) : x + 35] *= 1.25
