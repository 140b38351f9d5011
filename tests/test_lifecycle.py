"""How one item ends, decided without a daemon: retry or fail, and what its status says.

The daemon tests (tests/test_ops_*.py) drive the same paths end to end; these pin the
decisions themselves, with real OSErrors as the filesystem raises them.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from daemon import lifecycle
from daemon.config import Retry
from daemon.executor import ClusterLost, WorkerDied
from daemon.worker import HandlerCrash
from handlers.outcome import IncompleteInput, InputError

POLICY = Retry(first_delay_s=10.0, max_delay_s=600.0, jitter=0.25, max_attempts=3)


def no_jitter() -> float:
    return 0.0


def full_disk() -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/share/project/labeled-data")


def test_passing_errors_are_filesystem_trouble_that_may_go_away() -> None:
    assert lifecycle.is_passing(full_disk())
    assert lifecycle.is_passing(OSError(errno.ESTALE, "stale", "/share"))
    assert not lifecycle.is_passing(OSError(errno.EINVAL, "invalid", "/share"))
    assert not lifecycle.is_passing(InputError(["bad"]))
    assert not lifecycle.is_passing(WorkerDied("killed"))


def test_passing_error_is_retried_with_doubling_delay_until_attempts_run_out() -> None:
    first = lifecycle.retry_passing(full_disk(), 1, POLICY, no_jitter)
    second = lifecycle.retry_passing(full_disk(), 2, POLICY, no_jitter)
    assert first is not None and second is not None
    assert (first.delay_s, second.delay_s) == (10.0, 20.0)
    assert first.attempts == 1
    assert first.message == (
        "The disk is full (/share/project/labeled-data). Nothing is lost; trying again in "
        "10 s (attempt 2 of 3)."
    )
    assert lifecycle.retry_passing(full_disk(), 3, POLICY, no_jitter) is None


def test_jitter_only_shortens_the_delay() -> None:
    retry = lifecycle.retry_passing(full_disk(), 1, POLICY, lambda: 1.0)
    assert retry is not None and retry.delay_s == 7.5


def test_failed_passing_error_says_how_often_it_was_tried_and_what_comes_next() -> None:
    problems = lifecycle.failure_problems(full_disk(), 3, sweep_enabled=True)
    assert problems == [
        "The disk is full (/share/project/labeled-data). Tried 3 times. "
        "The nightly sweep will try again."
    ]
    assert lifecycle.failure_problems(full_disk(), 0, sweep_enabled=False) == [
        "The disk is full (/share/project/labeled-data)."
    ]


def test_a_refused_rename_names_the_folder_moved_into() -> None:
    exc = OSError(errno.EACCES, "denied", "/work/claims/a.mp4", None, "/share/failed/video")
    assert lifecycle.describe_passing(exc) == (
        "Permission denied (moving a.mp4 to /share/failed/video)."
    )
    lost = OSError(errno.EHOSTDOWN, "Host is down")
    assert lifecycle.describe_passing(lost) == "The share could not be reached (Host is down)."


def test_other_failures_are_each_a_sentence_the_user_can_act_on() -> None:
    assert lifecycle.failure_problems(InputError(["no video", "odd."]), 0, True) == [
        "no video.",
        "odd.",
    ]
    (died,) = lifecycle.describe_failure(WorkerDied("signal 9"))
    assert died.startswith("Processing stopped abruptly: signal 9. The file may be damaged")
    (crash,) = lifecycle.describe_failure(HandlerCrash("ValueError: x", "traceback"))
    assert crash == "framewatch hit an unexpected error (ValueError: x); please report it."
    (other,) = lifecycle.describe_failure(KeyError("k"))
    assert "KeyError" in other and other.endswith("please report it.")


def test_a_worker_death_is_retried_once_then_blames_the_file() -> None:
    retry = lifecycle.retry_death(WorkerDied("signal 9"), 1, POLICY)
    assert retry is not None
    assert (retry.delay_s, retry.attempts) == (10.0, 1)
    assert retry.message == "Processing stopped abruptly (signal 9). Trying again in 10 s."
    assert lifecycle.retry_death(WorkerDied("signal 9"), 2, POLICY) is None


def test_a_short_recording_waits_for_its_rest_then_fails() -> None:
    short = IncompleteInput(["short"], decoded=50, promised=100)
    retry = lifecycle.retry_short(short, 2, POLICY, no_jitter)
    assert retry is not None and retry.delay_s == 20.0
    assert retry.message.startswith(
        "Only 50 of the 100 frames its container promises decode: the copy looks incomplete"
    )
    assert "(attempt 3 of 3)" in retry.message
    assert lifecycle.retry_short(short, 3, POLICY, no_jitter) is None
    assert lifecycle.short_left_message(short).endswith("It stays in the inbox for the next pass.")


def test_failed_item_says_where_its_files_were_kept() -> None:
    kept = [Path("/share/failed/video/a.mp4"), Path("/share/failed/video/a.json")]
    message = lifecycle.failed_message(["No video."], kept)
    assert message == (
        "No video. The file was kept as /share/failed/video/a.mp4, /share/failed/video/a.json."
    )


@pytest.mark.parametrize("passing", [True, False])
def test_unmovable_failure_waits_and_says_why(passing: bool) -> None:
    read_only = OSError(errno.EROFS, "read-only", "/share/failed")
    message = lifecycle.unmoved_message(["First.", "Second."], passing, read_only, 600.0)
    if passing:
        assert message == "First. Trying again in 600 s."
    else:
        assert message == (
            "First. It is kept until it can be moved to failed/: The folder is read-only "
            "(/share/failed). Trying again in 600 s."
        )


def test_messages_for_put_back_resettled_and_requeued_items() -> None:
    assert lifecycle.stopped_message(True).endswith("it will be redone.")
    assert lifecycle.stopped_message(False).endswith("it resumes on the next start.")
    assert "It is back in the inbox" in lifecycle.resettle_message(True, 10.0)
    assert lifecycle.resettle_message(False, 10.0).endswith("Looking again in 10 s.")
    assert lifecycle.requeue_message(ClusterLost("The scheduler is gone.")) == (
        "The scheduler is gone. It will run again as soon as a worker can take it."
    )
