"""A token pasted into a spec is a diagnostic, in every field, and deployc never repeats it.

Specs are committed to git and validated in CI logs: a token in one must be reported (DPC021) and
must not be echoed in any message, hint or JSON record.  Artifacts are covered by
test_build_secrets.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from deployc.spec.locate import format_path
from tests.reliability import specgen
from tests.reliability._support import run_cli

TOKENS = {
    "huggingface": "hf_" + "kQ3vZ8pL2mX7nR4tY9wB1cD6fG0hJ5sAeU",
    "github": "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8",
    "openai": "sk-proj-" + "Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0FeDcBa",
    "aws": "AKIA" + "Q2W3E4R5T6Y7U8I9",
    "slack": "xoxb-" + "123456789012-abcdefABCDEF",
}
HF = TOKENS["huggingface"]


def _both_formats(tmp_path: Path, doc: dict[str, Any]) -> tuple[int, str, list[dict[str, Any]]]:
    path = tmp_path / "spec.toml"
    path.write_text(specgen.spec_text(doc))
    text = run_cli(["validate", str(path)])
    records = run_cli(["validate", "--format", "json", str(path)])
    assert text.code == records.code
    return text.code, text.out + text.err + records.out + records.err, json.loads(records.out)


def test_the_base_spec_is_valid(tmp_path: Path) -> None:
    code, output, _ = _both_formats(tmp_path, specgen.FULL_SPEC)
    assert (code, output) == (0, "[]\n")


def _field_params() -> list[Any]:
    params = []
    for path in specgen.STRING_FIELDS:
        params.append(pytest.param(path, id=".".join(map(str, path))))
    return params


@pytest.mark.parametrize("path", _field_params())
def test_token_in_any_field_is_reported_and_never_repeated(tmp_path: Path, path: tuple[Any, ...]) -> None:
    code, output, records = _both_formats(tmp_path, specgen.with_value(specgen.FULL_SPEC, path, HF))
    assert code == 1
    assert HF not in output
    assert HF[:12] not in output  # not even cut short
    assert ("DPC021", format_path(path)) in {(r["rule"], r["key_path"]) for r in records}


@pytest.mark.parametrize("kind", sorted(TOKENS))
def test_every_token_format_is_recognised(tmp_path: Path, kind: str) -> None:
    code, output, records = _both_formats(tmp_path, specgen.with_value(specgen.FULL_SPEC, ("model", "served_name"),
                                                                          TOKENS[kind]))
    assert code == 1
    assert TOKENS[kind] not in output
    assert [(r["rule"], r["key_path"], r["value"]) for r in records] == [
        ("DPC021", "model.served_name", "<redacted>")]


def test_token_inside_a_longer_value_is_found(tmp_path: Path) -> None:
    doc = specgen.with_value(specgen.FULL_SPEC, ("operations", "model_cache"), f"/data/{HF}/cache")
    code, output, records = _both_formats(tmp_path, doc)
    assert code == 1
    assert HF not in output
    assert "DPC021" in {r["rule"] for r in records}


def test_token_as_a_key_is_reported_and_never_repeated(tmp_path: Path) -> None:
    doc = specgen.with_value(specgen.FULL_SPEC, ("model", HF), "x")
    code, output, records = _both_formats(tmp_path, doc)
    assert code == 1
    assert HF not in output
    assert "DPC021" in {r["rule"] for r in records}


def test_token_next_to_a_schema_error_is_still_reported(tmp_path: Path) -> None:
    doc = specgen.with_value(specgen.FULL_SPEC, ("model", "served_name"), HF)
    doc["hardware"]["nodes"] = 0
    code, output, records = _both_formats(tmp_path, doc)
    assert code == 1
    assert HF not in output
    assert {"DPC013", "DPC021"} <= {r["rule"] for r in records}


def test_token_in_the_environment_is_never_printed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", HF)
    monkeypatch.setenv("MY_TOKEN", HF)
    doc = specgen.with_value(specgen.FULL_SPEC, ("operations", "hf_token_env"), "MY_TOKEN")
    code, output, _ = _both_formats(tmp_path, doc)
    assert code == 0
    assert HF not in output


@pytest.mark.parametrize("name", ["risk-assessment-llama-70b-chat", "desk-assistant-qwen-32b-prod",
                                  "mask-rcnn-detector-finetuned"])
def test_ordinary_names_are_not_taken_for_tokens(tmp_path: Path, name: str) -> None:
    code, _, records = _both_formats(tmp_path, specgen.with_value(specgen.FULL_SPEC, ("name",), name))
    assert "DPC021" not in {r["rule"] for r in records}
    assert code == 0
