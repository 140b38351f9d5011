"""Synthetic pose videos with known poses: an animal-like figure drawn from keypoint trajectories.

The figure (seen from above: nose, neck, spine, tail and four paws) spends most of its time in a
few common poses and visits rare ones briefly, while it walks across the arena. The video has
what real recordings have: camera noise, a slow lighting drift, a few flicker frames, and an
experimenter's hand that enters the view for a while at the start and at the end. Every frame's
ground truth is returned beside the video: its pose, whether it shows a distractor, and which
rare-pose visit (if any) it belongs to.

Pose space: the keypoints in the animal's own frame, in pixels: centred on the middle of the
spine, facing +x. Where the animal is in the arena and which way it faces are not its pose.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

KEYPOINTS = ("nose", "neck", "mid", "tail_base", "tail_mid", "tail_tip", "fl", "fr", "hl", "hr")

# Pose parameters: spine bend (rad over the body), head angle, tail swing, body stretch, leg spread.
COMMON_POSES = {
    "walk": (0.0, 0.0, 0.0, 1.0, 1.0),
    "groom": (0.9, 0.6, 0.8, 0.8, 0.7),
    "sit": (-0.3, -0.2, -0.5, 0.85, 1.25),
}
RARE_POSES = {
    "turn": (-1.5, -1.0, 1.3, 0.95, 1.0),
    "stretch": (0.0, 0.0, 0.0, 1.5, 0.55),
    "rear": (0.1, 0.0, 0.0, 0.6, 1.6),
    "scan": (0.5, 1.4, -1.1, 1.0, 1.0),
}
BODY_LENGTH = 46.0
FLOOR_BGR = (150, 158, 165)
ANIMAL_BGR = (55, 60, 70)
HAND_BGR = (185, 105, 80)  # a blue nitrile glove


@dataclass(frozen=True)
class PoseVideo:
    """A rendered video and its per-frame ground truth.

    Attributes:
        path: the video file.
        poses: (frames, 2 * keypoints) keypoints in the animal's own frame (see above).
        distractor: (frames,) True where the hand is in view or the frame flickers.
        hand: (frames,) True where the hand is in view.
        flicker: (frames,) True on flicker frames.
        rare_visit: (frames,) id of the rare-pose visit a frame belongs to, -1 elsewhere.
    """

    path: Path
    poses: npt.NDArray[np.float64]
    distractor: npt.NDArray[np.bool_]
    hand: npt.NDArray[np.bool_]
    flicker: npt.NDArray[np.bool_]
    rare_visit: npt.NDArray[np.int64]


def arc_point(curvature: float, s: float) -> tuple[float, float, float]:
    """Point and tangent angle at arc length ``s`` of an arc leaving the origin along +x."""
    if abs(curvature) < 1e-6:
        return s, 0.0, 0.0
    angle = curvature * s
    return np.sin(angle) / curvature, (1 - np.cos(angle)) / curvature, angle


def body_keypoints(params: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Keypoints (k, 2) in the body frame (x forward) for pose parameters, centred on 'mid'."""
    bend, head, tail, stretch, spread = params
    length = BODY_LENGTH * stretch
    kappa = bend / length
    neck = arc_point(kappa, 0.45 * length)
    mid = arc_point(kappa, 0.0)
    base = arc_point(kappa, -0.5 * length)
    shoulder = arc_point(kappa, 0.3 * length)
    hip = arc_point(kappa, -0.35 * length)
    nose_dir = neck[2] + head
    nose = (neck[0] + 16 * np.cos(nose_dir), neck[1] + 16 * np.sin(nose_dir))
    tail_dir = base[2] + np.pi + tail / 2
    tail_mid = (base[0] + 18 * np.cos(tail_dir), base[1] + 18 * np.sin(tail_dir))
    tip_dir = tail_dir + tail / 2
    tail_tip = (tail_mid[0] + 18 * np.cos(tip_dir), tail_mid[1] + 18 * np.sin(tip_dir))
    paws = []
    for joint, reach in ((shoulder, 7.0), (hip, -5.0)):
        normal = joint[2] + np.pi / 2
        for side in (1, -1):
            offset = side * 11.0 * spread
            paws.append(
                (
                    joint[0] + offset * np.cos(normal) + reach * np.cos(joint[2]),
                    joint[1] + offset * np.sin(normal) + reach * np.sin(joint[2]),
                )
            )
    points = [nose, neck[:2], mid[:2], base[:2], tail_mid, tail_tip, *paws]
    return np.asarray(points, dtype=np.float64)


def rotate(points: npt.NDArray[np.float64], angle: float) -> npt.NDArray[np.float64]:
    """Points rotated by ``angle`` about the origin."""
    c, s = np.cos(angle), np.sin(angle)
    return points @ np.array([[c, s], [-s, c]])


