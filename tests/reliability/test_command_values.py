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
           "vertical-tab": "\x0b", "nel": "\x85", "c1-csi": "\x9b", "bidi-override": "\u202e",
           "bidi-isolate": "\u2066", "line-separator": "\u2028", "byte-order-mark": "\ufeff"}


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


def _valid_value(path: tuple[Any, ...]) -> str:
    """A value the field accepts: the full spec's, else one that passes every pattern of the spec."""
    try:
        value = specgen.get(specgen.FULL_SPEC, path)
    except (KeyError, IndexError):
        return "mlx5_0" if path[:2] == ("hardware", "ib_hcas") else "abc"
    assert isinstance(value, str)
    return value


@pytest.mark.parametrize("path", specgen.STRING_FIELDS, ids=lambda p: ".".join(map(str, p)))
def test_trailing_newline_in_any_string_field_is_rejected(tmp_path: Path, path: tuple[Any, ...]) -> None:
    """Python's ``$`` matches before a final newline: ``name = "abc\\n"`` passed every pattern."""
    spec = tmp_path / "spec.toml"
    value = _valid_value(path) + "\n"
    spec.write_text(specgen.spec_text(specgen.with_value(specgen.FULL_SPEC, path, value)))
    run = run_cli(["validate", "--format", "json", str(spec)])
    assert specgen.validate_problems(run) == []
    assert run.code == 1
    found = {(r["key_path"], r["rule"]) for r in json.loads(run.out)}
    assert (format_path(path), "DPC020") in found


def test_trailing_newline_in_the_name_is_reported_in_words(tmp_path: Path) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text(specgen.spec_text(specgen.with_value(specgen.FULL_SPEC, ("name",), "abc\n")))
    run = run_cli(["validate", str(spec)])
    assert run.code == 1
    assert run.err == (f"{spec}:2: error: name: value 'abc\\n' contains a newline (U+000A) [DPC020]\n"
                       "  hint: spec text must be printable on one line: remove the character (it could end a shell "
                       "command, break a YAML manifest or disguise what a script shows)\n")


@pytest.mark.parametrize(("char", "words"), [("\x85", "NEL, a C1 line break (U+0085)"),
                                             ("\u202e", "a bidirectional-text control (U+202E)"),
                                             ("\x9b", "a C1 control character (U+009B)")])
def test_unicode_controls_are_named(tmp_path: Path, char: str, words: str) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text(specgen.spec_text(specgen.with_value(specgen.FULL_SPEC, ("model", "served_name"), f"a{char}b")))
    (record,) = json.loads(run_cli(["validate", "--format", "json", str(spec)]).out)
    assert record["message"] == f"value {'a' + char + 'b'!a} contains {words}"
    assert (record["rule"], record["key_path"]) == ("DPC020", "model.served_name")


def test_control_characters_in_a_key_are_rejected(tmp_path: Path) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text(specgen.spec_text({**specgen.FULL_SPEC, "backends": {"vllm": {"x\u202e": 1}}}))
    records = json.loads(run_cli(["validate", "--format", "json", str(spec)]).out)
    assert [(r["rule"], r["key_path"]) for r in records] == [("DPC020", 'backends.vllm."x\\u202e"')]
