"""The shipped systemd unit: systemd itself checks it, and it says what the issue asks for."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import REPO

UNIT = REPO / "systemd" / "framewatch.service"
SHIPPED_EXEC = "/opt/framewatch/venv/bin/framewatch"


def unit_settings(text: str) -> dict[str, list[str]]:
    """Every ``Key=value`` of a unit file, a key's values in order (systemd allows repeats)."""
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")) and "=" in line:
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    """`systemd-analyze verify` accepts the unit without a warning (ExecStart: this venv)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    framewatch = Path(sys.executable).parent / "framewatch"
    if not framewatch.exists():
        pytest.skip(f"{framewatch} is absent: install the project in this environment")
    # verify wants ExecStart's program to exist; the shipped path is the README's install.
    text = UNIT.read_text(encoding="utf-8")
    assert SHIPPED_EXEC in text
    copy = tmp_path / "framewatch.service"
    copy.write_text(text.replace(SHIPPED_EXEC, str(framewatch)), encoding="utf-8")
    done = subprocess.run(
        [analyze, "verify", str(copy)], capture_output=True, text=True, timeout=120
    )
    assert (0, "") == (done.returncode, done.stderr.strip()), done.stderr


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("Type", "notify"),
        ("Restart", "always"),
        ("RestartPreventExitStatus", "2"),
        ("KillMode", "mixed"),
        ("User", "framewatch"),
        ("ProtectSystem", "strict"),
        ("NoNewPrivileges", "yes"),
        ("PrivateTmp", "yes"),
        ("ProtectHome", "yes"),
        ("RequiresMountsFor", "/srv/framewatch"),
        ("ReadWritePaths", "/srv/framewatch"),
    ],
    ids=lambda value: str(value),
)
def test_unit_settings(key: str, expected: str) -> None:
    """The unit has the setting the issue lists, with the value the README documents."""
    assert [expected] == unit_settings(UNIT.read_text(encoding="utf-8")).get(key)


@pytest.mark.parametrize(
    "key", ["StartLimitBurst", "StartLimitIntervalSec", "TimeoutStopSec", "WatchdogSec"]
)
def test_unit_limits_are_set(key: str) -> None:
    """Start limit, stop timeout and watchdog are set once, to a number of seconds or tries."""
    values = unit_settings(UNIT.read_text(encoding="utf-8")).get(key, [])
    assert (1, True) == (len(values), all(value.isdigit() and int(value) > 0 for value in values))


def test_unit_has_no_dynamic_user() -> None:
    """Files on the share must belong to a real account, so the unit never uses DynamicUser."""
    assert None is unit_settings(UNIT.read_text(encoding="utf-8")).get("DynamicUser")


def test_stop_timeout_leaves_room_for_the_grace_period() -> None:
    """TimeoutStopSec exceeds the default stop_grace_s, so items in flight get their grace."""
    from daemon.config import Workers

    timeout = int(unit_settings(UNIT.read_text(encoding="utf-8"))["TimeoutStopSec"][0])
    assert True is (timeout > Workers().stop_grace_s + 10)
