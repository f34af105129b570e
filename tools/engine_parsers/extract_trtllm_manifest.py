"""Extract TensorRT-LLM manifests from its SOURCE (stdlib only: the wheel cannot be installed here).

Usage:
  python extract_trtllm_manifest.py llm-api tensorrt_llm/llmapi/llm_args.py [--check data/trtllm-llm-api.json]
  python extract_trtllm_manifest.py serve tensorrt_llm/commands/serve.py [--check data/trtllm-serve.json]

The other engines' manifests are dumps of their real parsers (extract_manifest.py); TensorRT-LLM's
wheel is not on PyPI (the sdist there downloads from NVIDIA's index), so this reads the source of
a release checkout (``git clone --depth 1 --branch v1.2.1 https://github.com/NVIDIA/TensorRT-LLM``)
with :mod:`ast` and never imports it:

- ``llm-api``: every pydantic model class (``BaseModel``/``StrictBaseModel`` descendants), its
  declared fields with inheritance (``x: T = Field(default=...)``; private ``_x`` and ``ClassVar``
  skipped), the outer type (``Optional[X]`` → X; ``Literal[...]`` → its values as ``choices``;
  another model of the file → ``"model"``), the literal default, and ``extra``: ``forbid`` for a
  ``StrictBaseModel`` descendant or ``model_config = ConfigDict(extra="forbid")``.
- ``serve``: the ``@click.option`` decorators of the ``serve`` command: flag spellings, type,
  literal default, ``is_flag``, ``multiple``, literal ``click.Choice`` / ``ChoiceWithAlias`` choices.

``--check MANIFEST`` compares field/flag NAMES with a manifest (what deployc's checks rely on) and
exits 1 listing the differences; without it the extraction is printed as JSON in the manifest format.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path
from typing import Any

PY_TYPES = {"int": "int", "float": "float", "bool": "bool", "str": "str", "list": "list", "List": "list",
            "dict": "dict", "Dict": "dict", "Path": "str", "NonNegativeInt": "int", "PositiveInt": "int",
            "NonNegativeFloat": "float", "PositiveFloat": "float", "StrictInt": "int", "Set": "list",
            "Tuple": "list", "tuple": "list"}
WRAPPERS = {"Optional", "Annotated"}
MODEL_BASES = {"BaseModel", "StrictBaseModel"}


def _name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Subscript):
        return _name(node.value)
    return ""


def _literal(node: ast.expr | None) -> Any:
    if node is None:
        return None
    try:
        return ast.literal_eval(node)
    except ValueError:
        return None


def _type(node: ast.expr, models: set[str]) -> dict[str, Any]:
    """The outer type of an annotation: Optional/Annotated unwrapped, Union → its first member."""
    head = _name(node)
    if isinstance(node, ast.Subscript) and head in WRAPPERS | {"Union"}:
        inner = node.slice.elts[0] if isinstance(node.slice, ast.Tuple) else node.slice
        return _type(inner, models)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):  # X | None
        return _type(node.left, models)
    if isinstance(node, ast.Subscript) and head == "Literal":
        values = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        choices = [_literal(v) for v in values]
        return {"type": type(choices[0]).__name__ if choices else "any", "choices": choices}
    if isinstance(node, ast.Constant) and isinstance(node.value, str):  # a quoted forward reference
        return _type(ast.parse(node.value, mode="eval").body, models)
    if head in models:
        return {"type": "dict", "model": head}
    return {"type": PY_TYPES.get(head, "any")}


def _default(value: ast.expr | None) -> Any:
    """The literal default of ``Field(default=...)``, ``Field(...)`` or a plain value (None otherwise)."""
    if isinstance(value, ast.Call) and _name(value.func) in {"Field", "PydanticField"}:
        for keyword in value.keywords:
            if keyword.arg == "default":
                return _literal(keyword.value)
        return _literal(value.args[0]) if value.args else None
    return _literal(value)


def _forbids_extra(cls: ast.ClassDef) -> bool:
    for stmt in cls.body:
        if isinstance(stmt, ast.Assign) and any(_name(t) == "model_config" for t in stmt.targets) \
                and isinstance(stmt.value, ast.Call):
            return any(k.arg == "extra" and _literal(k.value) == "forbid" for k in stmt.value.keywords)
    return False


def llm_api_models(source: str) -> dict[str, dict[str, Any]]:
    """Every pydantic model of an ``llm_args.py`` with its fields (inherited ones included)."""
    classes = {node.name: node for node in ast.parse(source).body if isinstance(node, ast.ClassDef)}

    def ancestors(name: str) -> list[str]:
        node = classes.get(name)
        if node is None:
            return [name]
        out = [name]
        for base in node.bases:
            out += ancestors(_name(base))
        return out

    models = {n for n in classes if MODEL_BASES & set(ancestors(n))}
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(models):
        chain = [a for a in ancestors(name) if a in classes]
        fields: dict[str, Any] = {}
        for cls_name in reversed(chain):  # base classes first, subclasses override
            for stmt in classes[cls_name].body:
                if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)):
                    continue
                field = stmt.target.id
                if field.startswith("_") or _name(stmt.annotation) == "ClassVar" or field == "model_config":
                    continue
                fields[field] = {**_type(stmt.annotation, models), "default": _default(stmt.value)}
        strict = "StrictBaseModel" in ancestors(name) or any(_forbids_extra(classes[c]) for c in chain)
        out[name] = {"name": name, "extra": "forbid" if strict else "ignore", "complete": True, "fields": fields}
    return out


def _choices(node: ast.expr) -> list[Any] | None:
    if isinstance(node, ast.Call) and _name(node.func) in {"Choice", "ChoiceWithAlias"} and node.args:
        value = _literal(node.args[0])
        return list(value) if isinstance(value, (list, tuple)) else None
    return None


def serve_options(source: str, command: str = "serve") -> list[dict[str, Any]]:
    """The ``@click.option`` decorators of the function decorated ``@click.command(command)``."""
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.FunctionDef):
            continue
        decorators = [d for d in node.decorator_list if isinstance(d, ast.Call)]
        if not any(_name(d.func) == "command" and d.args and _literal(d.args[0]) == command for d in decorators):
            continue
        options = []
        for deco in decorators:  # source order, as click lists them in --help
            if _name(deco.func) != "option":
                continue
            flags = [a.value for a in deco.args if isinstance(a, ast.Constant) and str(a.value).startswith("-")]
            keywords = {k.arg: k.value for k in deco.keywords if k.arg}
            option: dict[str, Any] = {"flags": flags}
            type_node = keywords.get("type")
            option["type"] = PY_TYPES.get(_name(type_node), "str") if type_node is not None else None
            option["default"] = _literal(keywords.get("default"))
            if _literal(keywords.get("is_flag")):
                option["is_flag"] = True
            if _literal(keywords.get("multiple")):
                option["multiple"] = True
            if type_node is not None and (choices := _choices(type_node)) is not None:
                option["choices"] = choices
            options.append(option)
        return options
    raise ValueError(f"no @click.command({command!r}) in the source")


def check(kind: str, extracted: Any, manifest: dict[str, Any]) -> list[str]:
    """Names in one and not the other (fields per model, or flag spellings)."""
    problems: list[str] = []
    if kind == "serve":
        have = {f for o in manifest["subcommands"]["serve"]["options"] for f in o["flags"]}
        got = {f for o in extracted for f in o["flags"]}
        problems += [f"flag {f} is in the source, not in the manifest" for f in sorted(got - have)]
        problems += [f"flag {f} is in the manifest, not in the source" for f in sorted(have - got)]
        return problems
    for name, model in manifest["models"].items():
        if name not in extracted:
            problems.append(f"model {name} is in the manifest, not in the source")
            continue
        have, got = set(model["fields"]), set(extracted[name]["fields"])
        problems += [f"{name}.{f} is in the source, not in the manifest" for f in sorted(got - have)
                     if model.get("complete")]
        problems += [f"{name}.{f} is in the manifest, not in the source" for f in sorted(have - got)]
        if model.get("extra") == "forbid" and extracted[name]["extra"] != "forbid":
            problems.append(f"{name} forbids extra keys in the manifest, not in the source")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("kind", choices=("llm-api", "serve"))
    parser.add_argument("source", type=Path)
    parser.add_argument("--check", type=Path, help="a manifest to compare the names with")
    args = parser.parse_args(argv)
    text = args.source.read_text(encoding="utf-8")
    extracted: Any = llm_api_models(text) if args.kind == "llm-api" else serve_options(text)
    if args.check is None:
        print(json.dumps({"models": extracted} if args.kind == "llm-api" else {"options": extracted}, indent=1))
        return 0
    problems = check(args.kind, extracted, json.loads(args.check.read_text(encoding="utf-8")))
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
