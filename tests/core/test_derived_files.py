"""Committed files derived from code are fresh (regenerate with `python tools/gen_docs.py`)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import REPO
from tools.gen_docs import generated


@pytest.mark.parametrize("path", sorted(generated()), ids=lambda p: p.name)
def test_committed_copy_is_fresh(path):  # type: ignore[no-untyped-def]
    assert path.read_text() == generated()[path], f"{path.name} is stale: run `python tools/gen_docs.py`"


def test_every_schema_property_has_a_description():
    schema = json.loads((REPO / "schemas" / "deployc.schema.json").read_text())

    def walk(node, path):  # type: ignore[no-untyped-def]
        for name, prop in node.get("properties", {}).items():
            assert prop.get("description"), f"{path}{name} has no description"
            walk(prop, f"{path}{name}.")
            walk(prop.get("items", {}), f"{path}{name}[].")

    walk(schema, "")


def test_schema_is_valid_draft_2020_12():
    import jsonschema

    schema = json.loads((REPO / "schemas" / "deployc.schema.json").read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator.check_schema(json.loads((REPO / "schemas" / "plan.schema.json").read_text()))


def test_rules_doc_lists_every_rule():
    from deployc.rules import RULES

    text = (REPO / "docs" / "rules.md").read_text()
    for rule_id in RULES:
        assert f"| {rule_id} |" in text
