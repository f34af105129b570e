"""Oversized, over-nested and pathological specs are rejected quickly and cleanly, never crash or hang.

Only behaviour is asserted here; ``bench/fuzz.py --limits`` measures how long each case takes.
"""

from __future__ import annotations

import contextlib
import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deployc.spec.loader import MAX_NESTING_DEPTH, MAX_SPEC_BYTES
from tests.reliability import specgen
from tests.reliability._support import CliRun, run_cli


class Deadline(BaseException):
    """Raised by SIGALRM; a BaseException so the CLI's last-resort handler does not swallow it."""


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Fail (instead of hanging the suite) when the body runs longer than ``seconds``."""
    def on_alarm(signum: int, frame: object) -> None:
        raise Deadline(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _validate(tmp_path: Path, data: str | bytes) -> tuple[CliRun, list[dict[str, Any]]]:
    path = tmp_path / "spec.toml"
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    run = run_cli(["validate", "--format", "json", str(path)])
    assert specgen.validate_problems(run) == [], (run.code, run.out[:2000], run.err[:2000])
    return run, json.loads(run.out)


def _rules(records: list[dict[str, Any]]) -> list[str]:
    return [r["rule"] for r in records]


def test_spec_over_the_size_limit_is_rejected_before_parsing(tmp_path: Path) -> None:
    text = specgen.MINIMAL_SPEC + "# " + "x" * (2 * MAX_SPEC_BYTES - len(specgen.MINIMAL_SPEC) - 3) + "\n"
    assert len(text.encode()) == 2 * MAX_SPEC_BYTES
    run, records = _validate(tmp_path, text)
    assert run.code == 1
    assert [(r["rule"], r["message"], r["hint"]) for r in records] == [
        ("DPC003", "spec is 2,097,152 bytes; the limit is 1,048,576", "a spec is a few KiB; split generated data out "
                                                                     "of it")]


def test_spec_exactly_at_the_size_limit_is_read(tmp_path: Path) -> None:
    text = specgen.MINIMAL_SPEC + "# " + "x" * (MAX_SPEC_BYTES - len(specgen.MINIMAL_SPEC) - 3) + "\n"
    assert len(text.encode()) == MAX_SPEC_BYTES
    _, records = _validate(tmp_path, text)
    assert "DPC003" not in _rules(records)
    _, records = _validate(tmp_path, text + " ")
    assert _rules(records) == ["DPC003"]


DEEP = 10_000


@pytest.mark.parametrize("text", [
    "a = " + "[" * DEEP + "]" * DEEP + "\n",
    "a = " + "{ b = " * DEEP + "1" + " }" * DEEP + "\n",
    "[model]\nid = " + "[" * DEEP + "]" * DEEP + "\n",
    "a." * DEEP + "a = 1\n",
    "[" + "a." * DEEP + "a]\n",
    "[[" + "a." * DEEP + "a]]\n",
    ("[model]\n" + "[" * DEEP + "\n"),  # unterminated, so a syntax error too
], ids=["arrays", "inline-tables", "arrays-in-a-field", "dotted-key", "table-header", "array-of-tables", "unclosed"])
def test_ten_thousand_levels_of_nesting_are_rejected(tmp_path: Path, text: str) -> None:
    run, records = _validate(tmp_path, text)
    assert run.code == 1
    assert set(_rules(records)) <= {"DPC002", "DPC003"}
    assert _rules(records)


def test_nesting_depth_boundary(tmp_path: Path) -> None:
    _, records = _validate(tmp_path, "a." * (MAX_NESTING_DEPTH - 1) + "a = 1\n")
    assert "DPC003" not in _rules(records)
    _, records = _validate(tmp_path, "a." * MAX_NESTING_DEPTH + "a = 1\n")
    assert _rules(records) == ["DPC003"]
    assert records[0]["message"] == f"nested deeper than {MAX_NESTING_DEPTH} levels"


@pytest.mark.parametrize("text", ["a." * 100_000 + "a = 1\n", "[" + "a." * 100_000 + "a]\n"],
                         ids=["dotted-key", "table-header"])
def test_long_dotted_keys_are_rejected_quickly(tmp_path: Path, text: str) -> None:
    with deadline(1.0):
        _, records = _validate(tmp_path, text)
    assert _rules(records) == ["DPC003"]


@pytest.mark.parametrize("literal", ["9" * 4301, "-" + "1" * 5000], ids=["4301-digits", "5000-digits"])
def test_integer_literal_too_long_for_python_is_a_diagnostic(tmp_path: Path, literal: str) -> None:
    text = specgen.MINIMAL_SPEC.replace("concurrency = 16", f"concurrency = {literal}")
    run = run_cli(["validate", "--format", "json", str(_write(tmp_path, text))])
    assert specgen.validate_problems(run) == []
    assert run.code == 1


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.toml"
    path.write_text(text)
    return path


PATHOLOGICAL = {
    "20k-chars": "a" * 20_000,
    "dotted-words": "a." * 10_000,
    "quotes-and-backslashes": "'\"\\" * 5_000,
    "combining": "e" + "\u0301" * 10_000,
    "emoji-rtl-zero-width": "🦙\u202e\u200b" * 3_000,
    "regex-bait": "a-" * 10_000 + "!",
    "token-bait": "sk-" * 5_000,
}


@pytest.mark.parametrize("field", specgen.STRING_FIELDS, ids=lambda p: ".".join(map(str, p)))
def test_pathological_strings_in_every_field_are_handled(tmp_path: Path, field: tuple[Any, ...]) -> None:
    for value in PATHOLOGICAL.values():
        run, records = _validate(tmp_path, specgen.spec_text(specgen.with_value(specgen.FULL_SPEC, field, value)))
        assert all(len(r["message"]) < 2000 for r in records)  # messages quote values shortened
        if run.code == 0:
            assert records == [] or all(r["severity"] != "error" for r in records)


def test_many_unknown_keys_are_reported_twenty_and_a_count(tmp_path: Path) -> None:
    text = specgen.MINIMAL_SPEC + "".join(f"k{i} = 1\n" for i in range(5000))
    run, records = _validate(tmp_path, text)
    assert run.code == 1
    assert _rules(records) == ["DPC010"] * 21  # capped per rule (issue 15): the 21st counts the rest
    assert records[-1]["message"] == "and 4,980 more DPC010 problems like the ones above"


def test_many_request_classes_are_rejected(tmp_path: Path) -> None:
    text = specgen.MINIMAL_SPEC + '[[workload.classes]]\nname = "a"\n' * 2000
    run, records = _validate(tmp_path, text)
    assert run.code == 1
    assert "workload.classes" in {r["key_path"] for r in records}
