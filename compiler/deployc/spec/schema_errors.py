"""Turning JSON Schema errors into located, actionable diagnostics."""

from __future__ import annotations

import difflib
import itertools
import json
from collections.abc import Iterable, Mapping
from typing import Any

from deployc.diagnostics import MAX_PER_RULE, Diagnostic
from deployc.spec.loader import SpecDocument
from deployc.spec.locate import KeyPath, format_path

MAX_SCHEMA_ERRORS = 1000

_TOML_TYPES = {
    str: "a string", int: "an integer", float: "a float", bool: "a boolean", dict: "a table", list: "an array",
}
_SCHEMA_TYPES = {
    "string": "a string", "integer": "an integer", "number": "a number", "boolean": "a boolean",
    "object": "a table", "array": "an array",
}
# Patterns explained in words rather than as regular expressions.
_PATTERN_WORDS = {
    r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$": "1-63 lower-case letters, digits or dashes, not starting or "
    "ending with a dash",
    r"^[A-Za-z_][A-Za-z0-9_]{0,127}$": "an environment variable name (letters, digits, underscores)",
    r"^[^\x00-\x1f\x7f]*$": "no control characters (newlines, tabs, escapes)",
    r"^[^-\x00-\x1f\x7f][^\x00-\x1f\x7f]*$": "no control characters (newlines, tabs, escapes) and no leading "
    "'-' (it would be read as a flag)",
    r"^/[^\x00-\x1f\x7f:]*$": "an absolute path without ':' or control characters",
    r"^[A-Za-z0-9._][A-Za-z0-9._/-]*$": "a branch, tag or commit (letters, digits, . _ / -), not starting with '-'",
    r"^[A-Za-z0-9_.:^=-]{1,64}$": "an HCA name such as mlx5_0 (1-64 letters, digits or _ . : ^ = -)",
}
_UNSAFE_PATTERNS = frozenset({r"^[^\x00-\x1f\x7f]*$", r"^[^-\x00-\x1f\x7f][^\x00-\x1f\x7f]*$"})


def _toml_type(value: object) -> str:
    for py_type, name in _TOML_TYPES.items():
        if type(value) is py_type:
            return name
    return type(value).__name__


def _did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None


def _missing_hint(path: KeyPath, key: str, prop: Mapping[str, Any]) -> str:
    dotted = ".".join(str(p) for p in (*path, key))
    description = str(prop.get("description", "")).rstrip(".")
    if prop.get("type") == "object":
        return f"add a [{dotted}] table: {description}"
    example = prop.get("examples", [None])[0]
    shown = f"{key} = {json.dumps(example)}" if example is not None else f"{key} = ..."
    return f"add `{shown}`: {description}"


def _unknown_keys(document: SpecDocument, path: KeyPath, error: Any) -> list[Diagnostic]:
    known = list(error.schema.get("properties", {}))
    unknown = sorted(k for k in error.instance if k not in known)
    out = []
    for key in unknown[:MAX_PER_RULE]:  # suggestions cost a string comparison per known key: not for 50,000
        hint = _did_you_mean(key[:200], known) or ("known keys: " + ", ".join(known) if known else None)
        out.append(document.diagnostic("DPC010", f"unknown key {Diagnostic.value_repr(key)}", (*path, key),
                                       hint=hint))
    # The rest are only counted by cap_per_rule: no suggestion, no line lookup (50,000 of them took 12 s).
    out += [Diagnostic(rule="DPC010", message="unknown key", file=document.display_name,
                       key_path=format_path((*path, key))) for key in unknown[MAX_PER_RULE:]]
    return out


def _one(document: SpecDocument, path: KeyPath, error: Any) -> list[Diagnostic]:
    kind = error.validator
    schema: Mapping[str, Any] = error.schema
    value = error.instance
    shown = Diagnostic.value_repr(value)
    if kind == "additionalProperties":
        return _unknown_keys(document, path, error)
    if kind == "required":
        missing = [k for k in schema.get("required", []) if k not in value]
        return [document.diagnostic("DPC014", f"missing required key {key!r}", (*path, key),
                                    hint=_missing_hint(path, key, schema["properties"][key]))
                for key in missing]
    if kind == "type":
        expected = _SCHEMA_TYPES.get(str(error.validator_value), str(error.validator_value))
        return [document.diagnostic("DPC011", f"expected {expected}, got {_toml_type(value)} {shown}", path,
                                    value=shown, hint=schema.get("description"))]
    if kind == "const" and path == ("version",):
        return [document.diagnostic("DPC016", f"unsupported spec version {shown}", path, value=shown,
                                    hint="this deployc reads `version = 1`")]
    if kind in ("enum", "const"):
        choices = [str(c) for c in schema.get("enum", [schema.get("const")])]
        hint = _did_you_mean(str(value), choices) if isinstance(value, str) else None
        return [document.diagnostic("DPC012", f"{shown} is not one of: {', '.join(choices)}", path,
                                    value=shown, hint=hint or schema.get("description"))]
    if kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        words = {"minimum": "at least", "maximum": "at most", "exclusiveMinimum": "greater than",
                 "exclusiveMaximum": "less than"}[kind]
        return [document.diagnostic("DPC013", f"{shown} is out of range: must be {words} {error.validator_value}",
                                    path, value=shown, hint=schema.get("description"))]
    if kind == "pattern":
        words = _PATTERN_WORDS.get(str(error.validator_value), f"match {error.validator_value}")
        rule = "DPC020" if str(error.validator_value) in _UNSAFE_PATTERNS else "DPC015"
        return [document.diagnostic(rule, f"{shown} is malformed: expected {words}", path, value=shown,
                                    hint=schema.get("description"))]
    if kind in ("minLength", "maxLength", "minItems", "maxItems"):
        unit = "characters" if "Length" in kind else "items"
        bound = "at least" if kind.startswith("min") else "at most"
        return [document.diagnostic("DPC015", f"{shown} must have {bound} {error.validator_value} {unit}", path,
                                    value=shown, hint=schema.get("description"))]
    return [document.diagnostic("DPC015", error.message, path, value=shown)]


def schema_diagnostics(document: SpecDocument, validator: Any) -> list[Diagnostic]:
    """The schema violations of the document, one diagnostic each, deepest first per path.

    At most :data:`MAX_SCHEMA_ERRORS` are collected: a spec with 20,000 broken tables would otherwise
    take a minute to report problems nobody reads past the first screen.
    """
    out: list[Diagnostic] = []
    seen: set[tuple[str, str | None]] = set()
    errors = itertools.islice(validator.iter_errors(document.raw), MAX_SCHEMA_ERRORS)
    for error in sorted(errors, key=lambda e: list(map(str, e.absolute_path))):
        for diag in _one(document, tuple(error.absolute_path), error):
            if (diag.rule, diag.key_path) not in seen:
                seen.add((diag.rule, diag.key_path))
                out.append(diag)
    return out
