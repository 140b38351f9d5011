"""Per-frame features: what each decoded frame is reduced to before frames are chosen.

Kept apart from the decoding loop (frames.py) so the choice of features can change without
touching how frames are read, and the reading can get faster without touching the features.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

THUMB_SIZE = (32, 32)
"""Width and height each frame is reduced to for choosing: enough to tell poses apart."""


def reduce_frame(frame: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """A small grey version of a frame, averaged over areas so noise does not dominate."""
    grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
    return cv2.resize(grey, THUMB_SIZE, interpolation=cv2.INTER_AREA).reshape(-1)
