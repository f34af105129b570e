"""Fuzzing ``deployc validate``: whatever the spec, exit 0, or exit 1 with located, rule-tagged diagnostics.

Runs a bounded, derandomised number of examples so CI is fast and repeatable; ``bench/fuzz.py``
runs the same generators and oracle for a longer campaign.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.reliability import specgen
from tests.reliability._support import CliRun, run_cli

FUZZ = settings(
    max_examples=60, derandomize=True, deadline=None, database=None, print_blob=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One directory for every example's spec file; crash reports (there must be none) go beside it."""
    root = tmp_path_factory.mktemp("fuzz")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(root / "cache"))
        yield root


def _validate(workdir: Path, data: bytes) -> CliRun:
    path = workdir / "spec.toml"
    path.write_bytes(data)
    return run_cli(["validate", "--format", "json", str(path)])


def _show(data: bytes, run: CliRun) -> str:
    return f"spec:\n{data[:1500]!r}\nexit {run.code}\nstdout: {run.out[:1500]}\nstderr: {run.err[:1500]}"


@FUZZ
@given(doc=specgen.mutated_tables())
def test_mutated_samples_validate_cleanly(workdir: Path, doc: dict[str, Any]) -> None:
    data = specgen.spec_text(doc).encode()
    run = _validate(workdir, data)
    assert specgen.validate_problems(run) == [], _show(data, run)


@FUZZ
@given(data=specgen.mutated_bytes())
def test_raw_text_mutations_validate_cleanly(workdir: Path, data: bytes) -> None:
    run = _validate(workdir, data)
    assert specgen.validate_problems(run) == [], _show(data, run)


@settings(FUZZ, max_examples=40)
@given(doc=st.dictionaries(specgen.keys, specgen.values, max_size=6))
def test_arbitrary_tables_validate_cleanly(workdir: Path, doc: dict[str, Any]) -> None:
    data = specgen.spec_text(doc).encode()
    run = _validate(workdir, data)
    assert specgen.validate_problems(run) == [], _show(data, run)
    assert run.code == 1  # no random table is a complete spec


def _wrong_type(value: object) -> object:
    """A value of another TOML type than ``value`` (no spec field accepts two of these)."""
    if isinstance(value, bool):
        return "yes"
    if isinstance(value, int | float):
        return str(value)
    return 42


def _corruptions(value: object) -> list[tuple[str, object]]:
    out = [("wrong type", _wrong_type(value))]
    if isinstance(value, int | float) and not isinstance(value, bool):
        out += [("NaN", math.nan), ("-inf", -math.inf), ("negative", -(10**30)), ("huge", 10**30)]
    if isinstance(value, str):
        out += [("empty", ""), ("newline", value + "\n--trust-remote-code"), ("escape", "\x1b[2J" + value),
                ("very long", value * 2000)]
    return out


def _corrupted_fields() -> list[Any]:
    """Each leaf of each sample, twice: a value of the wrong type, and one more corruption taken in turn."""
    params = []
    turn = 0
    for name, _, base in specgen.BASES:
        for path in specgen.leaf_paths(base):
            if any(isinstance(part, int) and part > 0 for part in path):
                continue  # one item of each array is enough
            wrong_type, *others = _corruptions(specgen.get(base, path))
            turn += 1
            for label, bad in [wrong_type, *([others[turn % len(others)]] if others else [])]:
                params.append(pytest.param(name, path, bad, id=f"{name}:{'.'.join(map(str, path))}:{label}"))
    return params


@pytest.mark.parametrize(("base", "path", "bad"), _corrupted_fields())
def test_every_sample_with_one_field_corrupted(workdir: Path, base: str, path: tuple[Any, ...], bad: object) -> None:
    """Each field of each sample, replaced by a value no field accepts, is reported at that field."""
    from deployc.spec.locate import format_path

    doc = json.loads(json.dumps(next(raw for n, _, raw in specgen.BASES if n == base)))
    specgen.put(doc, path, bad)
    data = specgen.spec_text(doc).encode()
    run = _validate(workdir, data)
    assert specgen.validate_problems(run) == [], _show(data, run)
    assert run.code == 1, _show(data, run)
    located = {r["key_path"] for r in json.loads(run.out)}
    wanted = format_path(path)
    # Reported at the field itself, or at the table that holds it (a table-level rule such as DPC204).
    assert any(wanted == k or wanted.startswith((f"{k}.", f"{k}[")) for k in located if k), \
        _show(data, run)
