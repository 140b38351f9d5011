"""A video dropped into a running daemon becomes a complete bundle."""

from __future__ import annotations

import cv2

from tests.harness import Framewatch
from tests.media import read_barcode, write_barcode_video


def test_video_becomes_bundle(fw: Framewatch) -> None:
    """A settled video ends complete, with exact frames and the video moved to the project."""
    fw.start()
    video = write_barcode_video(fw.root / "src" / "mouse1", 200) if (fw.root / "src").mkdir() is None else None
    assert video is not None
    video.rename(fw.inbox("videos") / video.name)
    status = fw.wait_state("videos", "mouse1")
    assert "complete" == status["state"], status
    bundle = fw.bundle("mouse1")
    pngs = sorted(bundle.glob("img*.png"))
    for png in pngs:
        assert int(png.stem[3:]) == read_barcode(cv2.imread(str(png)))
    assert 0 == fw.stop()
