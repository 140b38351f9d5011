"""Contact sheets: a bundle's chosen frames as labelled thumbnails, for every kind of bundle.

Kept apart from the video handler's report so that other kinds (zips) can draw one without
importing what choosing frames needs (scikit-learn takes seconds to import in a worker).
"""

from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np
import numpy.typing as npt

from handlers.bundle import dated_names

CONTACT_SHEET = "contact_sheet.png"
TILE_WIDTH = 200
"""Width of one thumbnail on the contact sheet, in pixels."""
SHEET_COLUMNS = 5
LABEL_HEIGHT = 22


def sheet_name(dated: bool) -> str:
    """``contact_sheet.png``, or with the UTC time for a second bundle in one folder."""
    return dated_names((CONTACT_SHEET,), dated)[0]


def sheet_tile(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """A frame shrunk to TILE_WIDTH wide (BGR), kept for the contact sheet."""
    if image.ndim == 2:
        image = np.asarray(cv2.cvtColor(image, cv2.COLOR_GRAY2BGR), dtype=np.uint8)
    height = max(1, round(image.shape[0] * TILE_WIDTH / image.shape[1]))
    tile = cv2.resize(image, (TILE_WIDTH, height), interpolation=cv2.INTER_AREA)
    return np.asarray(tile, dtype=np.uint8)


def contact_sheet(
    tiles: Mapping[int, npt.NDArray[np.uint8]], columns: int = SHEET_COLUMNS
) -> npt.NDArray[np.uint8]:
    """The tiles in rows of ``columns``, in frame order, each labelled with its frame number."""
    order = sorted(tiles)
    if not order:
        return np.full((LABEL_HEIGHT, TILE_WIDTH, 3), 255, dtype=np.uint8)
    tile_h = max(tile.shape[0] for tile in tiles.values())
    cell_h = tile_h + LABEL_HEIGHT
    rows = -(-len(order) // columns)
    sheet = np.full((rows * cell_h, min(columns, len(order)) * TILE_WIDTH, 3), 255, np.uint8)
    for position, index in enumerate(order):
        top, left = (position // columns) * cell_h, (position % columns) * TILE_WIDTH
        tile = tiles[index]
        sheet[top : top + tile.shape[0], left : left + TILE_WIDTH] = tile
        cv2.putText(
            sheet,
            f"#{index}",
            (left + 4, top + tile_h + LABEL_HEIGHT - 6),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.5,
            (0, 0, 0),
            1,
            cv2.LINE_AA,
        )
    return sheet
