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
    "aws-temporary": "ASIA" + "Z7X6C5V4B3N2M1L0",
    "aws-secret": "wJalrXUtnFEMI/K7MDENG/bPxRfiCY" + "9Qx2Lk8Zt3",
    "slack": "xoxb-" + "123456789012-abcdefABCDEF",
    "huggingface-glued": "x" + "hf_" + "kQ3vZ8pL2mX7nR4tY9wB1cD6fG0hJ5sAeU",
    "github-glued": "token" + "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8",
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


@pytest.mark.parametrize("value", ["/data/Models/Llama3/Checkpoints/Final/V2",
                                   "ModelsLlama3CheckpointsFinalVersion2abcd",
                                   "0123456789abcdef0123456789abcdef01234567"])
def test_forty_character_paths_and_commits_are_not_taken_for_aws_secrets(tmp_path: Path, value: str) -> None:
    field = ("model", "revision") if value[0] == "0" else ("operations", "model_cache") if value[0] == "/" else (
        ("model", "served_name"))
    code, _, records = _both_formats(tmp_path, specgen.with_value(specgen.FULL_SPEC, field, value))
    assert "DPC021" not in {r["rule"] for r in records}
    assert code == 0


CREDENTIAL_FLAGS = {"--api-key": "give the server its key through its environment where it runs (vLLM reads "
                                 "VLLM_API_KEY), not on its command line",
                    "--hf-token": "deployc passes the Hugging Face token from the environment variable named by "
                                  "operations.hf_token_env (default HF_TOKEN)",
                    "--admin-api-key": "give the server its admin key through its environment where it runs, not "
                                       "on its command line",
                    "--ssl-keyfile-password": "use an unencrypted key file readable only by the server, or decrypt "
                                              "it where the server runs"}


@pytest.mark.parametrize("form", ["two items", "one item"])
@pytest.mark.parametrize("flag", sorted(CREDENTIAL_FLAGS))
def test_credential_flags_in_extra_args_are_refused(tmp_path: Path, flag: str, form: str) -> None:
    secret = "plain-looking-secret-123"  # noqa: S105  (a test value)
    args = [flag, secret] if form == "two items" else [f"{flag}={secret}"]
    doc = specgen.with_value(specgen.FULL_SPEC, ("backends", "vllm", "extra_args"), args)
    code, output, records = _both_formats(tmp_path, doc)
    assert code == 1
    assert secret not in output
    assert [(r["rule"], r["key_path"], r["message"], r["hint"]) for r in records] == [(
        "DPC021", "backends.vllm.extra_args[0]", f"extra_args passes a credential on the command line ({flag}): it "
        "would be written into the scripts and shown by ps", CREDENTIAL_FLAGS[flag])]


RISKY = {
    "middleware": (["--middleware", "evil.module.Middleware"], "--middleware",
                   "imports a Python object into the server"),
    "tool-parser-plugin": (["--tool-parser-plugin=/tmp/parser.py"], "--tool-parser-plugin",
                           "loads a Python file into the server"),
    "any-origin": (["--allowed-origins", '["*"]'], "--allowed-origins",
                   """with '["*"]' lets any web page call the server from a browser"""),
    "template-file": (["--chat-template", "/etc/templates/x.jinja"], "--chat-template",
                      "reads a template from a file deployc does not ship with the model (the model's own template "
                      "is used without it)"),
    "local-media": (["--allowed-local-media-path", "/"], "--allowed-local-media-path",
                    "lets requests read files of the server's file system"),
}


@pytest.mark.parametrize("case", sorted(RISKY))
def test_code_loading_or_exposing_flags_need_an_explicit_key(tmp_path: Path, case: str) -> None:
    args, flag, what = RISKY[case]
    doc = specgen.with_value(specgen.FULL_SPEC, ("backends", "vllm", "extra_args"), args)
    code, _, records = _both_formats(tmp_path, doc)
    assert code == 1
    assert [(r["rule"], r["key_path"], r["message"], r["hint"]) for r in records] == [(
        "DPC022", "backends.vllm.extra_args[0]", f"extra_args flag {flag} {what}",
        f'if that is intended, say so: operations.trusted_extra_args = ["{flag}"]')]
    allowed = specgen.with_value(doc, ("operations", "trusted_extra_args"), [flag])
    code, _, records = _both_formats(tmp_path, allowed)
    assert "DPC022" not in {r["rule"] for r in records}


@pytest.mark.parametrize("args", [["--allowed-origins", '["https://app.example.com"]'],
                                  ["--chat-template", "{% for m in messages %}{{ m.content }}{% endfor %}"],
                                  ["--max-logprobs", "5"]], ids=["one-origin", "inline-template", "ordinary"])
def test_ordinary_extra_args_are_not_refused(tmp_path: Path, args: list[str]) -> None:
    doc = specgen.with_value(specgen.FULL_SPEC, ("backends", "vllm", "extra_args"), args)
    code, _, records = _both_formats(tmp_path, doc)
    assert not {"DPC021", "DPC022"} & {r["rule"] for r in records}
    assert code == 0
