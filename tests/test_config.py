"""Configuration as the contract fixes it, through the real `framewatch` command."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import REPO


def framewatch(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `python -m daemon ARGS` in ``cwd`` with only the given FRAMEWATCH_ variables."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("FRAMEWATCH_")}
    base["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, "-m", "daemon", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**base, **(env or {})},
        timeout=60,
    )


def test_defaults_without_any_file(tmp_path: Path) -> None:
    """With no file anywhere, check-config shows the built-in defaults under ./framewatch-data."""
    result = framewatch("check-config", cwd=tmp_path)
    assert 0 == result.returncode, result.stderr
    assert "built-in defaults" in result.stdout
    assert 'root = "framewatch-data"' in result.stdout
    assert "settle_s = 30.0" in result.stdout
    assert "frames_per_video = 20" in result.stdout
    assert f"root resolves to {tmp_path / 'framewatch-data'}" in result.stdout


def test_file_then_environment_override(tmp_path: Path) -> None:
    """A key from the file is used, and FRAMEWATCH_SECTION__KEY wins over it."""
    config = tmp_path / "site.toml"
    config.write_text('root = "/srv/fw"\n[watch]\nsettle_s = 5\n[extract]\nframes_per_video = 7\n')
    result = framewatch(
        "check-config", "-c", str(config), cwd=tmp_path, env={"FRAMEWATCH_WATCH__SETTLE_S": "2"}
    )
    assert 0 == result.returncode, result.stderr
    assert 'root = "/srv/fw"' in result.stdout
    assert "settle_s = 2.0" in result.stdout
    assert "frames_per_video = 7" in result.stdout


def test_config_file_from_environment_and_from_working_directory(tmp_path: Path) -> None:
    """$FRAMEWATCH_CONFIG is used when -c is absent; ./framewatch.toml when both are."""
    named = tmp_path / "named.toml"
    named.write_text("[extract]\nframes_per_video = 11\n")
    (tmp_path / "framewatch.toml").write_text("[extract]\nframes_per_video = 12\n")
    from_env = framewatch("check-config", cwd=tmp_path, env={"FRAMEWATCH_CONFIG": str(named)})
    assert "frames_per_video = 11" in from_env.stdout, from_env.stderr
    local = framewatch("check-config", cwd=tmp_path)
    assert "frames_per_video = 12" in local.stdout, local.stderr
    explicit = framewatch("check-config", "-c", str(named), cwd=tmp_path)
    assert "frames_per_video = 11" in explicit.stdout, explicit.stderr


@pytest.mark.parametrize(
    "text, env, expected",
    [
        ("[watch]\nsetle_s = 2\n", {}, r"watch\.setle_s: unknown key"),
        ("bogus = 1\n", {}, r"bogus: unknown key"),
        ('[watch]\nmode = "sometimes"\n', {}, r"watch\.mode = 'sometimes'"),
        ("[extract]\nframe_range = [0.8, 0.2]\n", {}, r"extract\.frame_range"),
        ("[extract]\nframes_per_video = 0\n", {}, r"extract\.frames_per_video = 0"),
        ("[watch\n", {}, r"cannot read config file"),
        ("", {"FRAMEWATCH_WATCH__SETTLE_S": "soon"}, r"watch\.settle_s = 'soon'"),
        ("", {"FRAMEWATCH_EXTRACT__BOGUS": "1"}, r"extract\.bogus: unknown key"),
    ],
    ids=[
        "misspelt-key",
        "unknown-top-key",
        "bad-mode",
        "backwards-range",
        "zero-frames",
        "broken-toml",
        "bad-env-value",
        "unknown-env-key",
    ],
)
@pytest.mark.parametrize("command", ["check-config", "run", "once", "status"])
def test_bad_configuration_exits_2_naming_the_key(
    command: str, text: str, env: dict[str, str], expected: str, tmp_path: Path
) -> None:
    """Every command refuses a bad configuration with status 2 and a message naming the key."""
    config = tmp_path / "framewatch.toml"
    config.write_text(text)
    result = framewatch(command, "-c", str(config), cwd=tmp_path, env=env)
    assert 2 == result.returncode, (result.stdout, result.stderr)
    assert re.search(expected, result.stderr), result.stderr
    assert not (tmp_path / "framewatch-data").exists()


def test_named_file_that_does_not_exist_exits_2(tmp_path: Path) -> None:
    """-c or $FRAMEWATCH_CONFIG naming a missing file is an error, not a fall-back to defaults."""
    by_flag = framewatch("run", "-c", str(tmp_path / "nope.toml"), cwd=tmp_path)
    assert 2 == by_flag.returncode
    assert "nope.toml" in by_flag.stderr
    by_env = framewatch("once", cwd=tmp_path, env={"FRAMEWATCH_CONFIG": str(tmp_path / "x.toml")})
    assert 2 == by_env.returncode
    assert "FRAMEWATCH_CONFIG" in by_env.stderr


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    """An unknown command or option is a usage error with status 2."""
    assert 2 == framewatch("frobnicate", cwd=tmp_path).returncode
    assert 2 == framewatch("run", "--fast", cwd=tmp_path).returncode


def test_example_config_is_valid_and_documents_every_key(tmp_path: Path) -> None:
    """config.example.toml loads as it is, and every effective key appears in it."""
    example = REPO / "config.example.toml"
    result = framewatch("check-config", "-c", str(example), cwd=tmp_path)
    assert 0 == result.returncode, result.stderr
    documented = example.read_text()
    keys = [
        line.split("=")[0].strip()
        for line in result.stdout.splitlines()
        if "=" in line and not line.startswith("#")
    ]
    missing = [key for key in keys if f"{key} =" not in documented]
    assert [] == missing
