"""Fixtures shared by the tests: a framewatch root with a fast-settling config."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import Framewatch


@pytest.fixture
def fw(tmp_path: Path) -> Iterator[Framewatch]:
    """A daemon root under tmp_path, polling fast, settling in 0.6 s; killed after the test."""
    with Framewatch(tmp_path / "fw") as instance:
        yield instance
