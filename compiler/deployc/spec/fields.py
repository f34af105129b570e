"""Field metadata shared by the spec classes and the JSON Schema generator.

Each spec field carries its description, an example and JSON Schema constraints in
attrs metadata, so the attrs classes are the single source of the spec language:
cattrs structures them, :mod:`deployc.spec.schema` turns them into the committed
JSON Schema, and ``docs/spec.md`` is rendered from that schema.
"""

from __future__ import annotations

from typing import Any

import attrs

SCHEMA_KEY = "deployc.schema"


def spec_field(
    description: str,
    *,
    default: Any = attrs.NOTHING,
    factory: Any = None,
    example: Any = None,
    **constraints: Any,
) -> Any:
    """An attrs field documented for the schema.

    ``constraints`` are JSON Schema keywords (``minimum``, ``maxLength``, ``pattern``...).
    A field without a default is required in the spec.
    """
    meta: dict[str, Any] = {"description": description, "constraints": constraints}
    if example is not None:
        meta["example"] = example
    if isinstance(default, (list, dict)):
        raise TypeError("use a tuple or a factory for container defaults")
    if factory is not None:
        return attrs.field(factory=factory, metadata={SCHEMA_KEY: meta}, kw_only=True)
    return attrs.field(default=default, metadata={SCHEMA_KEY: meta}, kw_only=True)


def field_doc(field: attrs.Attribute[Any]) -> dict[str, Any]:
    """The documentation metadata of a spec field (empty for undocumented fields)."""
    meta = field.metadata.get(SCHEMA_KEY)
    return dict(meta) if meta else {}
