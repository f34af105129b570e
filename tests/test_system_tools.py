"""Tests that need shellcheck or docker-compose skip without them, except where CI requires them."""

from __future__ import annotations

import re

import pytest

from tests.conftest import REPO
from tests.system_tools import REQUIRE_ENV_VARS, tool_or_none, tool_or_skip


@pytest.mark.parametrize("tool", sorted(REQUIRE_ENV_VARS))
def test_a_missing_tool_skips_unless_required(tool: str, monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing installed
    monkeypatch.delenv(REQUIRE_ENV_VARS[tool], raising=False)
    assert tool_or_none(tool) is None
    with pytest.raises(pytest.skip.Exception, match=f"^{tool} not installed "):
        tool_or_skip(tool)
    monkeypatch.setenv(REQUIRE_ENV_VARS[tool], "1")
    message = f"{tool} is required ({REQUIRE_ENV_VARS[tool]}=1) but not installed (apt-get install {tool})"
    for call in (tool_or_none, tool_or_skip):
        with pytest.raises(pytest.fail.Exception) as exc:
            call(tool)
        assert str(exc.value) == message
    monkeypatch.setenv(REQUIRE_ENV_VARS[tool], "0")
    assert tool_or_none(tool) is None


def test_ci_requires_every_tool() -> None:
    ci = (REPO / ".ci" / "run").read_text()
    exported = set(re.findall(r"(DEPLOYC_REQUIRE_[A-Z_]+)=1", ci))
    assert set(REQUIRE_ENV_VARS.values()) <= exported


def test_every_test_finds_these_tools_through_the_helper() -> None:
    """A bare ``shutil.which`` or skipif on a tool would skip in CI even when CI requires the tool."""
    tools = "|".join(re.escape(t) for t in REQUIRE_ENV_VARS)
    bare = re.compile(rf"""which\(["'](?:{tools})["']\)""")
    offenders = [str(p.relative_to(REPO)) for p in sorted((REPO / "tests").rglob("*.py"))
                 if p.name != "system_tools.py" and bare.search(p.read_text())]
    assert offenders == []


def test_readme_says_how_to_include_every_skipped_kind_of_test() -> None:
    from tests.engine_parsers import ENGINE_VERSIONS
    from tests.engine_parsers import REQUIRE_ENV_VAR as ENGINE_PARSERS

    readme = (REPO / "README.md").read_text()
    for engine in ENGINE_VERSIONS:
        assert f"tools/engine_parsers/install.sh {engine}" in readme
    for variable in (ENGINE_PARSERS, *REQUIRE_ENV_VARS.values()):
        assert f"{variable}=1" in readme
    install = next(line for line in readme.splitlines() if "apt-get install" in line)
    assert set(REQUIRE_ENV_VARS) <= set(install.split())
