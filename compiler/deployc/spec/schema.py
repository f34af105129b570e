"""The spec's JSON Schema (draft 2020-12), generated from the attrs classes.

``deployc schema`` prints it; ``schemas/deployc.schema.json`` is the committed copy
(editors use it through taplo's ``#:schema`` comment) and a test fails when it is
stale.  Backends contribute the schema of their ``[backends.NAME]`` table.
"""

from __future__ import annotations

import functools
import json
import re
import types
import typing
from collections.abc import Iterator, Mapping
from typing import Any, Literal

import attrs

from deployc.spec.fields import field_doc
from deployc.spec.model import Spec

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _type_schema(tp: Any) -> dict[str, Any]:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (types.UnionType, typing.Union):
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) != 1:
            raise TypeError(f"unsupported union {tp!r}")
        return _type_schema(non_none[0])
    if origin is Literal:
        values = list(args)
        if len(values) == 1:
            return {"const": values[0]}
        return {"type": "string", "enum": values}
    if origin is tuple:
        return {"type": "array", "items": _type_schema(args[0])}
    if origin is dict:
        return {"type": "object"}
    if attrs.has(tp):
        return _class_schema(tp)
    simple = {bool: "boolean", int: "integer", float: "number", str: "string"}
    if tp in simple:
        return {"type": simple[tp]}
    raise TypeError(f"no JSON Schema for {tp!r}")


def _class_schema(cls: type) -> dict[str, Any]:
    attrs.resolve_types(cls)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for field in attrs.fields(cls):
        doc = field_doc(field)
        schema = _type_schema(field.type)
        schema = {**schema, "description": doc.get("description", ""), **doc.get("constraints", {})}
        default = field.default
        if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
            default = default.factory()
        if default is attrs.NOTHING:
            required.append(field.name)
        elif default is not None and not attrs.has(type(default)):
            schema["default"] = list(default) if isinstance(default, tuple) else default
        if "example" in doc:
            schema["examples"] = [doc["example"]]
        properties[field.name] = schema
    out: dict[str, Any] = {
        "type": "object",
        "description": (cls.__doc__ or "").strip().splitlines()[0],
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        out["required"] = required
    return out


def spec_schema(backend_fragments: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """The full schema, with each backend's fragment under ``backends.NAME``."""
    schema = _class_schema(Spec)
    backends = schema["properties"]["backends"]
    backends["properties"] = {
        name: {"description": f"Options of the {name} backend.", **dict(fragment)}
        for name, fragment in sorted((backend_fragments or {}).items())
    }
    backends["additionalProperties"] = False
    return {
        "$schema": SCHEMA_DIALECT,
        "title": "deployc spec, version 1",
        **schema,
    }


def schema_text(backend_fragments: Mapping[str, Mapping[str, Any]] | None = None) -> str:
    """The schema as the committed file holds it: sorted keys off, 2-space indent, final newline."""
    return json.dumps(spec_schema(backend_fragments), indent=2, ensure_ascii=False) + "\n"


def python_pattern(pattern: str) -> str:
    """A JSON Schema ``pattern`` rewritten so that Python's ``re.search`` gives its ECMA-262 meaning.

    In ECMA-262 (the dialect JSON Schema patterns are written in) ``$`` matches only at the end of
    the string; in Python it also matches before a final newline, so ``^[a-z]+$`` accepts ``"abc\\n"``.
    Every ``$`` outside a character class and not escaped becomes ``\\Z``.  The committed schema
    keeps ``$`` (editors read it as ECMA-262, where ``\\Z`` would mean a literal ``Z``); this rewrite
    is applied to every pattern, a backend's fragment included, when the validator is built.
    """
    out: list[str] = []
    in_class = escaped = False
    for ch in pattern:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
        elif ch == "$":
            out.append(r"\Z")
            continue
        out.append(ch)
    return "".join(out)


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(python_pattern(pattern))


def _ecma_pattern(validator: Any, pattern: str, instance: Any, _schema: Mapping[str, Any]) -> Iterator[Any]:
    """jsonschema's ``pattern`` keyword with ECMA-262 anchors (see :func:`python_pattern`)."""
    from jsonschema import ValidationError  # noqa: PLC0415

    if validator.is_type(instance, "string") and not _compiled(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


@functools.cache
def _validator_for(fragments_json: str) -> Any:
    import jsonschema  # noqa: PLC0415  (heavy import: only when validating)

    schema = _checks_before_descent(spec_schema(json.loads(fragments_json)))
    cls = jsonschema.validators.extend(jsonschema.Draft202012Validator, {"pattern": _ecma_pattern})
    return cls(schema)


_DESCENT = ("properties", "prefixItems", "items")


def _checks_before_descent(node: Any) -> Any:
    """The schema with each object's own checks (``maxItems``...) before the keywords that descend into it.

    jsonschema reports in keyword order, and only the first errors are collected (schema_errors): 2,000
    broken ``[[workload.classes]]`` must not hide that there may be at most 8.
    """
    if isinstance(node, list):
        return [_checks_before_descent(item) for item in node]
    if not isinstance(node, dict):
        return node
    own = {k: _checks_before_descent(v) for k, v in node.items() if k not in _DESCENT}
    return {**own, **{k: _checks_before_descent(node[k]) for k in _DESCENT if k in node}}


def validator(backend_fragments: Mapping[str, Mapping[str, Any]]) -> Any:
    """A compiled validator, built once per set of backend fragments."""
    return _validator_for(json.dumps(backend_fragments, sort_keys=True))
