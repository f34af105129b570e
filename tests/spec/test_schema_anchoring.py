"""Schema patterns mean what JSON Schema (ECMA-262) says: ``$`` is the end of the string, not before a newline."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from deployc.plugins import default_registry
from deployc.spec.schema import python_pattern, spec_schema, validator
from tests.reliability import specgen

# Values that between them match every pattern of the spec language and the installed backends' options.
CANDIDATES = ("abc", "HF_TOKEN", "/data/hf-cache", "main", "eth0", "mlx5_0", "vllm", "v0.33.0",
              "registry.example.com/vllm/vllm-openai", "meta-llama/Llama-3.1-8B-Instruct", "--middleware", "8.9")


def _patterns(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("pattern"), str):
            yield node["pattern"]
        for value in node.values():
            yield from _patterns(value)
    elif isinstance(node, list):
        for value in node:
            yield from _patterns(value)


PATTERNS = sorted(set(_patterns(spec_schema(default_registry().option_schemas()))))


@pytest.mark.parametrize(("pattern", "expected"), [
    (r"^[a-z]+$", r"^[a-z]+\Z"),
    (r"^[$a]+$", r"^[$a]+\Z"),  # inside a class, $ is a dollar sign
    (r"^a\$$", r"^a\$\Z"),  # an escaped dollar stays one
    (r"^(a|b$)$", r"^(a|b\Z)\Z"),
    (r"^[\]$]$", r"^[\]$]\Z"),
])
def test_python_pattern_rewrites_only_end_anchors(pattern: str, expected: str) -> None:
    assert python_pattern(pattern) == expected


def test_the_committed_schema_keeps_ecma_anchors() -> None:
    """Editors read the schema as ECMA-262, where ``\\Z`` would be a literal Z."""
    assert PATTERNS
    assert not any(r"\Z" in p for p in PATTERNS)


@pytest.mark.parametrize("pattern", PATTERNS)
def test_no_pattern_accepts_a_trailing_newline(pattern: str) -> None:
    matching = [c for c in CANDIDATES if re.search(python_pattern(pattern), c)]
    assert matching, f"add a value matching {pattern} to CANDIDATES"
    assert re.search(pattern, matching[0] + "\n"), "Python's own $ accepts it: the rewrite is what refuses it"
    assert not re.search(python_pattern(pattern), matching[0] + "\n")


@pytest.mark.parametrize("path", [("name",), ("operations", "hf_token_env"), ("operations", "image_tag"),
                                  ("model", "revision"), ("backends", "vllm", "k8s_namespace")],
                         ids=".".join)
def test_the_validator_refuses_a_trailing_newline(path: tuple[str, ...]) -> None:
    good = {("backends", "vllm", "k8s_namespace"): "prod"}.get(path) or str(specgen.get(specgen.FULL_SPEC, path))
    doc = specgen.with_value(specgen.FULL_SPEC, path, good + "\n")
    errors = list(validator(default_registry().option_schemas()).iter_errors(doc))
    assert [(tuple(e.absolute_path), e.validator) for e in errors] == [(path, "pattern")]
