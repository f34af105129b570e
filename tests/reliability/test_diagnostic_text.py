"""Diagnostics are safe to print in a terminal or a CI log, whatever the spec holds.

A spec from an untrusted pull request is validated in CI: its keys and values must not be able
to forge log lines (newlines), drive the terminal (escape sequences) or lose their location.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.reliability import specgen
from tests.reliability._support import CliRun, run_cli


def _validate(tmp_path: Path, text: str) -> tuple[CliRun, list[dict[str, Any]]]:
    path = tmp_path / "spec.toml"
    path.write_text(text)
    records = json.loads(run_cli(["validate", "--format", "json", str(path)]).out)
    return run_cli(["validate", str(path)]), records


def test_empty_key_has_a_key_path(tmp_path: Path) -> None:
    run, records = _validate(tmp_path, specgen.MINIMAL_SPEC.replace('name = "tiny"', 'name = "tiny"\n"" = 1'))
    assert run.code == 1
    assert [(r["rule"], bool(r["key_path"])) for r in records] == [("DPC010", True)]


def test_quoted_key_with_a_dot_is_not_reported_as_the_field_it_spells(tmp_path: Path) -> None:
    _, records = _validate(tmp_path, specgen.MINIMAL_SPEC.replace('name = "tiny"', 'name = "tiny"\n"model.id" = 1'))
    assert [r["rule"] for r in records] == ["DPC010"]
    assert records[0]["key_path"] != "model.id"  # the unknown top-level key, not the model's id


@pytest.mark.parametrize("key", ["x\n::error file=spec.toml::forged CI annotation", "\x1b]0;owned\x07\x1b[2J",
                                 "a\rb", "\x85next"], ids=["newline", "escape", "carriage-return", "next-line"])
def test_control_characters_in_keys_cannot_forge_output(tmp_path: Path, key: str) -> None:
    escaped = json.dumps(key)
    run, records = _validate(tmp_path, specgen.MINIMAL_SPEC.replace("[model]\n", f"[model]\n{escaped} = 1\n"))
    assert run.code == 1
    assert specgen.terminal_problems(run.err, len(records)) == []


def test_control_characters_in_values_are_escaped(tmp_path: Path) -> None:
    run, records = _validate(tmp_path, specgen.MINIMAL_SPEC.replace('gpu = "H100 SXM"',
                                                                    'gpu = ["\\u009b2J", "\\u007f"]'))
    assert run.code == 1
    assert specgen.terminal_problems(run.err, len(records)) == []


@pytest.mark.parametrize("value", ["a\nb", "\x1b[2J", "\x00", "x\r\n::error::forged"])
def test_control_characters_in_string_values_are_escaped(tmp_path: Path, value: str) -> None:
    doc = specgen.with_value(specgen.FULL_SPEC, ("model", "served_name"), value)
    run, records = _validate(tmp_path, specgen.spec_text(doc))
    assert run.code == 1
    assert specgen.terminal_problems(run.err, len(records)) == []


def test_long_values_are_shortened_in_messages(tmp_path: Path) -> None:
    doc = specgen.with_value(specgen.FULL_SPEC, ("model", "dtype"), "x" * 100_000)
    run, records = _validate(tmp_path, specgen.spec_text(doc))
    assert run.code == 1
    assert len(run.err) < 2_000
    assert all(len(r["message"]) < 500 for r in records)


def test_unknown_table_from_a_dotted_header_has_a_line(tmp_path: Path) -> None:
    _, records = _validate(tmp_path, specgen.MINIMAL_SPEC + "\n[foo.bar]\nx = 1\n")
    assert [(r["rule"], r["key_path"], r["line"]) for r in records] == [("DPC010", "foo", 15)]
