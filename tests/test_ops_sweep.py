"""The nightly sweep (real daemons) and the retry policy (known answers)."""

from __future__ import annotations

import json
import os
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from daemon.config import Retry, Settings
from daemon.cron import crontab_trigger
from daemon.sweep import (
    backoff_delay,
    missed_run,
    prune_working_files,
    revive_passing_failures,
)
from tests.harness import Framewatch
from tests.ops import bundle_selected, drop, events, immutable, make_video, set_mutable

TWO_DAYS_S = 2 * 24 * 3600

SWEEP_TEST = """
[extract]
frames_per_video = 4
context_frames = 1
[retry]
first_delay_s = 0.2
max_delay_s = 0.4
max_attempts = 2
sweep_rounds = 1
[sweep]
cron = "0 0 1 1 *"
prune_after_h = 1
"""


def make_old(path: Path, age_s: float = TWO_DAYS_S) -> Path:
    """Give ``path`` an mtime ``age_s`` in the past (a copy that kept the original's time)."""
    then = time.time() - age_s
    os.utime(path, (then, then))
    return path


def test_sweep_retries_passing_failures_prunes_and_summarizes(fw: Framewatch) -> None:
    """On a sweep, an item failed for a passing reason is redone, bad input stays failed,
    stale working files go (user files stay), and a daily summary is written."""
    fw.settle_s = 0.3
    fw.extra_config = SWEEP_TEST
    fw.write_config()
    stale = make_old(_touch(fw.root / "status" / "videos" / ".gone.json.x1y2.tmp"))
    fresh = _touch(fw.root / "status" / "videos" / ".kept.json.a1b2.tmp")
    partial = make_old(_touch(fw.inbox("videos") / ".rig-copy.mp4.part"))
    labeled = fw.project / "labeled-data"
    with immutable(labeled):
        fw.start()
        drop(make_video(fw.root / "src", "good", 80), fw.inbox("videos"))
        (fw.inbox("videos") / "bad.mp4").write_bytes(b"not a video at all" * 100)
        gave_up = fw.wait_state("videos", "good", ("failed",), timeout=90)
        bad = fw.wait_state("videos", "bad", ("failed",), timeout=90)
        set_mutable(labeled)
    assert fw.process is not None
    fw.process.send_signal(signal.SIGUSR1)  # what `systemctl kill -s USR1 framewatch` does
    summary_file = fw.root / "status" / f"summary-{datetime.now(UTC):%Y-%m-%d}.json"
    fw.wait_for(lambda: events(fw, "sweep done"), 30, "the sweep")
    good = fw.wait_state("videos", "good", ("complete",), timeout=90)
    summary = json.loads(summary_file.read_text())
    assert (True, True) == (
        gave_up["passing_error"],
        "The nightly sweep will try again." in gave_up["message"],
    )
    assert (False, "failed") == (bad["passing_error"], fw.status("videos", "bad")["state"])
    assert "complete" == good["state"]
    assert 4 == len(bundle_selected(fw, "good"))
    assert ["bad.mp4"] == sorted(path.name for path in fw.failed("videos").iterdir())
    assert (False, True, True) == (stale.exists(), fresh.exists(), partial.exists())
    assert (["videos/good"], [str(stale)]) == (summary["retried"], summary["pruned"])
    assert ["videos/bad"] == summary["failed_since"]  # good was queued again before the summary
    assert 0 == fw.stop()


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{}")
    return path


def test_sweep_missed_while_down_runs_on_start(fw: Framewatch) -> None:
    """A daemon down at the scheduled time sweeps on start, within the misfire grace time."""
    fw.config.write_text(
        fw.config.read_text().replace("[workers]\n", '[workers]\nhost = "late"\n', 1)
        + f'\n[sweep]\ncron = "0 0 * * *"\nmisfire_grace_s = {TWO_DAYS_S}\n'
    )
    state = fw.root / "work" / "sweep" / "late.json"
    state.parent.mkdir(parents=True)
    last = datetime.now(UTC) - timedelta(days=2)
    state.write_text(json.dumps({"last_run": last.isoformat()}))
    old_video = make_old(
        make_video(fw.inbox("videos"), "kept-mtime", 60)
    )  # copied with its old mtime
    fw.start()
    fw.wait_for(lambda: events(fw, "sweep done"), 30, "the catch-up sweep")
    status = fw.wait_state("videos", "kept-mtime", timeout=90)
    assert [True] == [event["catch_up"] for event in events(fw, "sweep scheduled")]
    assert "complete" == status["state"]
    assert last < datetime.fromisoformat(json.loads(state.read_text())["last_run"])
    assert False is old_video.exists()
    assert 0 == fw.stop()


@pytest.mark.parametrize(
    ("attempt", "draw", "expected"),
    [
        (1, 0.0, 10.0),
        (2, 0.0, 20.0),
        (3, 0.0, 40.0),
        (7, 0.0, 600.0),
        (60, 0.0, 600.0),
        (1, 1.0, 7.5),
        (7, 1.0, 450.0),
    ],
    ids=[
        "first",
        "doubles",
        "doubles-again",
        "capped",
        "capped-far",
        "jitter-first",
        "jitter-capped",
    ],
)
def test_backoff_doubles_up_to_the_cap_and_jitter_only_shortens(
    attempt: int, draw: float, expected: float
) -> None:
    """Delays double from first_delay_s up to max_delay_s; jitter only takes time off."""
    policy = Retry(first_delay_s=10.0, max_delay_s=600.0, jitter=0.25, max_attempts=8)
    assert expected == pytest.approx(backoff_delay(attempt, policy, lambda: draw))


