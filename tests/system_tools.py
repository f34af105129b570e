"""System tools some tests run (shellcheck, docker-compose): skipped when absent, required where CI says so.

``.ci/run`` installs the tools and sets ``DEPLOYC_REQUIRE_SHELLCHECK=1`` and
``DEPLOYC_REQUIRE_DOCKER_COMPOSE=1``: there a missing tool fails the test instead of skipping it,
so a CI machine without them cannot pass by skipping.
"""

from __future__ import annotations

import os
import shutil
from typing import Final

import pytest

REQUIRE_ENV_VARS: Final = {
    "shellcheck": "DEPLOYC_REQUIRE_SHELLCHECK",
    "docker-compose": "DEPLOYC_REQUIRE_DOCKER_COMPOSE",
}
INSTALL: Final = {"shellcheck": "apt-get install shellcheck", "docker-compose": "apt-get install docker-compose"}


def required(tool: str) -> bool:
    """Whether the environment requires ``tool`` (its variable set to anything but empty or 0)."""
    return os.environ.get(REQUIRE_ENV_VARS[tool], "") not in ("", "0")


def tool_or_none(tool: str) -> str | None:
    """The tool's path; None when it is not installed and not required; a test failure when it is required."""
    path = shutil.which(tool)
    if path is None and required(tool):
        pytest.fail(f"{tool} is required ({REQUIRE_ENV_VARS[tool]}={os.environ[REQUIRE_ENV_VARS[tool]]}) "
                    f"but not installed ({INSTALL[tool]})", pytrace=False)
    return path


def tool_or_skip(tool: str) -> str:
    """The tool's path; skips the test when it is not installed and not required, fails it when required."""
    path = tool_or_none(tool)
    if path is None:
        pytest.skip(f"{tool} not installed ({INSTALL[tool]}; {REQUIRE_ENV_VARS[tool]}=1 makes this a failure)")
    return path
