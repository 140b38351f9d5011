"""A zip's frames compared with the frames of its video, as framewatch decodes them.

Players and seeking are not frame-exact on many files, so a lab's "frame 143" may be frame
144 or come from another recording. Each PNG of the zip is compared with the frame of the
same number decoded in order from the start: identical is fine; the same picture after lossy
handling (a JPEG round trip, a colour conversion) is accepted with a warning saying how close;
anything else is looked for among its neighbours and named.

One sequential pass decodes up to the last frame needed, retrieving only frames within
NEIGHBOURS of a zip frame. Memory holds at most NEIGHBOURS recent video frames and the zip
frames still being compared (those not identical to their own frame), never the whole video.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from handlers.bundle import frame_filename
from handlers.frames import open_video

NEIGHBOURS = 5
"""Frames on each side of a zip frame's number where its true frame is looked for."""

MIN_PSNR_DB = 30.0
"""Peak signal-to-noise ratio from which two frames are the same picture (JPEG at quality 75
of a behaviour frame gives 35-45 dB; two different frames of one recording rarely pass 30)."""

BETTER_BY_DB = 0.5
"""How much closer a neighbour must be than the frame's own number to be named instead."""

CLOSER_SHARE = 0.5
"""Or: by how much of the two video frames' own difference (MSE) the neighbour is closer.
In a nearly still stretch neighbours differ by far less than a JPEG round trip changes a
frame, so a shifted, lossy frame is only a hair closer in dB to its true frame; but its error
against its number exceeds that against its true frame by about the two frames' difference."""

Image = npt.NDArray[np.uint8]


def mse(a: Image, b: Image) -> float:
    """Mean squared difference of two 8-bit images of one shape."""
    return float(np.mean((a.astype(np.int16) - b.astype(np.int16)) ** 2, dtype=np.float64))


def psnr(a: Image, b: Image) -> float:
    """Peak signal-to-noise ratio of two 8-bit images of one shape, in dB (inf if identical)."""
    error = mse(a, b)
    return math.inf if error == 0 else 10 * math.log10(255.0**2 / error)


def psnr_to_mse(value: float) -> float:
    return 0.0 if value == math.inf else 255.0**2 / 10 ** (value / 10)


@dataclass
class Match:
    """How one zip frame compares with the video.

    Attributes:
        index: the frame number in its name.
        own_psnr: PSNR against the video's frame of that number (inf: identical; None: the
            video has no such frame or its size differs).
        best: the frame number among the neighbours that is closest, and its PSNR.
        own_frame, best_frame: those video frames (to tell how much they differ).
    """

    index: int
    own_psnr: float | None = None
    best: tuple[int, float] | None = None
    own_frame: Image | None = None
    best_frame: Image | None = None

    def consider(self, frame: int, value: float, image: Image | None = None) -> None:
        if frame == self.index:
            self.own_psnr, self.own_frame = value, image
        if self.best is None or value > self.best[1]:
            self.best, self.best_frame = (frame, value), image

    def neighbour_closer(self) -> bool:
        """True when the best neighbour is closer than the own frame by more than
        CLOSER_SHARE of the two video frames' difference (see CLOSER_SHARE)."""
        if self.best is None or self.own_psnr is None:
            return False
        own, best = self.own_frame, self.best_frame
        if own is None or best is None or own.shape != best.shape:
            return False
        apart = mse(own, best)
        gain = psnr_to_mse(self.own_psnr) - psnr_to_mse(self.best[1])
        return apart > 0 and gain > CLOSER_SHARE * apart