@pytest.mark.parametrize(
    ("cron", "weekday"),
    [("0 3 * * 0", 6), ("0 3 * * 7", 6), ("0 3 * * 1", 0), ("0 3 * * 1-5", 0), ("0 3 * * sat", 5)],
    ids=["sunday-0", "sunday-7", "monday", "weekdays", "name"],
)
def test_cron_weekdays_count_from_sunday(cron: str, weekday: int) -> None:
    """Weekday numbers mean what they mean to cron (0 and 7 are Sunday), not Monday=0."""
    saturday_noon = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    fire = crontab_trigger(cron).get_next_fire_time(None, saturday_noon)
    assert weekday == fire.weekday()


@pytest.mark.parametrize(
    ("last_run_h_ago", "grace_h", "expected"),
    [(30, 30, True), (1, 30, False), (30, 1, False), (None, 30, True)],
    ids=["missed-in-grace", "ran-since", "beyond-grace", "never-ran"],
)
def test_missed_run(last_run_h_ago: float | None, grace_h: float, expected: bool) -> None:
    """A sweep is caught up when its time passed after the last run, within the grace time."""
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # the daily 03:30 run was 8.5 h ago
    last = None if last_run_h_ago is None else now - timedelta(hours=last_run_h_ago)
    assert expected == missed_run(crontab_trigger("30 3 * * *"), last, now, grace_h * 3600)


def test_bad_cron_is_a_config_error_naming_the_key(fw: Framewatch) -> None:
    """A cron line that does not parse stops check-config with exit 2 and names sweep.cron."""
    fw.config.write_text(fw.config.read_text() + '\n[sweep]\ncron = "0 3 * *"\n')
    done = fw.cli("check-config")
    assert (2, True) == (done.returncode, "sweep.cron" in done.stderr)


def failed_status(settings: Settings, name: str, passing: bool) -> dict[str, object]:
    """A failed status as the daemon writes it, with its input kept under failed/videos/."""
    kept = settings.folder("failed") / "videos" / f"{name}.mp4"
    kept.parent.mkdir(parents=True, exist_ok=True)
    kept.write_bytes(b"video bytes")
    entry = {"path": str(kept), "name": f"{name}.mp4"}
    return {
        "kind": "videos",
        "name": name,
        "state": "failed",
        "passing_error": passing,
        "kept": [entry],
    }


def test_revive_puts_back_passing_failures_only_up_to_sweep_rounds(tmp_path: Path) -> None:
    """Failed for a passing reason: back to the inbox once per round, up to sweep_rounds; bad
    input stays; a name taken in the inbox is left for the next sweep, never replaced."""
    settings = Settings(root=tmp_path, retry=Retry(sweep_rounds=1))
    inbox = settings.folder("videos")
    inbox.mkdir(parents=True)
    (inbox / "taken.mp4").write_bytes(b"a newer copy")
    statuses = [
        failed_status(settings, name, passing)
        for name, passing in [("passing", True), ("bad", False), ("taken", True)]
    ]
    rounds = tmp_path / "work" / "sweep" / "rounds.json"
    first = revive_passing_failures(settings, statuses, rounds)
    (inbox / "passing.mp4").rename(settings.folder("failed") / "videos" / "passing.mp4")
    second = revive_passing_failures(settings, statuses, rounds)
    assert [("videos", "passing")] == first
    assert [] == second
    assert b"a newer copy" == (inbox / "taken.mp4").read_bytes()
    assert ["bad.mp4", "passing.mp4", "taken.mp4"] == sorted(
        path.name for path in (settings.folder("failed") / "videos").iterdir()
    )


def test_prune_removes_only_our_stale_temporaries(tmp_path: Path) -> None:
    """Old hidden temporaries of ours go; fresh ones, claimed inputs and bundle files stay."""
    settings = Settings(root=tmp_path)
    bundle = settings.folder("project") / "labeled-data" / "mouse"
    claimed_input = settings.folder("work") / "claims" / "h.1" / "videos" / "x.mp4" / "input"
    old = [
        _touch(settings.folder("status") / "videos" / ".mouse.json.k2j3.tmp"),
        _touch(bundle / ".selected_frames.csv.a8f1.tmp"),
        _touch(bundle / ".img00000001.png.incoming"),
    ]
    kept = [
        _touch(claimed_input / ".x.json.tmp"),  # a user's file, whatever its name
        _touch(bundle / ".notes.tmp"),  # a labeller's file in the bundle
        _touch(bundle / "img00000001.png"),
    ]
    for path in old + kept:
        make_old(path)
    fresh = _touch(settings.folder("status") / "videos" / ".other.json.b7c8.tmp")
    removed = prune_working_files(settings, "h", older_than_s=3600, now=time.time())
    assert sorted(old) == sorted(removed)
    assert [True] * 4 == [path.exists() for path in [*kept, fresh]]
