"""The typed values of a plan's precision knobs (kept free of imports: backends load it with the plan)."""

from __future__ import annotations

from typing import Literal, get_args

ActivationDtype = Literal["bfloat16", "float16"]
KvCacheDtype = Literal["bfloat16", "float16", "fp8"]
# The weight formats deployc plans: the spec's (model.quantization) and those a checkpoint may already be in.
PlannedFormat = Literal["bf16", "fp16", "fp8", "int8", "awq", "gptq", "mxfp4", "nvfp4", "bitsandbytes"]


def planned_format(name: str) -> PlannedFormat:
    """``name`` as a planned weight format (ValueError when deployc plans no such format)."""
    for known in get_args(PlannedFormat):
        if known == name:
            return known  # type: ignore[no-any-return]
    raise ValueError(f"no weight format named {name!r}")
