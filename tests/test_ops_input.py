"""Odd input (issue 15): a huge sidecar is refused without flooding the status or the log."""

from __future__ import annotations

import json

from tests.harness import Framewatch
from tests.ops import drop, make_video

FAST = "\n[extract]\nframes_per_video = 4\ncontext_frames = 1\n"


def test_huge_sidecar_is_refused_with_a_short_status(fw: Framewatch) -> None:
    """A 1 MB sidecar: the item fails saying the sidecar is too big; status and log stay small."""
    fw.settle_s = 0.3
    fw.extra_config = FAST
    fw.write_config()
    fw.start()
    inbox = fw.inbox("videos")
    (inbox / "big.json").write_text(json.dumps({"frames_per_video": "x" * 1_000_000}))
    drop(make_video(fw.root / "src", "big", 60), inbox)
    status = fw.wait_state("videos", "big")
    assert "failed" == status["state"], status
    assert "more than the 65536 a sidecar may have" in status["message"], status
    assert fw.status_path("videos", "big").stat().st_size < 8000
    assert len(fw.log_text()) < 100_000
    assert 0 == fw.stop()
