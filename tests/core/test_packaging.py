"""Every Python package of the source tree is in the wheel's package list (pyproject.toml lists them)."""

from __future__ import annotations

import tomllib

from tests.conftest import REPO


def test_every_package_is_listed() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = {"deployc.schemas"}
    for root, prefix in ((REPO / "compiler", ""), (REPO / "plugins", "")):
        for init in root.rglob("__init__.py"):
            if "__pycache__" in init.parts:
                continue
            found.add(prefix + ".".join(init.parent.relative_to(root).parts))
    assert found == listed
