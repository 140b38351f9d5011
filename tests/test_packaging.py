"""What `pip install .` puts in site-packages: every package of the source tree.

An editable install (what CI and development use) imports from the checkout and hides a
package that the non-editable install of the README's quick start would leave out; a daemon
installed that way dies on its first import.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from setuptools import find_packages

ROOT = Path(__file__).resolve().parent.parent


def test_the_install_takes_every_package_of_daemon_and_handlers() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    find = config["tool"]["setuptools"]["packages"]["find"]
    installed = set(find_packages(str(ROOT), include=find["include"]))
    in_tree = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in ("daemon", "handlers")
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert in_tree, "no packages found under daemon/ and handlers/"
    assert in_tree <= installed, f"left out of `pip install .`: {sorted(in_tree - installed)}"
