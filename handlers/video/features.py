"""Per-frame features: what each decoded frame is reduced to before frames are chosen.

Kept apart from the decoding loop (frames.py) so the choice of features can change without
touching how frames are read, and the reading can get faster without touching the features.

Each frame becomes one uint8 vector of two parts (see ``split_features``):

- the whole frame, grey, averaged down to 32x32 (where the animal is, the scene, the hand);
- the animal: a 32x32 silhouette (how much each pixel differs from the floor around it) of
  the part of the frame that differs from a running background, read at close to full
  resolution and turned so the animal's long axis faces +x.
  In an open field the animal covers a few pixels of a 32x32 frame, so only a crop that
  follows it shows its pose; turning it makes the same pose look the same whichever way the
  animal faces.
"""

from __future__ import annotations

from collections import deque

import cv2
import numpy as np
import numpy.typing as npt

from handlers.frames import THUMB_SIZE

CROP_SIZE = (32, 32)
"""Width and height of the animal-centred part."""
FEATURE_LENGTH = THUMB_SIZE[0] * THUMB_SIZE[1] + CROP_SIZE[0] * CROP_SIZE[1]

LOCATE_SIZE = (64, 64)
"""Resolution at which the animal is found against the background."""
BACKGROUND_FRAMES = 15
BACKGROUND_EVERY = 8
"""The background is the median of the last 15 frames taken every 8th: about 4 s at 30 fps,
long enough that a moving animal is not part of it, short enough to follow the room."""
BLOB_SHARE = 0.25
"""The animal is where the difference from the background is at least this share of its maximum."""
MIN_DIFFERENCE = 12.0
"""Grey levels (after brightness normalization) a pixel must differ from the background."""
CROP_PER_SIZE = 3.5
"""Crop side as a multiple of the square root of the animal's area: room for legs and tail."""
ALIGN_MARGIN = 1.5
"""A patch this much wider than the crop is read, so the turned crop has no empty corners."""
MAX_PATCH_SHARE = 0.6
"""The patch is at most this share of the frame's shorter side: when shadows or a still
animal's ghost in the background make the animal look bigger, the crop stays on it."""
PATCH_SIZE = (48, 48)
"""Resolution of that patch, where the animal's silhouette is measured."""
HEADING_FRAMES = 15
HEADING_MIN_MOVE = 0.3
"""The animal faces the way it moved over the last 15 frames, if it moved 0.3 body sizes."""
KEEP_TO_ONE = False
"""Follow one moving region: when the largest region lies beyond TRACK_REACH of the last
place, take the region nearest it among those at least TRACK_SHARE of the largest (two
animals otherwise swap the crop from frame to frame). Off: on the held-out seeds it helped
two animals but lost on the real openfield and mirror-mouse clips (a real frame has other
moving regions than the animal: its crop then stays on them), so the largest region is taken
in every frame, as before. Kept for the benchmark's comparison and for rigs with two animals."""
TRACK_REACH = 0.25
"""The largest region within this share of the frame's shorter side of the last place is
taken as the same animal (a still body's limbs move far apart from frame to frame); a second
animal is further away."""
TRACK_SHARE = 0.3
"""A region this share of the largest one's area may be the animal followed."""
AREA_MEASURES = 31
"""The animal's area is the median of its last 31 measures, one every 8th frame: the camera
fixes its size, and a hand in view for a few seconds does not change it."""


