"""Reference docs generated from the code they describe: docs/spec.md and docs/rules.md.

``python tools/gen_docs.py`` rewrites them (and the committed schema); tests fail when
the committed copies are stale.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from deployc.rules import DECISION_RULES, RULES
from deployc.spec.schema import spec_schema


def _type_of(prop: Mapping[str, Any]) -> str:
    if "const" in prop:
        return f"`{json.dumps(prop['const'])}`"
    if "enum" in prop:
        return " \\| ".join(f"`{json.dumps(v)}`" for v in prop["enum"])
    kind = str(prop.get("type", "any"))
    if kind == "array":
        return f"array of {_type_of(prop.get('items', {}))}"
    return {"object": "table", "number": "float"}.get(kind, kind)


def _rows(schema: Mapping[str, Any], prefix: str) -> Iterator[tuple[str, Mapping[str, Any], bool]]:
    required = set(schema.get("required", []))
    for name, prop in schema.get("properties", {}).items():
        path = f"{prefix}.{name}" if prefix else name
        yield path, prop, name in required
        if prop.get("type") == "object" and "properties" in prop:
            yield from _rows(prop, path)
        items = prop.get("items", {})
        if prop.get("type") == "array" and items.get("type") == "object":
            yield from _rows(items, f"{path}[]")


def spec_markdown(backend_fragments: Mapping[str, Mapping[str, Any]]) -> str:
    """docs/spec.md: every key with type, default, meaning and example."""
    schema = spec_schema(backend_fragments)
    lines = [
        "# The deployc spec, version 1",
        "",
        "Generated from the spec's attrs classes (`python tools/gen_docs.py`); the same source produces",
        "`schemas/deployc.schema.json`. Point editors at it with taplo's first-line comment",
        "`#:schema ./schemas/deployc.schema.json`.",
        "",
        "| key | type | required / default | meaning | example |",
        "|---|---|---|---|---|",
    ]
    for path, prop, required in _rows(schema, ""):
        default = "required" if required else (
            f"`{json.dumps(prop['default'])}`" if "default" in prop else "optional")
        example = f"`{json.dumps(prop['examples'][0])}`" if prop.get("examples") else ""
        meaning = str(prop.get("description", "")).replace("|", "\\|")
        lines.append(f"| `{path}` | {_type_of(prop)} | {default} | {meaning} | {example} |")
    return "\n".join(lines) + "\n"


def rules_markdown() -> str:
    """docs/rules.md: every rule id with its title and what to do."""
    lines = ["# Diagnostic rules", "", "Every diagnostic carries one of these stable ids. Generated from",
             "`compiler/deployc/rules.py` (`python tools/gen_docs.py`).", "", "| id | title | explanation |",
             "|---|---|---|"]
    lines += [f"| {r.id} | {r.title} | {r.explanation} |" for r in RULES.values()]
    lines += ["", "## Decision rules", "",
              "Every planner decision in plan.json and EXPLAIN.md carries one of these ids (never a diagnostic's).", "",
              "| id | decision | what it chooses |", "|---|---|---|"]
    lines += [f"| {r.id} | {r.title} | {r.explanation} |" for r in DECISION_RULES.values()]
    return "\n".join(lines) + "\n"
