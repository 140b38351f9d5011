"""Test media made on the spot: videos whose every frame carries its own index.

The index is drawn as a strip of 16 black or white blocks across the top of the frame, big
enough to survive lossy codecs, so a test can decode any PNG and say which frame it holds.
Below the strip a disc moves over a textured background, so frames differ in content the
way an animal's poses do.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

BITS = 16
STRIP_H = 16

CODECS = {
    "mp4v-mp4": ("mp4v", ".mp4"),
    "mjpg-avi": ("MJPG", ".avi"),
}


def barcode_frame(index: int, width: int = 160, height: int = 120) -> npt.NDArray[np.uint8]:
    """A BGR frame showing ``index`` as a barcode strip above a moving disc."""
    rng = np.random.default_rng(7)
    frame = (rng.integers(40, 90, size=(height, width, 3))).astype(np.uint8)
    block = width // BITS
    for bit in range(BITS):
        value = 255 if (index >> bit) & 1 else 0
        frame[:STRIP_H, bit * block : (bit + 1) * block] = value
    angle = index * 0.07
    centre = (
        int(width / 2 + width / 3 * np.cos(angle)),
        int(STRIP_H + (height - STRIP_H) / 2 + (height - STRIP_H) / 3 * np.sin(1.3 * angle)),
    )
    cv2.circle(frame, centre, max(4, height // 10), (200, 220, 240), thickness=-1)
    return frame


def read_barcode(image: npt.NDArray[np.uint8]) -> int:
    """The index drawn by ``barcode_frame`` into ``image``."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    block = grey.shape[1] // BITS
    index = 0
    for bit in range(BITS):
        cell = grey[2 : STRIP_H - 2, bit * block + 2 : (bit + 1) * block - 2]
        if float(cell.mean()) > 127:
            index |= 1 << bit
    return index


def write_barcode_video(
    path: Path,
    frames: int,
    codec: str = "mp4v-mp4",
    width: int = 160,
    height: int = 120,
    fps: float = 30.0,
) -> Path:
    """Write a barcode video with ``frames`` frames; ``path`` gets the codec's suffix."""
    fourcc, suffix = CODECS[codec]
    path = path.with_suffix(suffix)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {codec} to {path}")
    for index in range(frames):
        writer.write(barcode_frame(index, width, height))
    writer.release()
    return path
