"""Hostile specs get short answers: diagnostics capped per rule and per value length; encodings named."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from deployc.diagnostics import MAX_KEY_PATH_CHARS, MAX_MESSAGE_CHARS, Diagnostic, cap_per_rule
from tests.reliability import specgen
from tests.reliability._support import run_cli


def _validate(tmp_path: Path, data: bytes, *args: str) -> tuple[int, str]:
    spec = tmp_path / "spec.toml"
    spec.write_bytes(data)
    run = run_cli(["validate", *args, str(spec)])
    return run.code, run.out + run.err


def test_fifty_thousand_unknown_keys_give_twenty_and_a_count(tmp_path: Path) -> None:
    """50k unknown keys printed 10 MB of text (17 MB of JSON) and took 12 s."""
    text = specgen.MINIMAL_SPEC + "".join(f"k{i} = 1\n" for i in range(50_000))
    start = time.perf_counter()
    code, out = _validate(tmp_path, text.encode(), "--format", "json")
    seconds = time.perf_counter() - start
    records = json.loads(out)
    assert code == 1
    assert len(records) == 21
    assert records[-1]["message"] == "and 49,980 more DPC010 problems like the ones above"
    assert records[-1]["hint"] == "only the first 20 of each kind are listed; fix those and validate again"
    assert len(out) < 20_000
    assert seconds < 30  # was 12 s on a quiet machine; this one is shared, so only a gross regression fails


def test_a_megabyte_key_gives_a_short_diagnostic(tmp_path: Path) -> None:
    """A 1 MB key gave a 2 MB diagnostic (the key in the message and again in the key path)."""
    text = specgen.MINIMAL_SPEC.replace("[model]\n", "[model]\n" + "f" * 900_000 + " = 1\n")
    code, out = _validate(tmp_path, text.encode(), "--format", "json")
    (record,) = json.loads(out)
    assert code == 1
    assert record["message"] == "unknown key '" + "f" * 78 + "…"
    assert len(record["key_path"]) == MAX_KEY_PATH_CHARS and record["key_path"].endswith("…")
    assert len(out) < 2_000


def test_twenty_thousand_broken_tables_are_cut_short(tmp_path: Path) -> None:
    text = specgen.MINIMAL_SPEC + '[[workload.classes]]\nname = "a"\n' * 20_000
    code, out = _validate(tmp_path, text.encode(), "--format", "json")
    records = json.loads(out)
    assert code == 1
    assert len(out) < 50_000
    assert [r["rule"] for r in records].count("DPC014") <= 21


def test_long_texts_are_cut_whatever_builds_the_diagnostic() -> None:
    d = Diagnostic(rule="DPC015", message="x" * 10_000, key_path="a." * 1000, value="v" * 1000, hint="h" * 5000)
    assert (len(d.message), len(d.key_path or ""), len(d.value or ""), len(d.hint or "")) == (
        MAX_MESSAGE_CHARS, MAX_KEY_PATH_CHARS, 200, MAX_MESSAGE_CHARS)


def test_cap_per_rule_keeps_order_and_counts_each_rule() -> None:
    many = [Diagnostic(rule="DPC010", message=f"k{i}", key_path=f"k{i}") for i in range(25)]
    few = [Diagnostic(rule="DPC013", message="n", key_path="n")]
    capped = cap_per_rule([*many[:10], *few, *many[10:]], limit=20)
    assert [d.message for d in capped] == [*(f"k{i}" for i in range(10)), "n", *(f"k{i}" for i in range(10, 20)),
                                           "and 5 more DPC010 problems like the ones above"]
    assert capped[-1].key_path == "k20"


@pytest.mark.parametrize(("prefix", "expected"), [
    (b"\xef\xbb\xbf", "error: the file starts with a UTF-8 byte-order mark (EF BB BF), which TOML does not allow "
                      "[DPC002]\n  hint: save it as UTF-8 without a BOM"),
    (b"\xff\xfe", "error: the file is UTF-16 (it starts with the byte-order mark FF FE) [DPC001]\n  hint: TOML "
                  "files must be UTF-8: save it as UTF-8 without a BOM"),
])
def test_a_byte_order_mark_is_named(tmp_path: Path, prefix: bytes, expected: str) -> None:
    body = specgen.MINIMAL_SPEC.encode("utf-16-le") if prefix == b"\xff\xfe" else specgen.MINIMAL_SPEC.encode()
    code, out = _validate(tmp_path, prefix + body)
    assert code == 1
    assert out == f"{tmp_path / 'spec.toml'}: {expected}\n"
