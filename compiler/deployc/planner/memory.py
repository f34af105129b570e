"""Memory per GPU for one layout: the engine's budget, weights, overheads, and the KV cache left.

Pure functions.  Weights and KV-cache bytes come from :mod:`deployc.planner.weights` and
:mod:`deployc.planner.kv`; the engine's own overheads and the meaning of its memory
fraction come from the backend plugin (:class:`~deployc.contract.backend.RuntimeOverheads`),
because they differ per engine and per version.
"""

from __future__ import annotations

import math

from attrs import frozen

from deployc.catalog import GPU, ModelArch
from deployc.contract.backend import PpLayerSplit, RuntimeOverheads
from deployc.planner.kv import (
    kv_bytes_for_sequence,
    kv_bytes_per_token_model,
    kv_bytes_per_token_per_gpu,
    kv_capacity_tokens,
)
from deployc.planner.types import Layout, MemoryBreakdown, MemoryPlan
from deployc.units import GIB

# Room left for allocator fragmentation and the CUDA context beyond what the engine counts.
SAFETY_MARGIN_BYTES = GIB // 2


@frozen(kw_only=True)
class MemoryInputs:
    """Everything one memory estimate depends on."""

    model: ModelArch
    gpu: GPU
    layout: Layout
    weights_bytes_per_gpu: int
    kv_dtype_bytes: float
    reserved_bytes: int  # held by other processes on each GPU
    overheads: RuntimeOverheads
    max_model_len: int
    typical_request_tokens: int
    backend: str
    memory_fraction: float | None = None  # pinned by the spec ([plan].memory_fraction): used as given
    pp_split: PpLayerSplit = "extra_before_last"  # the backend's pipeline split (which layers each stage holds)


def _usable_and_fraction(inp: MemoryInputs) -> tuple[int, float]:
    """Bytes the engine may use for weights + activations + KV (+ graphs when counted), and the fraction."""
    total = inp.gpu.memory_bytes
    ov = inp.overheads
    graphs_outside = 0 if ov.cuda_graph_in_budget else ov.cuda_graph_bytes
    available = total - inp.reserved_bytes - graphs_outside - SAFETY_MARGIN_BYTES
    pin = inp.memory_fraction
    if ov.memory_fraction_kind == "total":
        # vLLM: the engine claims fraction × TOTAL memory and refuses to start if that much is not free.
        fraction = pin if pin is not None else min(ov.default_memory_fraction, available / total)
        return int(total * fraction), fraction
    if ov.memory_fraction_kind == "weights_and_kv":
        # SGLang: mem_fraction_static × total holds weights and the KV pool; the rest must hold activations,
        # CUDA graphs and non-torch memory.
        room = available - ov.activation_peak_bytes - ov.non_torch_bytes
        fraction = pin if pin is not None else min(ov.default_memory_fraction, room / total)
        return int(total * fraction) + ov.activation_peak_bytes + ov.non_torch_bytes, fraction
    # TensorRT-LLM: KV gets fraction × what is free after weights and runtime buffers were allocated.
    free_after_load = available - inp.weights_bytes_per_gpu - ov.activation_peak_bytes - ov.non_torch_bytes
    fraction = pin if pin is not None else ov.default_memory_fraction
    usable = inp.weights_bytes_per_gpu + ov.activation_peak_bytes + ov.non_torch_bytes + int(
        max(free_after_load, 0) * fraction)
    return usable, fraction


def plan_memory(inp: MemoryInputs) -> MemoryPlan:
    """The per-GPU breakdown, KV capacity, concurrency and verdict for one layout."""
    ov = inp.overheads
    usable, fraction = _usable_and_fraction(inp)
    in_budget_overheads = ov.activation_peak_bytes + ov.non_torch_bytes + (
        ov.cuda_graph_bytes if ov.cuda_graph_in_budget else 0)
    kv_bytes = usable - inp.weights_bytes_per_gpu - in_budget_overheads
    tp, pp = inp.layout.tp, inp.layout.pp
    split = inp.pp_split
    per_token = kv_bytes_per_token_per_gpu(inp.model, inp.kv_dtype_bytes, tp=tp, pp=pp, split=split)
    capacity = kv_capacity_tokens(inp.model, max(kv_bytes, 0), inp.kv_dtype_bytes, tp=tp, pp=pp,
                                  block_size_tokens=ov.kv_block_size_tokens, split=split)
    one_max = kv_bytes_for_sequence(inp.model, inp.max_model_len, inp.kv_dtype_bytes, tp=tp, pp=pp,
                                    block_size_tokens=ov.kv_block_size_tokens, split=split)
    one_typical = kv_bytes_for_sequence(inp.model, inp.typical_request_tokens, inp.kv_dtype_bytes, tp=tp, pp=pp,
                                        block_size_tokens=ov.kv_block_size_tokens, split=split)
    kv_used = max(kv_bytes, 0)
    fits = kv_bytes >= one_max
    shortfall = 0 if fits else one_max - kv_bytes
    breakdown = MemoryBreakdown(
        total_bytes=inp.gpu.memory_bytes,
        usable_bytes=usable,
        weights_bytes=inp.weights_bytes_per_gpu,
        kv_cache_bytes=kv_used,
        activation_bytes=ov.activation_peak_bytes,
        cuda_graph_bytes=ov.cuda_graph_bytes,
        other_bytes=ov.non_torch_bytes + inp.reserved_bytes,
    )
    assumptions = (
        f"memory fraction {fraction:.3f} of {_fraction_of(ov)} ({inp.backend} {ov.engine_version})",
        f"{SAFETY_MARGIN_BYTES / GIB:g} GiB kept free for fragmentation and the CUDA context",
        f"KV cache in blocks of {ov.kv_block_size_tokens} tokens",
        *ov.assumptions,
    )
    return MemoryPlan(
        per_gpu=breakdown,
        kv_bytes_per_token=per_token,
        kv_bytes_per_token_model=kv_bytes_per_token_model(inp.model, inp.kv_dtype_bytes),
        kv_capacity_tokens=capacity,
        max_concurrency_at_max_context=_ratio(kv_used, one_max),
        max_concurrency_at_typical_request=_ratio(kv_used, one_typical),
        memory_fraction=round(fraction, 4),
        memory_fraction_kind=ov.memory_fraction_kind,
        kv_block_size_tokens=ov.kv_block_size_tokens,
        backend=inp.backend,
        engine_version=ov.engine_version,
        fits=fits,
        shortfall_bytes=max(shortfall, 0),
        assumptions=assumptions,
    )


def _ratio(kv_bytes: int, per_sequence: int) -> float:
    return 0.0 if per_sequence <= 0 or kv_bytes <= 0 else math.floor(kv_bytes / per_sequence * 100) / 100


def _fraction_of(ov: RuntimeOverheads) -> str:
    return {
        "total": "total GPU memory",
        "weights_and_kv": "total GPU memory, for weights + KV cache",
        "free_after_load": "memory free after the engine loaded",
    }[ov.memory_fraction_kind]
