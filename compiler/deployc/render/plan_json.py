"""``plan.json``: the machine-readable plan, a documented contract (docs/plan-json.md)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from deployc.catalog import param_counts
from deployc.contract.backend import Emission
from deployc.planner.plan import Plan
from deployc.planner.types import MemoryPlan, Performance, PoolPlan, to_plain
from deployc.render.image import emitted_image
from deployc.spec.structure import unstructure_spec

PLAN_JSON_VERSION = 1


def _memory(m: MemoryPlan) -> dict[str, Any]:
    p = m.per_gpu
    return {
        "per_gpu": {
            "total_bytes": p.total_bytes, "usable_bytes": p.usable_bytes, "weights_bytes": p.weights_bytes,
            "kv_cache_bytes": p.kv_cache_bytes, "activation_bytes": p.activation_bytes,
            "cuda_graph_bytes": p.cuda_graph_bytes, "other_bytes": p.other_bytes, "free_bytes": p.free_bytes,
        },
        "kv_bytes_per_token": m.kv_bytes_per_token,
        "kv_bytes_per_token_model": m.kv_bytes_per_token_model,
        "kv_capacity_tokens": m.kv_capacity_tokens,
        "max_concurrency": {
            "at_max_context": m.max_concurrency_at_max_context,
            "at_typical_request": m.max_concurrency_at_typical_request,
        },
        "memory_fraction": m.memory_fraction,
        "memory_fraction_kind": m.memory_fraction_kind,
        "kv_block_size_tokens": m.kv_block_size_tokens,
        "fits": m.fits,
        "shortfall_bytes": m.shortfall_bytes,
        "backend": m.backend,
        "engine_version": m.engine_version,
        "assumptions": list(m.assumptions),
    }


def _performance(perf: Performance) -> dict[str, Any]:
    return {
        "ttft_ms": round(perf.ttft_ms, 3), "itl_ms": round(perf.itl_ms, 3),
        "tokens_per_s": round(perf.tokens_per_s, 1), "tokens_per_s_per_gpu": round(perf.tokens_per_s_per_gpu, 1),
        "bound": perf.bound, "bound_share": round(perf.bound_share, 4), "batch_size": round(perf.batch_size, 2),
        "step_breakdown": [q.to_json() for q in perf.step_breakdown],
        "assumptions": list(perf.assumptions),
    }


def _rounded(value: Any) -> Any:
    """Floats to 4 decimals, recursively (the simulation's figures are not exact to more)."""
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(v) for v in value]
    return value


def _serving(pool: PoolPlan) -> dict[str, Any] | None:
    """The simulated service of a pool: percentiles, throughput, utilisation, verdict and cost."""
    if pool.serving is None or pool.verdict is None:
        return None
    r, v = pool.serving, pool.verdict
    out = _rounded(to_plain(r))
    out["output_tokens_per_s_per_gpu"] = round(r.output_tokens_per_s / pool.layout.gpus_used, 4)
    out["overload_factor"] = None if r.overload_factor is None else round(r.overload_factor, 4)
    out["verdict"] = {
        "status": v.status, "summary": v.summary(r),
        "checks": [_rounded({"metric": c.metric, "percentile": c.percentile, "target_ms": c.target_ms,
                             "simulated_ms": c.simulated_ms, "met": c.met}) for c in v.checks],
    }
    out["cost"] = None if pool.cost is None else _rounded(to_plain(pool.cost))
    return dict(out)


def _pool(pool: PoolPlan) -> dict[str, Any]:
    return {
        "name": pool.name, "share": pool.share, "parallelism": pool.parallelism_json(),
        "memory": _memory(pool.memory), "performance": _performance(pool.performance),
        "knobs": to_plain(pool.knobs), "serving": _serving(pool),
    }


def _target(plan: Plan) -> dict[str, Any]:
    t = plan.target
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


def plan_document(plan: Plan, spec_text: str, emission: Emission | None) -> dict[str, Any]:
    """The plan.json content as plain data (top-level keys in the documented order)."""
    primary = plan.primary
    backend: dict[str, Any] = {
        "name": plan.backend.name, "engine": plan.backend.engine,
        "engine_version": plan.backend.engine_version,
        "image": emitted_image(plan, emission),
    }
    if emission is not None:
        backend["artifacts"] = sorted(a.path for a in emission.artifacts)
        backend["flags"] = [{"flag": f.flag, "value": f.value, "reason": f.reason, "decision": f.decision}
                            for f in emission.flags]
    decisions = list(plan.decisions) + (list(emission.decisions) if emission else [])
    return {
        "plan_json_version": PLAN_JSON_VERSION,
        "deployc_version": plan.deployc_version,
        "spec": {
            "file": plan.target.spec_file.replace("\\", "/").rsplit("/", 1)[-1],
            "sha256": hashlib.sha256(spec_text.encode()).hexdigest(),
            "resolved": unstructure_spec(plan.target.spec),
        },
        "target": _target(plan),
        "memory": _memory(primary.memory),
        "parallelism": primary.parallelism_json(),
        "performance": _performance(primary.performance),
        "knobs": to_plain(primary.knobs),
        "serving": _serving(primary),
        "pools": [_pool(p) for p in plan.pools],
        "decisions": [d.to_json() for d in decisions],
        "diagnostics": [d.to_json() for d in plan.diagnostics],
        "backend": backend,
    }


def plan_json_text(plan: Plan, spec_text: str, emission: Emission | None) -> str:
    """plan.json bytes-to-be: 2-space indent, keys in documented order, final newline."""
    return json.dumps(plan_document(plan, spec_text, emission), indent=2, ensure_ascii=False) + "\n"
