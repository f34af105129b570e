"""The one way deployc turns its values into JSON data: a cattrs converter with the plan.json shapes.

Values whose plain attrs layout is already the documented one (decisions, knobs, costs, flag
reasons, the serving result) are unstructured field by field; the others have a hook here giving
the documented keys and order (docs/plan-json.md): diagnostics, memory, performance, the target.
Floats the simulation computes are rounded where plan.json documents it, so rebuilds are
byte-identical.  ``plan.json`` (:mod:`deployc.render.plan_json`), ``--format json`` and ``deployc size
--format json`` (:mod:`deployc.sizing.report`) use it.
"""

from __future__ import annotations

import enum
import functools
import math
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import cattrs

from deployc.catalog import param_counts
from deployc.converter import Converter
from deployc.diagnostics import Diagnostic
from deployc.planner.types import MemoryBreakdown, MemoryPlan, Performance, PoolPlan
from deployc.spec.model import Spec
from deployc.spec.structure import unstructure_spec
from deployc.target import Target

if TYPE_CHECKING:
    from deployc.sizing.deployment import Deployment as SizedDeployment

# plan.json's key order for a diagnostic (the message last but the hint, as people read it)
DIAGNOSTIC_KEYS = ("rule", "severity", "file", "key_path", "line", "column", "value", "message", "hint")
MEMORY_KEYS = ("total_bytes", "usable_bytes", "weights_bytes", "kv_cache_bytes", "activation_bytes",
               "cuda_graph_bytes", "other_bytes", "free_bytes")
DECIMALS = 4  # the simulation's figures are not exact to more
SIZE_KEYS = ("gpus_per_node", "nodes", "gpus")


def rounded(value: Any) -> Any:
    """Floats to DECIMALS places, recursively (lists for tuples)."""
    if isinstance(value, float):
        return round(value, DECIMALS)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(v) for v in value]
    return value


def _keys(converter: cattrs.Converter, keys: tuple[str, ...]) -> Callable[[Any], dict[str, Any]]:
    """A hook giving the named attributes (properties too) in this order."""
    return lambda obj: {k: converter.unstructure(getattr(obj, k)) for k in keys}


def _memory(converter: cattrs.Converter, m: MemoryPlan) -> dict[str, Any]:
    return {
        "per_gpu": converter.unstructure(m.per_gpu),
        "kv_bytes_per_token": m.kv_bytes_per_token,
        "kv_bytes_per_token_model": m.kv_bytes_per_token_model,
        "kv_capacity_tokens": m.kv_capacity_tokens,
        "max_concurrency": {"at_max_context": m.max_concurrency_at_max_context,
                            "at_typical_request": m.max_concurrency_at_typical_request},
        "memory_fraction": m.memory_fraction,
        "memory_fraction_kind": m.memory_fraction_kind,
        "kv_block_size_tokens": m.kv_block_size_tokens,
        "fits": m.fits,
        "shortfall_bytes": m.shortfall_bytes,
        "backend": m.backend,
        "engine_version": m.engine_version,
        "assumptions": list(m.assumptions),
    }


