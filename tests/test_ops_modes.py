"""File modes (issue 15): what the daemon writes for others to read follows the umask."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.harness import Framewatch
from tests.ops import drop, make_video

FAST = "\n[extract]\nframes_per_video = 4\ncontext_frames = 1\n"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_status_files_and_merged_csv_get_the_umasks_mode(fw: Framewatch, umask: int) -> None:
    """Under umask 022 the status file and a merged selected_frames.csv are 0644 (0664 under
    002), so rig users and a labeler under another account can read them."""
    fw.settle_s = 0.3
    fw.extra_config = FAST
    fw.write_config()
    old = os.umask(umask)
    try:
        fw.start()  # the daemon inherits the umask
    finally:
        os.umask(old)
    drop(make_video(fw.root / "src", "m", 60), fw.inbox("videos"))
    assert "complete" == fw.wait_state("videos", "m")["state"]
    first = (fw.bundle("m") / "selected_frames.csv").read_text()
    drop(make_video(fw.root / "src2", "m", 90), fw.inbox("videos"))  # a second session
    fw.wait_for(
        lambda: (fw.bundle("m") / "selected_frames.csv").read_text() != first,
        120,
        "the second bundle to be merged into the first",
    )
    assert "complete" == fw.wait_state("videos", "m")["state"]
    expected = 0o666 & ~umask
    assert oct(expected) == oct(mode(fw.bundle("m") / "selected_frames.csv"))
    assert oct(expected) == oct(mode(fw.status_path("videos", "m")))
    assert 0 == fw.stop()
