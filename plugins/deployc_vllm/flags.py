"""The pinned flag set of ``vllm serve`` and a checker for every argv deployc emits.

The manifest (``data/vllm-<version>.json``) was dumped from vLLM's real argument parser;
:func:`check_argv` walks an argv the way argparse would, but stricter: no abbreviations,
no removed flags, no value that is really a flag, no option given twice, and values
checked against the choices and types the parser declares.  A few values are validated
by vLLM only after parsing (quantization methods, KV-cache dtypes); their allowed sets
are listed in :data:`KNOWN_VALUES` with the source file they were read from.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Sequence
from importlib import resources
from typing import Any

from attrs import frozen

from deployc_vllm import ENGINE_VERSION

_VALUELESS_ACTIONS = frozenset({"_StoreTrueAction", "_StoreFalseAction", "EnableDisableAction", "_HelpAction",
                                "_VersionAction", "_CountAction", "BooleanOptionalAction"})
_HUMAN_INT = re.compile(r"^[0-9]+(\.[0-9]+)?[kKmMgG]?$")
_NUMBER = re.compile(r"^-?[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?$")

# Values vLLM 0.33.0 checks after argument parsing (so the parser dump has no choices for them).
KNOWN_VALUES: dict[str, tuple[str, ...]] = {
    # vllm/model_executor/layers/quantization/__init__.py, QuantizationMethods (vLLM 0.33.0)
    "--quantization": (
        "awq", "auto_awq", "fp8", "fbgemm_fp8", "fp_quant", "modelopt", "modelopt_fp4", "modelopt_mxfp8",
        "modelopt_mixed", "auto_gptq", "gptq", "gptq_marlin", "awq_marlin", "humming", "compressed-tensors",
        "experts_int8", "quark", "moe_wna16", "torchao", "inc", "mxfp4", "gpt_oss_mxfp4", "deepseek_v4_fp8",
        "online", "fp8_per_tensor", "fp8_per_block", "fp8_per_channel", "int8_per_channel_weight_only",
        "nvfp4_per_token", "mxfp8",
    ),
    # vllm/config/cache.py, CacheDType (vLLM 0.33.0); the 16-bit values must equal the model dtype
    "--kv-cache-dtype": (
        "auto", "float16", "bfloat16", "fp8", "fp8_e4m3", "fp8_e5m2", "fp8_inc", "fp8_ds_mla", "nvfp4_ds_mla",
        "nvfp4",
    ),
    # vllm/config/parallel.py, DistributedExecutorBackend (ERRATA: "nccl" is not one of them)
    "--distributed-executor-backend": ("mp", "ray", "uni", "external_launcher"),
}

# Flags articles and old configs still use; vLLM 0.33.0's parser no longer has them.
DEAD_FLAGS: dict[str, str] = {
    "--swap-space": "removed: the V1 engine preempts by recomputation, it does not swap KV blocks to CPU",
    "--num-scheduler-steps": "removed with the V0 engine's multi-step scheduler",
    "--max-seq-len-to-capture": "removed: CUDA graph capture sizes are set with --max-cudagraph-capture-size",
    "--use-v2-block-manager": "removed: the V1 engine has one block manager",
    "--multi-step-stream-outputs": "removed with the V0 engine's multi-step scheduler",
}


@frozen
class Option:
    """One option of the parser: its spellings, destination, type, choices and arity."""

    flags: tuple[str, ...]
    dest: str
    type: str | None
    choices: tuple[str, ...] | None
    nargs: int | str | None
    action: str

    @property
    def takes_value(self) -> bool:
        """Whether the option consumes a value (``--port 8000``) or is a switch (``--enforce-eager``)."""
        return self.action not in _VALUELESS_ACTIONS and self.nargs != 0

    @property
    def positional(self) -> bool:
        """Whether this is the positional model tag."""
        return not self.flags[0].startswith("-")


@frozen
class FlagManifest:
    """The options of one vLLM version's ``vllm serve``."""

    version: str
    options: tuple[Option, ...]

    @functools.cached_property
    def by_flag(self) -> dict[str, Option]:
        """Every spelling (``--tensor-parallel-size``, ``-tp``) to its option."""
        return {flag: option for option in self.options for flag in option.flags if flag.startswith("-")}

    def option(self, flag: str) -> Option | None:
        """The option spelled exactly ``flag`` (never a prefix of it)."""
        return self.by_flag.get(flag)

    def long_flags(self) -> list[str]:
        """All ``--long`` spellings, sorted."""
        return sorted(f for f in self.by_flag if f.startswith("--"))


def _option(raw: dict[str, Any]) -> Option:
    choices = raw.get("choices")
    # "hidden_flags": spellings the parser accepts but hides from --help (tools/engine_parsers/extract_manifest.py)
    return Option(flags=(*raw["flags"], *raw.get("hidden_flags", ())), dest=raw["dest"], type=raw.get("type"),
                  choices=tuple(str(c) for c in choices) if choices else None, nargs=raw.get("nargs"),
                  action=raw["action"])