@dataclass
class VideoCheck:
    """What comparing a zip with its video found: problems (refusing) and warnings."""

    video: str
    frame_count: int
    identical: int = 0
    lossy: list[tuple[int, float]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def report(self) -> dict[str, object]:
        return {
            "video": self.video,
            "identical": self.identical,
            "lossy": len(self.lossy),
            "lowest_psnr_db": round(min(p for _, p in self.lossy), 1) if self.lossy else None,
            "mismatched": len(self.problems),
        }


def offset_words(offset: int) -> str:
    """ "off by one", "off by 3 frames" (later) or earlier, for a user's sentence."""
    size = "one" if abs(offset) == 1 else f"{abs(offset)} frames"
    return f"off by {size} ({'later' if offset > 0 else 'earlier'} in the video)"


def verdict(match: Match, video: str, frame_count: int, check: VideoCheck) -> None:
    """Sort one finished comparison into identical, lossy (a warning) or a problem."""
    name = frame_filename(match.index)
    own = match.own_psnr
    best = match.best
    if own == math.inf:
        check.identical += 1
        return
    elsewhere = best is not None and best[1] >= MIN_PSNR_DB and best[0] != match.index
    clearly = own is None or (best is not None and best[1] > own + BETTER_BY_DB)
    if best is not None and elsewhere and (clearly or match.neighbour_closer()):
        check.problems.append(
            f"{name} is frame {best[0]} of {video}: {offset_words(best[0] - match.index)}"
            + ("" if best[1] == math.inf else f" (PSNR {best[1]:.1f} dB)")
            + f"; export frame {match.index} again, counting frames from 0 in order"
        )
        return
    if own is not None and own >= MIN_PSNR_DB:
        check.lossy.append((match.index, own))
        return
    if match.index >= frame_count:
        check.problems.append(
            f"{name} is past the end of {video}, which has {frame_count} frames "
            f"(0 to {frame_count - 1}); is the zip from another recording?"
        )
        return
    closest = f"; the closest is frame {best[0]} at {best[1]:.1f} dB" if best else ""
    check.problems.append(
        f"{name} is not from this video: it matches none of frames "
        f"{max(match.index - NEIGHBOURS, 0)} to {match.index + NEIGHBOURS} of {video} "
        f"(PSNR below {MIN_PSNR_DB:g} dB{closest}); is the zip named after the right video?"
    )


def check_against_video(
    video: Path,
    indices: Sequence[int],
    load: Callable[[int], Image],
    progress: Callable[[float], None] = lambda fraction: None,
) -> VideoCheck:
    """Compare zip frame ``load(i)`` (BGR) with frame ``i`` of ``video`` for each of ``indices``.

    Raises:
        InputError: the video does not open.
    """
    targets = sorted(set(indices))
    check = VideoCheck(video=video.name, frame_count=0)
    if not targets:
        return check
    last = targets[-1] + NEIGHBOURS
    pending: dict[int, tuple[Image, Match]] = {}
    recent: deque[tuple[int, Image]] = deque()
    upcoming = deque(targets)
    finished: list[Match] = []
    index = 0
    with open_video(video) as capture:
        while index <= last and capture.grab():
            near = (upcoming and upcoming[0] - NEIGHBOURS <= index) or pending
            if near:
                ok, frame = capture.retrieve()
                if ok and frame is not None:
                    step(index, np.asarray(frame, np.uint8), upcoming, pending, recent, load)
                    finished += finish(pending, index)
            index += 1
            if index % 64 == 0:
                progress(min(index / (last + 1), 1.0))
    check.frame_count = index if index <= last else -1
    finished += [match for _, match in pending.values()]
    finished += [Match(i) for i in upcoming]
    frame_count = check.frame_count if check.frame_count >= 0 else last + 1
    for match in sorted(finished, key=lambda m: m.index):
        verdict(match, video.name, frame_count, check)
    return check


def step(
    index: int,
    frame: Image,
    upcoming: deque[int],
    pending: dict[int, tuple[Image, Match]],
    recent: deque[tuple[int, Image]],
    load: Callable[[int], Image],
) -> None:
    """Compare decoded frame ``index`` with the zip frames it may be; remember it for later ones."""
    while upcoming and upcoming[0] <= index:
        number = upcoming.popleft()
        image = load(number)
        match = Match(number)
        if number == index and image.shape == frame.shape and np.array_equal(image, frame):
            match.consider(index, math.inf)
            pending[number] = (image, match)
            continue
        for earlier, old in recent:
            if earlier >= number - NEIGHBOURS and old.shape == image.shape:
                match.consider(earlier, psnr(image, old), old)
        pending[number] = (image, match)
    for number, (image, match) in pending.items():
        if match.own_psnr == math.inf or image.shape != frame.shape:
            continue
        if number == index and np.array_equal(image, frame):
            match.consider(index, math.inf)
        elif number - NEIGHBOURS <= index <= number + NEIGHBOURS:
            match.consider(index, psnr(image, frame), frame)
    recent.append((index, frame))
    while recent and recent[0][0] < index - NEIGHBOURS + 1:
        recent.popleft()


def finish(pending: dict[int, tuple[Image, Match]], index: int) -> list[Match]:
    """The comparisons that no later frame can change: identical, or all neighbours seen."""
    done = [
        number
        for number, (_, match) in pending.items()
        if match.own_psnr == math.inf or number + NEIGHBOURS <= index
    ]
    return [pending.pop(number)[1] for number in done]


def read_png(path: Path) -> Image:
    """A PNG as 8-bit BGR, as the video's frames are decoded (grey or alpha converted)."""
    image = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{path.name} does not decode")
    return np.asarray(image, np.uint8)
