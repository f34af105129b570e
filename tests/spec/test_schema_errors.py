"""Schema violations come out located (file, key path, line) with the value and a fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from deployc.diagnostics import sort_key
from deployc.spec.loader import read_document
from deployc.spec.schema import validator
from deployc.spec.schema_errors import schema_diagnostics
from tests.conftest import MINIMAL_SPEC


def _check(path: Path) -> list[str]:
    doc = read_document(path, "spec.toml")
    return [d.format_text() for d in sorted(schema_diagnostics(doc, validator({})), key=sort_key)]


def test_minimal_spec_is_valid(write_spec):  # type: ignore[no-untyped-def]
    assert _check(write_spec(MINIMAL_SPEC)) == []


def test_unknown_key_gets_a_suggestion(write_spec):  # type: ignore[no-untyped-def]
    path = write_spec(MINIMAL_SPEC.replace('gpu = "H100 SXM"', 'gpu = "H100 SXM"\ngpus_per_nod = 2'))
    assert _check(path) == [
        "spec.toml:9: error: hardware.gpus_per_nod: unknown key 'gpus_per_nod' [DPC010]\n"
        "  hint: did you mean 'gpus_per_node'?",
    ]


def test_unknown_table_gets_a_suggestion(write_spec):  # type: ignore[no-untyped-def]
    path = write_spec(MINIMAL_SPEC + "\n[operation]\nport = 9000\n")
    assert _check(path) == [
        "spec.toml:15: error: operation: unknown key 'operation' [DPC010]\n  hint: did you mean 'operations'?",
    ]


def test_wrong_type(write_spec):  # type: ignore[no-untyped-def]
    path = write_spec(MINIMAL_SPEC.replace("concurrency = 16", 'concurrency = "16"'))
    assert _check(path) == [
        "spec.toml:13: error: workload.concurrency: expected an integer, got a string '16' [DPC011]\n"
        "  hint: Requests in flight at once (give this or request_rate_per_s).",
    ]


def test_enum_with_did_you_mean(write_spec):  # type: ignore[no-untyped-def]
    path = write_spec(MINIMAL_SPEC.replace('[model]\n', '[model]\nquantization = "fp9"\n'))
    assert _check(path) == [
        "spec.toml:5: error: model.quantization: 'fp9' is not one of: auto, none, fp8, int8, awq, gptq, mxfp4, "
        "nvfp4 [DPC012]\n  hint: did you mean 'fp8'?",
    ]


def test_out_of_range(write_spec):  # type: ignore[no-untyped-def]
    path = write_spec(MINIMAL_SPEC.replace('gpu = "H100 SXM"', 'gpu = "H100 SXM"\nnodes = 0'))
    assert _check(path) == [
        "spec.toml:9: error: hardware.nodes: 0 is out of range: must be at least 1 [DPC013]\n"
        "  hint: Number of nodes.",
    ]


def test_missing_required_table_and_key(write_spec):  # type: ignore[no-untyped-def]
    text = MINIMAL_SPEC.replace('id = "meta-llama/Llama-3.1-8B-Instruct"\n', "")
    text = text.split("[workload]")[0]
    assert _check(write_spec(text)) == [
        "spec.toml:4: error: model.id: missing required key 'id' [DPC014]\n"
        '  hint: add `id = "meta-llama/Llama-3.1-70B-Instruct"`: A catalog name (`deployc catalog models`), a '
        "Hugging Face repo id (`org/name`), or a path (relative to the spec) to a local `config.json` or a directory "
        "holding one",
        "spec.toml: error: workload: missing required key 'workload' [DPC014]\n  hint: add a [workload] table: The "
        "traffic",
    ]


def test_newline_in_a_value_that_reaches_a_command(write_spec):  # type: ignore[no-untyped-def]
    path = write_spec(MINIMAL_SPEC.replace('id = "meta-llama/Llama-3.1-8B-Instruct"',
                                           'id = "meta-llama/x\\n--trust-remote-code"'))
    messages = _check(path)
    assert len(messages) == 1
    assert messages[0].startswith("spec.toml:5: error: model.id: 'meta-llama/x\\n--trust-remote-code' is malformed: "
                                  "expected no control characters (newlines, tabs, escapes) and no leading '-' "
                                  "(it would be read as a flag) [DPC020]")


@pytest.mark.parametrize("key", ["id", "served_name"])
def test_flag_smuggled_as_a_value_is_refused(write_spec, key):  # type: ignore[no-untyped-def]
    path = write_spec(MINIMAL_SPEC.replace('[model]\n', f'[model]\n{key} = "--trust-remote-code"\n', 1)
                      .replace('id = "meta-llama/Llama-3.1-8B-Instruct"\n', "" if key == "id" else
                               'id = "meta-llama/Llama-3.1-8B-Instruct"\n'))
    (message,) = _check(path)
    assert message.startswith(f"spec.toml:5: error: model.{key}: '--trust-remote-code' is malformed:")
    assert "[DPC020]" in message


def test_model_cache_must_be_an_absolute_path_without_colons(write_spec):  # type: ignore[no-untyped-def]
    path = write_spec(MINIMAL_SPEC + '\n[operations]\nmodel_cache = "/data:/etc"\n')
    (message,) = _check(path)
    assert message.startswith("spec.toml:16: error: operations.model_cache: '/data:/etc' is malformed: expected an "
                              "absolute path without ':' or control characters [DPC015]")


def test_unsupported_version(write_spec):  # type: ignore[no-untyped-def]
    path = write_spec(MINIMAL_SPEC.replace("version = 1", "version = 2"))
    assert _check(path) == [
        "spec.toml:1: error: version: unsupported spec version 2 [DPC016]\n  hint: this deployc reads `version = 1`",
    ]


@pytest.mark.parametrize("bad", ["Bad_Name", "-x", "a" * 64])
def test_deployment_name_pattern(write_spec, bad):  # type: ignore[no-untyped-def]
    path = write_spec(MINIMAL_SPEC.replace('name = "tiny"', f'name = "{bad}"'))
    (message,) = _check(path)
    assert message.startswith(f"spec.toml:2: error: name: '{bad}' is malformed: expected 1-63 lower-case letters")