def split_features(
    features: npt.NDArray[np.uint8],
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """The whole-frame part and the animal-centred part of feature rows (views, no copy)."""
    cut = THUMB_SIZE[0] * THUMB_SIZE[1]
    return features[..., :cut], features[..., cut:]


def largest_blob_centre(
    difference: npt.NDArray[np.float32], threshold: float
) -> tuple[float, float, int] | None:
    """Centre (x, y) and area of the largest connected region above ``threshold``, if any."""
    mask = (difference > threshold).astype(np.uint8)
    count, _, stats, centroids = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count < 2:
        return None
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x, y = centroids[largest]
    return float(x), float(y), int(stats[largest, cv2.CC_STAT_AREA])


def tracked_blob_centre(
    difference: npt.NDArray[np.float32],
    threshold: float,
    last: tuple[float, float] | None,
    reach: float = 0.0,
    share: float = TRACK_SHARE,
) -> tuple[float, float, int] | None:
    """Centre (x, y) and area of the region that continues the one followed at ``last``.

    The largest connected region above ``threshold``, unless it lies further than ``reach``
    from ``last``: then the region nearest ``last`` among those at least ``share`` of the
    largest one's area. Two animals of similar size take turns being the largest; the nearest
    stays on one, so the crop shows one animal's pose through time. Within ``reach`` (the
    crop's half side) the largest region is part of the same animal, a moving limb of a still
    body, and the crop already holds it.
    """
    mask = (difference > threshold).astype(np.uint8)
    count, _, stats, centroids = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count < 2:
        return None
    areas = stats[1:, cv2.CC_STAT_AREA]
    pick = int(np.argmax(areas))
    if last is not None:
        gaps = np.hypot(centroids[1:, 0] - last[0], centroids[1:, 1] - last[1])
        if gaps[pick] > reach:
            candidates = np.flatnonzero(areas >= share * areas.max())
            pick = int(candidates[np.argmin(gaps[candidates])])
    x, y = centroids[1 + pick]
    return float(x), float(y), int(areas[pick])


def foreground(patch: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """How much each pixel of a patch differs from its median (the floor), 0 on the floor.

    The animal's silhouette, whatever the floor's brightness and the lighting: the patch is
    several times the animal's size, so most of it is floor. Differences below a quarter of
    the strongest one are the floor's texture or shading, not the animal.
    """
    sample = patch[::3, ::3].reshape(-1)
    floor = float(np.partition(sample, sample.size // 2)[sample.size // 2])
    difference = np.abs(patch.astype(np.float32) - floor)
    threshold = max(MIN_DIFFERENCE, 0.25 * float(difference.max()))
    return np.clip(difference - threshold, 0, 255).astype(np.uint8)


def animal_axis(weight: npt.NDArray[np.uint8]) -> tuple[float, float, float] | None:
    """Centre (x, y) and direction (radians) of a silhouette, from its image moments.

    The direction is the long axis, pointed towards the side with more mass far from the
    centre (a tail, an outstretched head), so the same pose gives the same direction wherever
    the animal faces.
    """
    m = cv2.moments(weight)
    if m["m00"] <= 0:
        return None
    angle = 0.5 * np.arctan2(2 * m["mu11"], m["mu20"] - m["mu02"])
    c, s = np.cos(angle), np.sin(angle)
    # Third moment along the axis, from the central moments: its sign says which end is heavier.
    skew = c**3 * m["mu30"] + 3 * c**2 * s * m["mu21"] + 3 * c * s**2 * m["mu12"] + s**3 * m["mu03"]
    if skew < 0:
        angle += np.pi
    return m["m10"] / m["m00"], m["m01"] / m["m00"], float(angle)


def patch_around(
    image: npt.NDArray[np.uint8], centre: tuple[float, float], side: int
) -> npt.NDArray[np.uint8]:
    """The ``side`` x ``side`` square of ``image`` around ``centre``, edges repeated outside."""
    height, width = image.shape[:2]
    left, top = round(centre[0] - side / 2), round(centre[1] - side / 2)
    inside = image[max(top, 0) : max(top + side, 0), max(left, 0) : max(left + side, 0)]
    pad = (
        (max(-top, 0), max(top + side - height, 0)),
        (max(-left, 0), max(left + side - width, 0)),
    )
    if inside.size == 0:
        return np.zeros((side, side, *image.shape[2:]), dtype=np.uint8)
    if any(any(p) for p in pad):
        (above, below), (before, after) = pad
        padded = cv2.copyMakeBorder(inside, above, below, before, after, cv2.BORDER_REPLICATE)
        return np.asarray(padded, dtype=np.uint8)
    return inside


def aligned_crop(
    patch: npt.NDArray[np.uint8], axis: tuple[float, float, float]
) -> npt.NDArray[np.uint8]:
    """The middle 1/ALIGN_MARGIN of ``patch``, centred on the figure and turned to face +x."""
    cx, cy, angle = axis
    side = patch.shape[0] / ALIGN_MARGIN
    scale = CROP_SIZE[0] / side
    rotation = cv2.getRotationMatrix2D((cx, cy), np.degrees(angle), scale)
    rotation[0, 2] += CROP_SIZE[0] / 2 - cx
    rotation[1, 2] += CROP_SIZE[1] / 2 - cy
    turned = cv2.warpAffine(
        patch, rotation, CROP_SIZE, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )
    return np.asarray(turned, dtype=np.uint8)


class FrameReducer:
    """Reduces frames in decoding order to feature vectors, following the animal.

    Call it on every frame, in order: the background, the animal's size and the way it faces
    are estimated from the frames seen so far, in constant memory.
    """

    def __init__(self) -> None:
        self._history: deque[npt.NDArray[np.float32]] = deque(maxlen=BACKGROUND_FRAMES)
        self._background: npt.NDArray[np.float32] | None = None
        self._threshold = MIN_DIFFERENCE
        self._seen = 0
        self._centre: tuple[float, float] | None = None
        self._trail: deque[tuple[float, float]] = deque(maxlen=HEADING_FRAMES)
        self._heading: float | None = None
        self._areas: deque[float] = deque(maxlen=AREA_MEASURES)
        self._area = 1.0
        self._gain = 1.0

    def __call__(self, frame: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
        height, width = frame.shape[:2]
        # A cheap decimation first: an area average over the full frame costs more than decoding.
        quarter: npt.NDArray[np.uint8] = cv2.resize(  # type: ignore[assignment]
            frame,
            (max(width // 4, LOCATE_SIZE[0]), max(height // 4, LOCATE_SIZE[1])),
            interpolation=cv2.INTER_LINEAR,
        )
        grey = cv2.cvtColor(quarter, cv2.COLOR_BGR2GRAY) if quarter.ndim == 3 else quarter
        small = cv2.resize(grey, LOCATE_SIZE, interpolation=cv2.INTER_AREA)
        thumb = cv2.resize(small, THUMB_SIZE, interpolation=cv2.INTER_AREA)
        self._gain = 128.0 / max(float(small.mean()), 1.0)
        self._locate(small.astype(np.float32) * self._gain, width, height)
        crop = self._crop(frame, quarter)
        return np.concatenate([thumb.reshape(-1), crop.reshape(-1)])

    def _locate(self, small: npt.NDArray[np.float32], width: int, height: int) -> None:
        """Find the animal as the largest region that differs from the running background."""
        if self._seen % BACKGROUND_EVERY == 0:
            self._history.append(small)
            self._background = np.median(np.stack(self._history), axis=0)
            noise = float(np.median(np.abs(small - self._background)))
            self._threshold = max(MIN_DIFFERENCE, 6.0 * noise)
        self._seen += 1
        assert self._background is not None
        difference = np.abs(small - self._background)
        # Shadows and reflections differ a little; the animal differs most.
        threshold = max(self._threshold, BLOB_SHARE * float(difference.max()))
        sx, sy = width / LOCATE_SIZE[0], height / LOCATE_SIZE[1]
        if KEEP_TO_ONE:
            last = None if self._centre is None else (self._centre[0] / sx, self._centre[1] / sy)
            reach = TRACK_REACH * min(LOCATE_SIZE)
            blob = tracked_blob_centre(difference, threshold, last, reach)
        else:
            blob = largest_blob_centre(difference, threshold)
        if blob is None:
            # Nothing differs: the animal is still, so it is where it was.
            return
        self._centre = (blob[0] * sx, blob[1] * sy)
        if self._seen % BACKGROUND_EVERY == 1 or not self._areas:
            self._areas.append(blob[2] * sx * sy)
            self._area = float(np.median(self._areas))

    def _crop(
        self, frame: npt.NDArray[np.uint8], quarter: npt.NDArray[np.uint8]
    ) -> npt.NDArray[np.uint8]:
        """The animal's silhouette, centred, at a fixed scale, turned to face +x."""
        if self._centre is None:
            return np.zeros(CROP_SIZE[::-1], dtype=np.uint8)
        animal_area = self._area
        side = CROP_PER_SIZE * np.sqrt(max(animal_area, 1.0)) * ALIGN_MARGIN
        side = float(np.clip(side, PATCH_SIZE[0], MAX_PATCH_SHARE * min(frame.shape[:2])))
        shrink = quarter.shape[1] / frame.shape[1]
        if side * shrink >= PATCH_SIZE[0]:
            # A large patch is read from the quarter-size frame: as sharp at 48x48, and cheaper.
            frame = quarter
        else:
            shrink = 1.0
        patch = patch_around(
            frame, (self._centre[0] * shrink, self._centre[1] * shrink), max(int(side * shrink), 1)
        )
        patch = np.asarray(cv2.resize(patch, PATCH_SIZE, interpolation=cv2.INTER_AREA), np.uint8)
        if patch.ndim == 3:
            patch = np.asarray(cv2.cvtColor(patch, cv2.COLOR_BGR2GRAY), dtype=np.uint8)
        weight = foreground(patch)
        axis = animal_axis(weight)
        if axis is None:
            return np.zeros(CROP_SIZE[::-1], dtype=np.uint8)
        pixel = side / PATCH_SIZE[0]
        angle = self._face_forward(
            (
                self._centre[0] + (axis[0] - PATCH_SIZE[0] / 2) * pixel,
                self._centre[1] + (axis[1] - PATCH_SIZE[1] / 2) * pixel,
            ),
            axis[2],
            np.sqrt(animal_area),
        )
        return aligned_crop(weight, (axis[0], axis[1], angle))

    def _face_forward(self, centre: tuple[float, float], axis: float, size: float) -> float:
        """The long axis pointed the way the animal last walked (its moments cannot tell)."""
        self._trail.append(centre)
        moved = np.subtract(self._trail[-1], self._trail[0])
        if float(np.hypot(*moved)) > HEADING_MIN_MOVE * size:
            self._heading = float(np.arctan2(moved[1], moved[0]))
        if self._heading is not None and np.cos(axis - self._heading) < 0:
            return axis + np.pi
        return axis
