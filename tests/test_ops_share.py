"""Share outages and two hosts on one share, with real daemon processes."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

from tests.harness import Framewatch
from tests.ops import bundle_selected, drop, events, half_bundles, make_video

FAST = "\n[extract]\nframes_per_video = 4\ncontext_frames = 1\n"


@pytest.mark.parametrize("mode", ["polling", "native"])
def test_watch_resumes_after_the_inbox_went_away(fw: Framewatch, mode: str) -> None:
    """An inbox moved away and back: the watch is lost, resumed, and new files are taken."""
    fw.settle_s = 0.3
    fw.extra_config = FAST
    fw.write_config()
    fw.config.write_text(fw.config.read_text().replace('mode = "polling"', f'mode = "{mode}"'))
    fw.start()
    inbox = fw.inbox("videos")
    away = fw.root / "unmounted"
    inbox.rename(away)  # the share drops away
    fw.wait_for(lambda: events(fw, "watch lost"), 30, "the daemon to notice the lost watch")
    away.rename(inbox)  # and comes back
    fw.wait_for(lambda: events(fw, "watch resumed"), 60, "the watch to resume")
    drop(make_video(fw.root / "src", "after", 80), inbox)
    status = fw.wait_state("videos", "after", timeout=90)
    assert "complete" == status["state"], status
    # Lost and resumed alike: once when moved away (the daemon makes an empty inbox again while
    # the root is there), and again when the old one is moved back over the new one.
    lost, resumed = len(events(fw, "watch lost")), len(events(fw, "watch resumed"))
    assert 1 <= lost == resumed, (lost, resumed)
    assert 0 == fw.stop()


def second_daemon(first: Framewatch, folder: Path, host: str) -> Framewatch:
    """Another daemon on ``first``'s root, as a second machine mounting the same share."""
    other = Framewatch(folder, settle_s=first.settle_s, extra_config=first.extra_config)
    other.config.write_text(first.config.read_text(), encoding="utf-8")
    other.env = {"FRAMEWATCH_WORKERS__HOST": host}
    return other


def test_two_hosts_on_one_root_do_each_item_once(fw: Framewatch, tmp_path: Path) -> None:
    """Two daemons (two host names) on one root and a burst of arrivals: each item is done once."""
    fw.settle_s = 0.3
    fw.extra_config = FAST
    fw.write_config()
    fw.env = {"FRAMEWATCH_WORKERS__HOST": "rig-a"}
    names = [f"m{i:02d}" for i in range(6)]
    for name in names:
        make_video(fw.root / "src", name, 60)
    with second_daemon(fw, tmp_path / "host-b", "rig-b") as other:
        fw.start()
        other.start()
        for name in names:
            drop(fw.root / "src" / f"{name}.mp4", fw.inbox("videos"))
        for name in names:
            fw.wait_state("videos", name, timeout=180)
        codes = (fw.stop(), other.stop())
        claimed = Counter(e["name"] for d in (fw, other) for e in events(d, "claimed"))
        started = Counter(e["name"] for d in (fw, other) for e in events(d, "started"))
    assert (0, 0) == codes
    assert {name: "complete" for name in names} == {
        n: fw.status("videos", n)["state"] for n in names
    }
    assert {name: 1 for name in names} == dict(claimed)
    assert {name: 1 for name in names} == dict(started)
    assert {name: 4 for name in names} == {name: len(bundle_selected(fw, name)) for name in names}
    assert sorted(f"{name}.mp4" for name in names) == sorted(
        path.name for path in (fw.project / "videos").iterdir()
    )
    assert [] == half_bundles(fw)
    assert [] == sorted((fw.root / "work" / "claims").glob("*/videos/*"))


def test_rename_reported_failed_but_done_counts_as_claimed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On NFS a rename can happen and still report an error (a lost reply): the claim holds."""
    import errno

    from daemon import claim

    source, target = tmp_path / "inbox.mp4", tmp_path / "claimed.mp4"
    source.write_bytes(b"video")
    real_rename = os.rename

    def rename_then_lose_the_reply(src: object, dst: object) -> None:
        real_rename(src, dst)  # type: ignore[arg-type]
        raise OSError(errno.EIO, "Input/output error (the server's reply was lost)")

    monkeypatch.setattr(claim.os, "rename", rename_then_lose_the_reply)
    claimed = claim.rename_checked(source, target)
    assert (True, False, b"video") == (claimed, source.exists(), target.read_bytes())
