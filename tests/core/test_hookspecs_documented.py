"""The hookspecs are the contract: each hook is documented in docs/plugins.md and carries a docstring."""

from __future__ import annotations

import inspect

import pytest

from deployc.contract import hookspecs
from tests.conftest import REPO

HOOKS = sorted(name for name, _ in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("deployc_"))


def test_there_are_hooks():
    assert "deployc_emit" in HOOKS and "deployc_backend_info" in HOOKS


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_documented_in_plugins_md(hook: str):
    doc = (REPO / "docs" / "plugins.md").read_text()
    params = list(inspect.signature(getattr(hookspecs, hook)).parameters)
    assert f"### `{hook}(" in doc, f"{hook} has no section in docs/plugins.md"
    section = doc.split(f"### `{hook}(")[1].split("###")[0]
    for param in params:
        assert param in doc.split(f"### `{hook}(")[1].split(")")[0], f"{hook}: parameter {param} undocumented"
    assert len(section.strip()) > 80


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_has_docstring_with_versionadded(hook: str):
    doc = inspect.getdoc(getattr(hookspecs, hook)) or ""
    assert "versionadded" in doc


def test_plugins_md_names_the_contract_version_and_its_changes():
    from deployc.contract import CONTRACT_VERSION

    doc = (REPO / "docs" / "plugins.md").read_text()
    assert f"## The contract (`deployc.contract`, version {CONTRACT_VERSION})" in doc
    assert f'`CONTRACT_VERSION` (now `"{CONTRACT_VERSION}"`)' in doc
    versions = doc.split("### Versions")[1].split("###")[0]
    assert f"\n- {CONTRACT_VERSION}: " in versions, "the current version's changes are not listed under Versions"
