"""Values that no backend could put on a command line (control characters) are rejected at validation.

The shell emitter quotes every word, but a newline or an escape in a model id is not a value any
engine accepts, and in comments, logs and YAML it is a hazard: the schema refuses it, in every
string field of the spec and of the installed backends' options.  What the quoting does with
everything else is tested on real builds in test_build_injection.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from deployc.spec.locate import format_path
from tests.reliability import specgen
from tests.reliability._support import run_cli

CONTROL = {"newline": "\n", "carriage-return": "\r", "tab": "\t", "escape": "\x1b", "nul": "\x00", "delete": "\x7f",
           "vertical-tab": "\x0b"}
def _params() -> list[Any]:
    out = []
    for path in specgen.STRING_FIELDS:
        for name, char in CONTROL.items():
            out.append(pytest.param(path, char, id=f"{'.'.join(map(str, path))}:{name}"))
    return out


@pytest.mark.parametrize(("path", "char"), _params())
def test_control_character_in_any_string_field_is_rejected(tmp_path: Path, path: tuple[Any, ...], char: str) -> None:
    spec = tmp_path / "spec.toml"
    value = f"mlx5{char}--trust-remote-code" if path[:2] == ("hardware", "ib_hcas") else f"a{char}b"
    spec.write_text(specgen.spec_text(specgen.with_value(specgen.FULL_SPEC, path, value)))
    run = run_cli(["validate", "--format", "json", str(spec)])
    assert specgen.validate_problems(run) == []
    assert run.code == 1
    assert format_path(path) in {r["key_path"] for r in json.loads(run.out)}