def smooth_noise(
    rng: np.random.Generator, frames: int, dims: int, scale: float, width: int
) -> npt.NDArray[np.float64]:
    """Gaussian noise low-passed over ``width`` frames, with standard deviation ``scale``."""
    raw = rng.normal(size=(frames + 4 * width, dims))
    kernel = np.exp(-0.5 * (np.arange(-2 * width, 2 * width + 1) / width) ** 2)
    smooth = np.stack([np.convolve(raw[:, d], kernel, mode="same") for d in range(dims)], 1)
    smooth = smooth[2 * width : 2 * width + frames]
    return scale * smooth / smooth.std(axis=0)


def pose_schedule(
    rng: np.random.Generator, frames: int, rare_visits: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Pose parameters per frame, and the rare visit each frame belongs to (-1 for none).

    Common poses are held for 40-120 frames; each rare pose is visited ``rare_visits`` times
    for 8-16 frames; changes blend over 6 frames.
    """
    rare_names = list(RARE_POSES) * rare_visits
    rng.shuffle(rare_names)
    common = list(COMMON_POSES)
    # Rare visits at evenly jittered times inside the hand-free middle of the video.
    slots = np.linspace(0.15, 0.85, len(rare_names) + 2)[1:-1] * frames
    starts = sorted(int(t + rng.uniform(-0.02, 0.02) * frames) for t in slots)
    targets = np.zeros((frames, 5))
    visit = np.full(frames, -1, dtype=np.int64)
    t = 0
    next_rare = 0
    while t < frames:
        if next_rare < len(starts) and t >= starts[next_rare]:
            duration = int(rng.integers(8, 17))
            targets[t : t + duration] = RARE_POSES[rare_names[next_rare]]
            visit[t : t + duration] = next_rare
            next_rare += 1
        else:
            duration = int(rng.integers(40, 121))
            if next_rare < len(starts):
                duration = min(duration, max(1, starts[next_rare] - t))
            targets[t : t + duration] = COMMON_POSES[common[int(rng.integers(len(common)))]]
        t += duration
    blend = np.ones(6) / 6
    params = np.stack(
        [np.convolve(np.pad(targets[:, d], 3, mode="edge"), blend, "same")[3:-3] for d in range(5)],
        1,
    )
    return params, visit


def walk_path(
    rng: np.random.Generator, frames: int, width: int, height: int, margin: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Body centre (frames, 2) wandering smoothly over the arena, and the heading per frame."""
    heading = np.cumsum(smooth_noise(rng, frames, 1, 0.02, 30)[:, 0]) + rng.uniform(0, 2 * np.pi)
    position = np.empty((frames, 2))
    here = np.array([width / 2, height / 2])
    for t in range(frames):
        step = 0.8 * np.array([np.cos(heading[t]), np.sin(heading[t])])
        nxt = here + step
        if not (margin < nxt[0] < width - margin and margin < nxt[1] < height - margin):
            # Turn back towards the middle of the arena rather than leave it.
            heading[t:] += np.pi / 2
            nxt = here
        here = nxt
        position[t] = here
    return position, heading


def floor_texture(rng: np.random.Generator, width: int, height: int) -> npt.NDArray[np.float32]:
    """A static, lightly textured floor with a vignette, BGR float."""
    base = np.empty((height, width, 3), np.float32)
    base[:] = FLOOR_BGR
    texture = cv2.GaussianBlur(rng.normal(0, 10, (height, width)).astype(np.float32), (0, 0), 3)
    yy, xx = np.mgrid[0:height, 0:width]
    vignette = 1 - 0.25 * (((xx - width / 2) / width) ** 2 + ((yy - height / 2) / height) ** 2)
    return (base + texture[..., None]) * vignette[..., None].astype(np.float32)


def draw_animal(
    image: npt.NDArray[np.float32], points: npt.NDArray[np.float64], scale: float = 1.0
) -> None:
    """Draw the figure whose keypoints (in image coordinates) are ``points``, ``scale`` thick."""
    p = [tuple(round(v) for v in point * 4) for point in points]
    w = [max(1, round(k * scale)) for k in (14, 3, 12, 9, 2)]
    spine = np.array([p[1], p[2], p[3]], np.int32)
    draw = {"shift": 2, "lineType": cv2.LINE_AA}
    cv2.polylines(image, [spine], False, ANIMAL_BGR, thickness=w[0], **draw)
    for paw, joint in ((6, 1), (7, 1), (8, 3), (9, 3)):
        cv2.line(image, p[joint], p[paw], ANIMAL_BGR, thickness=w[1], **draw)
        cv2.circle(image, p[paw], w[2], ANIMAL_BGR, thickness=-1, **draw)
    cv2.line(image, p[1], p[0], ANIMAL_BGR, thickness=w[3], **draw)
    cv2.circle(image, p[0], w[2], (40, 40, 200), thickness=-1, **draw)
    cv2.polylines(image, [np.array([p[3], p[4], p[5]], np.int32)], False, ANIMAL_BGR, w[4], **draw)


def hand_visibility(frames: int, fps: float) -> npt.NDArray[np.float64]:
    """How far the hand reaches into the view per frame (0 = out of view, 1 = all the way)."""
    reach = np.zeros(frames)
    span = int(3.0 * fps)
    ramp = int(0.7 * fps)
    for start in (int(0.5 * fps), frames - span - int(0.5 * fps)):
        t = np.arange(span)
        reach[start : start + span] = np.clip(np.minimum(t, span - 1 - t) / ramp, 0, 1)
    return reach


def draw_hand(image: npt.NDArray[np.float32], reach: float, wobble: float) -> None:
    """Draw an experimenter's hand (palm and fingers) reaching in from the right edge."""
    height, width = image.shape[:2]
    tip_x = width - reach * 0.55 * width
    y = height * (0.45 + 0.05 * wobble)
    palm = (int(tip_x + 0.28 * width), int(y))
    cv2.ellipse(image, palm, (int(0.2 * width), int(0.17 * height)), 0, 0, 360, HAND_BGR, -1)
    for k in range(4):
        fy = int(y + (k - 1.5) * 0.075 * height)
        cv2.line(image, (int(tip_x), fy), palm, HAND_BGR, thickness=max(4, width // 40))


def render_pose_video(
    path: Path,
    seed: int,
    frames: int = 2400,
    width: int = 320,
    height: int = 240,
    fps: float = 30.0,
    flickers: int = 6,
    rare_visits: int = 2,
    *,
    stationary: bool = False,
    animals: int = 1,
    scale: float = 1.0,
    hand: bool = True,
    dimming: bool = False,
    moved_object: bool = False,
) -> PoseVideo:
    """Render a synthetic pose video to ``path`` (mp4v) and return its ground truth.

    ``stationary``: the body stays in place, facing +x (a head-fixed or sitting animal); only
    its pose changes, and the pose is in image coordinates. ``animals`` = 2: a second figure
    with common poses only walks beside the first; the pose is both figures' keypoints.
    ``scale``: the figure's size (0.5 is a small animal, 2.5 fills most of a 320x240 frame).
    ``hand``, ``flickers``, ``dimming`` (the lights go down to 55% for a tenth of the video),
    ``moved_object`` (a dark box in the arena is moved once, mid-video): the distractors.
    """
    rng = np.random.default_rng(seed)
    schedules = [pose_schedule(rng, frames, rare_visits if a == 0 else 0) for a in range(animals)]
    visit = schedules[0][1]
    noise = np.array([1, 1, 1, 0.15, 0.3])
    params = [p + smooth_noise(rng, frames, 5, 0.06, 10) * noise for p, _ in schedules]
    margin = 45 * scale
    paths = []
    for a in range(animals):
        if stationary:
            spot = np.array([width * (a + 1) / (animals + 1), height / 2])
            paths.append((np.tile(spot, (frames, 1)), np.zeros(frames)))
        else:
            paths.append(walk_path(rng, frames, width, height, margin=min(margin, 0.45 * height)))
    floor = floor_texture(rng, width, height)
    light = 1 + 0.18 * np.sin(2 * np.pi * (np.arange(frames) / frames * 1.3 + rng.uniform()))
    if dimming:
        start = int(rng.uniform(0.3, 0.6) * frames)
        t = np.arange(frames)
        ramp = np.clip(np.minimum(t - start, start + frames // 10 - t) / (0.5 * fps), 0, 1)
        light *= 1 - 0.45 * ramp
    hand_reach = hand_visibility(frames, fps) if hand else np.zeros(frames)
    middle = np.arange(int(0.15 * frames), int(0.85 * frames))
    flicker = np.zeros(frames, bool)
    flicker[rng.choice(middle, size=flickers, replace=False)] = True
    flicker_gain = rng.choice([0.45, 1.6], size=frames)
    box = rng.uniform([0.1, 0.1], [0.3, 0.3]) * (width, height) if moved_object else np.zeros(2)
    box_moved = int(rng.uniform(0.4, 0.6) * frames) if moved_object else frames
    poses = np.empty((frames, 2 * len(KEYPOINTS) * animals))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write mp4v to {path}")
    for t in range(frames):
        image = floor.copy()
        if moved_object:
            corner = box if t < box_moved else (width, height) - box - 30
            cv2.rectangle(
                image,
                tuple(int(v) for v in corner),
                tuple(int(v + 24) for v in corner),
                (70, 80, 90),
                -1,
            )
        row = []
        for a in range(animals):
            own = body_keypoints(params[a][t]) * scale
            position, heading = paths[a]
            relative = rotate(own, heading[t])
            row.append((relative + position[t]) if stationary else own)
            draw_animal(image, relative + position[t], scale)
        poses[t] = np.concatenate(row).ravel()
        if hand_reach[t] > 0:
            draw_hand(image, hand_reach[t], np.sin(t / 7))
        gain = light[t] * (flicker_gain[t] if flicker[t] else 1.0)
        image = image * gain + rng.normal(0, 4, image.shape[:2])[..., None]
        writer.write(np.clip(image, 0, 255).astype(np.uint8))
    writer.release()
    in_view = hand_reach > 0
    return PoseVideo(path, poses, in_view | flicker, in_view, flicker, visit)
