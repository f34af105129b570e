from __future__ import annotations

from pathlib import Path

import pytest

from deployc.diagnostics import SpecError
from deployc.spec.loader import MAX_NESTING_DEPTH, MAX_SPEC_BYTES, read_document


def _messages(exc: pytest.ExceptionInfo[SpecError]) -> list[str]:
    return [d.format_text() for d in exc.value.diagnostics]


def test_toml_syntax_error_has_line_and_column(write_spec):  # type: ignore[no-untyped-def]
    path = write_spec('version = 1\nname = "x\n')
    with pytest.raises(SpecError) as exc:
        read_document(path, "spec.toml")
    assert _messages(exc) == [
        "spec.toml:2:10: error: TOML syntax error: Illegal character '\\n' [DPC002]",
    ]


def test_missing_file(tmp_path: Path):
    with pytest.raises(SpecError) as exc:
        read_document(tmp_path / "nope.toml", "nope.toml")
    assert _messages(exc) == ["nope.toml: error: no such file [DPC001]\n  hint: check the path"]


def test_oversized_spec_is_rejected_before_parsing(write_spec):  # type: ignore[no-untyped-def]
    path = write_spec("a = 1\n" * (MAX_SPEC_BYTES // 6 + 1))
    with pytest.raises(SpecError) as exc:
        read_document(path, "big.toml")
    assert exc.value.diagnostics[0].rule == "DPC003"
    assert "the limit is 1,048,576" in exc.value.diagnostics[0].message


def test_deep_nesting_is_rejected(write_spec):  # type: ignore[no-untyped-def]
    depth = MAX_NESTING_DEPTH + 5
    path = write_spec("a = " + "[" * depth + "]" * depth + "\n")
    with pytest.raises(SpecError) as exc:
        read_document(path, "deep.toml")
    assert exc.value.diagnostics[0].rule == "DPC003"


def test_non_finite_numbers_are_rejected_with_their_key(write_spec):  # type: ignore[no-untyped-def]
    path = write_spec("[environment]\nambient_c = nan\n[hardware]\nreserved_memory_gib = inf\n")
    with pytest.raises(SpecError) as exc:
        read_document(path, "s.toml")
    assert _messages(exc) == [
        "s.toml:2: error: environment.ambient_c: not a finite number [DPC013]\n  hint: use a finite number",
        "s.toml:4: error: hardware.reserved_memory_gib: not a finite number [DPC013]\n  hint: use a finite number",
    ]


def test_not_utf8(tmp_path: Path):
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'name = "caf\xe9"\n')
    with pytest.raises(SpecError) as exc:
        read_document(path, "latin1.toml")
    assert _messages(exc) == ["latin1.toml: error: not UTF-8 (byte 11) [DPC001]\n  hint: TOML files must be UTF-8"]
