"""Reading a checkpoint's ``quantization_config`` into a :class:`~deployc.catalog.arch.CheckpointQuant`.

Layouts (keys as the quantizers write them): FP8 ``{"quant_method": "fp8", "fmt": "e4m3",
"weight_block_size": [128, 128]}``; AutoAWQ ``{"quant_method": "awq", "bits": 4, "group_size": 128,
"zero_point": true}``; GPTQ ``{"quant_method": "gptq", "bits": 4, "group_size": 128, "sym": true,
"lm_head": false}``; compressed-tensors ``{"config_groups": {...: {"weights": {"num_bits", "type",
"strategy", "group_size", "block_structure", "symmetric"}}}, "ignore": [...]}``; gpt-oss
``{"quant_method": "mxfp4", "modules_to_not_convert": [...]}``; NVIDIA ModelOpt ``{"quant_method":
"modelopt", "quant_algo": "FP8" | "NVFP4"}``; bitsandbytes ``load_in_4bit`` / ``load_in_8bit``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deployc.catalog.arch import CheckpointQuant


class UnsupportedQuantization(ValueError):
    """A quantization_config deployc cannot size; the message names the key and value."""


def _strings(raw: Any) -> tuple[str, ...]:
    return tuple(str(x) for x in raw) if isinstance(raw, list | tuple) else ()


def _fp8(q: Mapping[str, Any]) -> CheckpointQuant:
    block = q.get("weight_block_size")
    scheme = f"{q.get('fmt', 'e4m3')} {q.get('activation_scheme', 'dynamic')}"
    return CheckpointQuant(method="fp8", bits=8, weight_type="float", block_size=tuple(int(b) for b in block)
                           if block else None, strategy="block" if block else "tensor", scheme=scheme,
                           not_converted=_strings(q.get("modules_to_not_convert") or q.get("ignored_layers")))


def _awq(q: Mapping[str, Any]) -> CheckpointQuant:
    return CheckpointQuant(method="awq", bits=int(q.get("bits", q.get("w_bit", 4))),
                           group_size=int(q.get("group_size", q.get("q_group_size", 128))),
                           zero_point=bool(q.get("zero_point", True)), strategy="group",
                           scheme=f"awq {q.get('version', 'gemm')}",
                           not_converted=_strings(q.get("modules_to_not_convert")))


def _gptq(q: Mapping[str, Any]) -> CheckpointQuant:
    group = int(q.get("group_size", 128))
    return CheckpointQuant(method="gptq", bits=int(q.get("bits", 4)), group_size=group if group > 0 else None,
                           zero_point=not bool(q.get("sym", True)),
                           strategy="group" if group > 0 else "channel",
                           scheme=f"gptq desc_act={bool(q.get('desc_act', False))}",
                           lm_head_quantized=bool(q.get("lm_head", False)))


def _compressed_tensors(q: Mapping[str, Any]) -> CheckpointQuant:
    groups = q.get("config_groups") or {}
    weights: list[Mapping[str, Any]] = [g["weights"] for g in groups.values()
                                         if isinstance(g, Mapping) and isinstance(g.get("weights"), Mapping)]
    if not weights:
        raise UnsupportedQuantization("quantization_config.config_groups (no weights scheme found)")
    if len({repr(sorted(w.items())) for w in weights}) > 1:
        raise UnsupportedQuantization("quantization_config.config_groups (mixed weight schemes are not "
                                      "planned)")
    w = weights[0]
    block = w.get("block_structure")
    ignore = _strings(q.get("ignore"))
    return CheckpointQuant(method="compressed-tensors", bits=int(w.get("num_bits", 8)),
                           group_size=int(w["group_size"]) if w.get("group_size") else None,
                           block_size=tuple(int(b) for b in block) if block else None,
                           zero_point=not bool(w.get("symmetric", True)),
                           weight_type="float" if w.get("type") == "float" else "int",
                           strategy=str(w.get("strategy", "tensor")), scheme=str(q.get("format", "")),
                           not_converted=ignore)


def _modelopt(q: Mapping[str, Any]) -> CheckpointQuant:
    algo = str(q.get("quant_algo") or q.get("quantization", {}).get("quant_algo", "")).upper()
    excluded = _strings(q.get("exclude_modules") or q.get("quantization", {}).get("exclude_modules"))
    if algo == "FP8":
        return CheckpointQuant(method="fp8", bits=8, weight_type="float", strategy="tensor",
                               scheme="modelopt FP8", not_converted=excluded)
    if algo == "NVFP4":
        return CheckpointQuant(method="nvfp4", bits=4, weight_type="float", group_size=16, strategy="group",
                               scheme="modelopt NVFP4", not_converted=excluded)
    raise UnsupportedQuantization(f"quantization_config.quant_algo {algo!r} (modelopt: FP8 and NVFP4 are "
                                  "planned)")


def _bitsandbytes(q: Mapping[str, Any]) -> CheckpointQuant:
    if q.get("load_in_4bit"):
        return CheckpointQuant(method="bitsandbytes", bits=4, group_size=64, strategy="group",
                               scheme=f"{q.get('bnb_4bit_quant_type', 'fp4')} double_quant="
                                      f"{bool(q.get('bnb_4bit_use_double_quant', False))}",
                               not_converted=_strings(q.get("llm_int8_skip_modules")))
    return CheckpointQuant(method="bitsandbytes", bits=8, strategy="channel", scheme="llm.int8",
                           not_converted=_strings(q.get("llm_int8_skip_modules")))


_PARSERS = {"fp8": _fp8, "awq": _awq, "gptq": _gptq, "compressed-tensors": _compressed_tensors,
            "modelopt": _modelopt, "bitsandbytes": _bitsandbytes}


def parse_quantization_config(raw: Any) -> CheckpointQuant | None:
    """The checkpoint's quantization, or None for an unquantized checkpoint.

    Raises :class:`UnsupportedQuantization` for a method or scheme deployc cannot size.
    """
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise UnsupportedQuantization(f"quantization_config (not an object: {raw!r})")
    method = str(raw.get("quant_method", "")).lower()
    if method == "mxfp4":
        return CheckpointQuant(method="mxfp4", bits=4, weight_type="float", group_size=32, strategy="group",
                               scheme="mxfp4 (e2m1, e8m0 scale per 32)",
                               not_converted=_strings(raw.get("modules_to_not_convert")))
    parser = _PARSERS.get(method)
    if parser is None:
        planned = ", ".join(sorted([*_PARSERS, "mxfp4"]))
        raise UnsupportedQuantization(f"quantization_config.quant_method {method!r} (planned: {planned})")
    try:
        return parser(raw)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        if isinstance(exc, UnsupportedQuantization):
            raise
        raise UnsupportedQuantization(f"quantization_config for {method} is malformed ({exc})") from exc