def _performance(converter: cattrs.Converter, perf: Performance) -> dict[str, Any]:
    return {
        "ttft_ms": round(perf.ttft_ms, 3), "itl_ms": round(perf.itl_ms, 3),
        "tokens_per_s": round(perf.tokens_per_s, 1), "tokens_per_s_per_gpu": round(perf.tokens_per_s_per_gpu, 1),
        "bound": perf.bound, "bound_share": round(perf.bound_share, 4), "batch_size": round(perf.batch_size, 2),
        "decode_step_ms": round(perf.decode_step_ms, 3),
        "step_breakdown": [converter.unstructure(q) for q in perf.step_breakdown],
        "assumptions": list(perf.assumptions),
    }


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _sized(d: SizedDeployment) -> dict[str, Any]:
    """One ``deployc size --format json`` deployment: its figures (the plan itself is left out)."""
    return {
        "gpu": d.gpu, "gpus": d.size.gpus, "gpus_per_node": d.size.gpus_per_node,
        "nodes": d.size.nodes, "status": d.status, "summary": d.summary,
        "spec_backend": d.variant.backend, "spec_quantization": d.variant.quantization,
        "backend": d.backend, "layout": d.layout, "weights_format": d.weights_format,
        "kv_cache_dtype": d.kv_cache_dtype, "usd_per_hour": _round(d.usd_per_hour, 2),
        "usd_per_million_output_tokens": _round(d.usd_per_million_output_tokens, 3),
        "price_source": d.price_source, "output_tokens_per_s": _round(d.output_tokens_per_s, 1),
        "output_tokens_per_s_per_gpu": _round(d.tokens_per_s_per_gpu, 1),
        "output_tokens_per_s_per_user": _round(d.tokens_per_s_per_user, 2),
        "ttft_p99_ms": _round(d.ttft_p99_ms, 1), "itl_p99_ms": _round(d.itl_p99_ms, 2),
        # Infinite when the engine refuses requests (no latency makes up for them): JSON has no infinity, null.
        "miss_ratio": None if d.miss_ratio is not None and math.isinf(d.miss_ratio) else _round(d.miss_ratio, 3),
        "screened": d.screened,
        "slo_checks": [{"metric": m, "percentile": p, "target_ms": t, "simulated_ms": _round(v, 2)}
                       for m, p, t, v in d.slo_checks],
    }


def _target(t: Target) -> dict[str, Any]:
    counts = param_counts(t.model)
    return {
        "model": {
            "name": t.model.name, "family": t.model.family, "params_total": counts.total,
            "params_active": counts.active, "num_layers": t.model.num_layers,
            "num_attention_heads": t.model.num_attention_heads, "num_kv_heads": t.model.num_kv_heads,
            "head_dim": t.model.head_dim, "max_position_embeddings": t.model.max_position_embeddings,
            "source": t.model.source,
        },
        "gpu": {
            "name": t.gpu.name, "memory_bytes": t.gpu.memory_bytes, "arch": t.gpu.arch,
            "compute_capability": ".".join(map(str, t.gpu.compute_capability)) if t.gpu.compute_capability else None,
        },
        "gpus_per_node": t.spec.hardware.gpus_per_node,
        "nodes": t.spec.hardware.nodes,
        "interconnect": t.intra_node_link.id,
        "network": t.network.id if t.network else None,
        "reserved_memory_bytes": t.reserved_memory_bytes,
    }


def _loaded_class(module: str, name: str) -> Callable[[Any], bool]:
    """Whether a type is ``module.name``, told without importing the module: plan.json and ``--format json``
    do not need ``deployc size``'s search (a value of that type exists only once its module is loaded)."""
    return lambda cls: cls is getattr(sys.modules.get(module), name, None)


@functools.cache
def converter() -> cattrs.Converter:
    """The converter, with the documented shapes registered."""
    c = Converter()
    c.register_unstructure_hook(enum.Enum, lambda e: e.value)
    c.register_unstructure_hook(Diagnostic, _keys(c, DIAGNOSTIC_KEYS))
    c.register_unstructure_hook(MemoryBreakdown, _keys(c, MEMORY_KEYS))
    c.register_unstructure_hook(MemoryPlan, functools.partial(_memory, c))
    c.register_unstructure_hook(Performance, functools.partial(_performance, c))
    c.register_unstructure_hook(Target, _target)
    c.register_unstructure_hook(Spec, unstructure_spec)  # the lock file's form: defaults filled, no None
    # Predicate hooks, tried before cattrs' own attrs hook (neither class derives from a class registered above).
    c.register_unstructure_hook_func(_loaded_class("deployc.sizing.deployment", "Deployment"), _sized)
    c.register_unstructure_hook_func(_loaded_class("deployc.sizing.space", "Size"), _keys(c, SIZE_KEYS))
    return c


def to_data(value: Any) -> Any:
    """``value`` as JSON data (dicts, lists, strings, numbers, None), in the documented shape."""
    return converter().unstructure(value)


def parallelism(pool: PoolPlan) -> dict[str, Any]:
    """``plan.json`` ``parallelism`` section of a pool: its layout, replicas and layer split."""
    layout = pool.layout
    return {"tp": layout.tp, "pp": layout.pp, "dp": layout.dp, "ep": layout.ep, "gpus_used": layout.gpus_used,
            "replicas": layout.dp, "pp_layer_split": list(pool.pp_layer_split)}
