"""What a build does not use is not imported by it, and still loads where it is used."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import REPO


def _fresh(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=REPO)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_build_imports_neither_engine_logs_nor_the_sizing_search() -> None:
    out = _fresh("import sys\n"
                 "import deployc.api, deployc.cli, deployc.render.plan_json, deployc.render.explain\n"
                 "print(sorted(m for m in ('deployc.contract.enginelog', 'deployc.sizing.deployment',\n"
                 "                         'deployc.sizing.space') if m in sys.modules))\n")
    assert out == "[]\n"


def test_engine_log_still_comes_from_the_contract() -> None:
    out = _fresh("import deployc.contract as contract\n"
                 "from deployc.contract import EngineLog\n"
                 "from deployc.contract.enginelog import EngineLog as Defined\n"
                 "print(EngineLog is Defined, contract.EngineLog is Defined, 'EngineLog' in contract.__all__)\n")
    assert out == "True True True\n"


def test_an_unknown_contract_name_is_still_an_attribute_error() -> None:
    import deployc.contract

    with pytest.raises(AttributeError, match=re.escape("module 'deployc.contract' has no attribute 'EngineLogs'")):
        deployc.contract.EngineLogs  # noqa: B018