@functools.cache
def load_manifest(version: str = ENGINE_VERSION) -> FlagManifest:
    """The manifest shipped for ``version`` (package data, read once per process)."""
    text = resources.files("deployc_vllm").joinpath("data", f"vllm-{version}.json").read_text(encoding="utf-8")
    raw = json.loads(text)
    return FlagManifest(version=raw["version"], options=tuple(_option(o) for o in raw["options"]))


def _value_problem(option: Option, flag: str, value: str) -> str | None:
    if option.choices and value not in option.choices:
        return f"{flag} {value!r} is not one of {', '.join(option.choices)}"
    known = KNOWN_VALUES.get(option.flags[0])
    if known and value not in known:
        close = difflib.get_close_matches(value, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"{flag} {value!r} is not a value vLLM {ENGINE_VERSION} accepts{hint}"
    kind = option.type
    if kind == "int" and not re.fullmatch(r"-?[0-9]+", value):
        return f"{flag} expects an integer, got {value!r}"
    if kind == "float" and not _NUMBER.match(value):
        return f"{flag} expects a number, got {value!r}"
    if kind in ("human_readable_int", "human_readable_int_or_auto") and not (
            _HUMAN_INT.match(value) or (kind.endswith("auto") and value == "auto")):
        return f"{flag} expects an integer like 8192 or 8k, got {value!r}"
    return None


def _unknown_flag(flag: str, manifest: FlagManifest) -> str:
    if flag in DEAD_FLAGS:
        return f"{flag} does not exist in vLLM {manifest.version}: {DEAD_FLAGS[flag]}"
    longer = [f for f in manifest.long_flags() if f.startswith(flag)]
    if flag.startswith("--") and longer:
        return f"{flag} is an abbreviation (of {', '.join(longer[:3])}); spell flags in full"
    close = difflib.get_close_matches(flag, manifest.long_flags(), n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"{flag} is not a flag of vllm serve {manifest.version}{hint}"


def _is_flag(token: object) -> bool:
    return isinstance(token, str) and token.startswith("-") and not _NUMBER.match(token)


def _values(argv: Sequence[object], index: int, option: Option, inline: str | None) -> tuple[list[object], int]:
    """The values an option consumes from ``argv[index:]`` (after an inline ``=value``), and the next index."""
    values: list[object] = [] if inline is None else [inline]
    while index < len(argv) and not _is_flag(argv[index]) and (not values or option.nargs in ("+", "*")):
        values.append(argv[index])
        index += 1
    return values, index


def _option_problems(flag: str, option: Option, values: list[object], next_token: object) -> list[str]:
    if not option.takes_value:
        return [f"{flag} is a switch and takes no value"] if values else []
    if not values and option.nargs not in ("?", "*"):
        return [f"{flag} expects a value" + (f", got the flag {next_token}" if next_token is not None else "")]
    return [p for v in values if isinstance(v, str) and (p := _value_problem(option, flag, v))]


def _first_problems(first: object) -> list[str]:
    if first == "serve":
        return ["`serve` is repeated: the vllm/vllm-openai entrypoint is already `vllm serve`"]
    if _is_flag(first):
        return [f"the model must come first as a positional, not {first}"]
    return []


def check_argv(argv: Sequence[object], manifest: FlagManifest | None = None) -> list[str]:
    """Problems with an argv given to the image's ``vllm serve`` entrypoint (empty when it is valid).

    Tokens that are not strings (environment references resolved at run time) are accepted
    as values.  The first token must be the model, as a positional.
    """
    manifest = manifest or load_manifest()
    if not argv:
        return ["the model is missing: it must be the first argument"]
    problems = _first_problems(argv[0])
    seen: dict[str, str] = {}
    index = 0 if _is_flag(argv[0]) else 1
    while index < len(argv):
        token = argv[index]
        index += 1
        if not isinstance(token, str) or not _is_flag(token):
            problems.append(f"stray value {token!r}: it follows no flag that takes a value")
            continue
        flag, eq, inline = token.partition("=")
        option = manifest.option(flag)
        if option is None:
            problems.append(_unknown_flag(flag, manifest))
            _, index = _values(argv, index, Option(flags=(flag,), dest="", type=None, choices=None, nargs="*",
                                                   action=""), None)
            continue
        if option.dest in seen:
            other = seen[option.dest]
            problems.append(f"{flag} is given twice" + (f" (also as {other})" if other != flag else ""))
        seen[option.dest] = flag
        if option.takes_value:
            values, index = _values(argv, index, option, inline if eq else None)
        else:
            values = [inline] if eq else []
        problems += _option_problems(flag, option, values, argv[index] if index < len(argv) else None)
    return problems
