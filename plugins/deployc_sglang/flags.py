"""SGLang 0.5.23's flag set (``data/sglang-0.5.23.json``, dumped from its real parser) and an argv checker.

:func:`check_argv` is stricter than argparse: no abbreviations (argparse accepts ``--tp``, and
``--cuda-graph-max-bs`` is an ambiguous prefix), no option given twice, values checked
against the declared choices and types.  The real parser runs in
``tests/plugins/sglang/test_real_parser.py``.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Sequence
from importlib import resources
from typing import Any

from deployc_sglang import ENGINE_VERSION

_SWITCH_ACTIONS = frozenset({"_StoreTrueAction", "_StoreFalseAction", "DeprecatedStoreTrueAction", "_HelpAction",
                             "_VersionAction", "BooleanOptionalAction", "_StoreConstAction"})
_INT = re.compile(r"^-?[0-9]+$")
_NUMBER = re.compile(r"^-?[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?$")
_HUMAN_INT = re.compile(r"^[0-9]+(\.[0-9]+)?[kKmMgG]?$")


@functools.cache
def load_manifest() -> dict[str, dict[str, Any]]:
    """Every spelling of every option (``--tp-size``, ``--tensor-parallel-size``) to its manifest entry."""
    text = resources.files("deployc_sglang").joinpath("data", f"sglang-{ENGINE_VERSION}.json").read_text("utf-8")
    return {flag: option for option in json.loads(text)["options"] for flag in option["flags"]}


def _value_problem(flag: str, option: dict[str, Any], value: str) -> str | None:
    choices = option.get("choices")
    if choices and value not in [str(c) for c in choices]:
        return f"{flag} {value!r} is not one of {', '.join(str(c) for c in choices)}"
    kind = option.get("type")
    if kind == "int" and not _INT.match(value):
        return f"{flag} expects an integer, got {value!r}"
    if kind == "float" and not _NUMBER.match(value):
        return f"{flag} expects a number, got {value!r}"
    if kind == "human_readable_int" and not _HUMAN_INT.match(value):
        return f"{flag} expects an integer like 8192 or 8k, got {value!r}"
    return None


def _is_flag(token: object) -> bool:
    return isinstance(token, str) and token.startswith("-") and not _NUMBER.match(token)


def check_argv(argv: Sequence[object]) -> list[str]:
    """Problems with an argv given to ``python -m sglang.launch_server`` (empty when it is valid).

    Tokens that are not strings (environment references resolved at run time) count as values.
    """
    manifest = load_manifest()
    problems: list[str] = []
    seen: dict[str, str] = {}
    index = 0
    while index < len(argv):
        token = argv[index]
        index += 1
        if not _is_flag(token):
            problems.append(f"stray value {token!r}: it follows no flag that takes a value")
            continue
        flag = str(token)
        option = manifest.get(flag)
        if option is None:
            longer = sorted(f for f in manifest if f.startswith(flag))
            problems.append(f"{flag} is an abbreviation (of {', '.join(longer[:3])}); spell flags in full" if longer
                            else f"{flag} is not a flag of SGLang {ENGINE_VERSION}")
            while index < len(argv) and not _is_flag(argv[index]):
                index += 1
            continue
        if option["dest"] in seen:
            problems.append(f"{flag} is given twice")
        seen[option["dest"]] = flag
        values: list[object] = []
        if option["action"] not in _SWITCH_ACTIONS and option.get("nargs") != 0:
            while index < len(argv) and not _is_flag(argv[index]) and (not values or option.get("nargs") in ("+", "*")):
                values.append(argv[index])
                index += 1
            if not values:
                problems.append(f"{flag} expects a value")
        problems += [p for v in values if isinstance(v, str) and (p := _value_problem(flag, option, v))]
    if "model_path" not in {manifest[f]["dest"] for f in seen.values()}:
        problems.append("--model-path is required")
    return problems


def check_config(doc: dict[str, Any]) -> list[str]:
    """Problems with a ``--config`` YAML document: keys must be dash-spelled flag names."""
    argv: list[object] = []
    for key, value in doc.items():
        argv.append(f"--{key}")
        if value is True:
            continue
        argv += [str(v) for v in (value if isinstance(value, list) else [value])]
    return check_argv(argv)
