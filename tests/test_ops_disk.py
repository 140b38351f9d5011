"""No room or no permission in the project folder: the item waits and retries; nothing is lost."""

from __future__ import annotations

import pytest

from tests.harness import Framewatch
from tests.ops import (
    bundle_selected,
    drop,
    events,
    half_bundles,
    immutable,
    make_video,
    set_mutable,
)

RETRY_FAST = """
[extract]
frames_per_video = 4
context_frames = 1
[retry]
first_delay_s = 0.3
max_delay_s = 1.0
max_attempts = 1000
"""


@pytest.mark.parametrize("refusing", ["labeled-data", "videos"])
def test_refused_project_folder_waits_and_retries(fw: Framewatch, refusing: str) -> None:
    """A project folder refusing writes: queued saying why, retried, complete once it accepts."""
    fw.settle_s = 0.3
    fw.extra_config = RETRY_FAST
    fw.write_config()
    folder = fw.project / refusing
    with immutable(folder):
        fw.start()
        drop(make_video(fw.root / "src", "mouse", 80), fw.inbox("videos"))

        def retried_twice() -> dict[str, object] | None:
            status = fw.status("videos", "mouse") or {}
            return (
                status
                if int(status.get("attempts", 0)) >= 2 and status["state"] == "queued"
                else None
            )

        waiting = fw.wait_for(retried_twice, 90, "two failed attempts")
        alive = fw.process is not None and fw.process.poll() is None
        set_mutable(folder)
        status = fw.wait_state("videos", "mouse", timeout=60)
    message = str(waiting["message"])
    assert True is alive
    assert (True, True, True) == (
        message.startswith("Permission denied"),
        str(folder) in message,
        "Nothing is lost" in message,
    )
    assert "complete" == status["state"], status
    assert 4 == len(bundle_selected(fw, "mouse"))
    assert ["mouse.mp4"] == sorted(path.name for path in (fw.project / "videos").iterdir())
    assert [] == half_bundles(fw)
    assert 1 == len(events(fw, "started", name="mouse"))  # retries publish the saved result
    assert 0 == fw.stop()
