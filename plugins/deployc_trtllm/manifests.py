"""The TensorRT-LLM manifests in ``data/`` (transcribed from the public source, see data/README.md) and checkers.

:func:`check_flags` checks a ``trtllm-build`` / ``quantize.py`` / ``trtllm-serve`` argv (exact
spellings, choices, integer values; no flag twice); :func:`check_llm_api_yaml` checks an
extra-options YAML against the LLM API models (nested models forbid unknown keys).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Sequence
from importlib import resources
from typing import Any

_INT = re.compile(r"^-?[0-9]+$")
_FLOAT = re.compile(r"^-?[0-9]+(\.[0-9]*)?$")


@functools.cache
def load(name: str) -> dict[str, Any]:
    """``data/trtllm-<name>.json`` (build, serve, quantize, llm-api)."""
    text = resources.files("deployc_trtllm").joinpath("data", f"trtllm-{name}.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def options(tool: str) -> dict[str, dict[str, Any]]:
    """Every spelling of every option of ``build``, ``quantize`` or ``serve`` (its serve subcommand)."""
    raw = load(tool)
    opts = raw["subcommands"]["serve"]["options"] if tool == "serve" else raw["options"]
    return {flag: o for o in opts for flag in o["flags"]}


def _value_problem(flag: str, option: dict[str, Any], value: str) -> str | None:
    choices = option.get("choices")
    if choices and value not in choices:
        return f"{flag} {value!r} is not one of {', '.join(choices)}"
    if option.get("type") == "int" and not _INT.match(value):
        return f"{flag} expects an integer, got {value!r}"
    if option.get("type") == "float" and not _FLOAT.match(value):
        return f"{flag} expects a number, got {value!r}"
    return None


def check_flags(tool: str, argv: Sequence[object], positionals: int = 0) -> list[str]:
    """Problems with an argv (after the program name and ``positionals`` leading positionals)."""
    table = options(tool)
    problems: list[str] = []
    seen: set[int] = set()
    words = list(argv[positionals:])
    index = 0
    while index < len(words):
        flag = words[index]
        index += 1
        if not (isinstance(flag, str) and flag.startswith("--")):
            problems.append(f"stray value {flag!r}")
            continue
        option = table.get(flag)
        if option is None:
            problems.append(f"{flag} is not a flag of {load(tool)['tool']} (manifest {load(tool)['pinned_target']})")
            while index < len(words) and not (isinstance(words[index], str) and str(words[index]).startswith("--")):
                index += 1
            continue
        if id(option) in seen:
            problems.append(f"{flag} is given twice")
        seen.add(id(option))
        if option.get("is_flag"):
            continue
        if index >= len(words):
            problems.append(f"{flag} expects a value")
            break
        value = words[index]
        index += 1
        if isinstance(value, str) and (problem := _value_problem(flag, option, value)):
            problems.append(problem)
    return problems


_PY_TYPES: dict[str, type | tuple[type, ...]] = {"int": int, "float": (int, float), "bool": bool, "str": str,
                                                 "list": list, "dict": dict}


def _check_model(model_name: str, doc: dict[str, Any], where: str, *, strict: bool) -> list[str]:
    models = load("llm-api")["models"]
    fields = models[model_name]["fields"]
    problems: list[str] = []
    for key, value in doc.items():
        field = fields.get(key)
        if field is None:
            if strict:
                problems.append(f"{where}{key} is not a field of {model_name}")
            continue
        wanted = _PY_TYPES.get(field["type"])
        if field.get("model") and isinstance(value, dict):
            problems += _check_model(field["model"], value, f"{where}{key}.", strict=True)
        elif wanted is not None and value is not None and not isinstance(value, wanted):
            problems.append(f"{where}{key} should be {field['type']}, got {value!r}")
        elif field.get("choices") and value not in field["choices"]:
            problems.append(f"{where}{key} {value!r} is not one of {', '.join(field['choices'])}")
    return problems


def check_llm_api_yaml(doc: dict[str, Any], backend: str = "tensorrt") -> list[str]:
    """Problems with an extra-options YAML for ``trtllm-serve --backend <backend>``."""
    root = load("llm-api")["roots"][backend]
    return _check_model(root, doc, "", strict=True)
