"""``plan.json``: the machine-readable plan, a documented contract (docs/plan-json.md)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from deployc.contract.backend import Emission
from deployc.planner.plan import Plan
from deployc.planner.types import PoolPlan
from deployc.render.image import emitted_image
from deployc.serialise import parallelism, rounded, to_data

PLAN_JSON_VERSION = 1


def _serving(pool: PoolPlan) -> dict[str, Any] | None:
    """The simulated service of a pool: percentiles, throughput, utilisation, verdict and cost."""
    if pool.serving is None or pool.verdict is None:
        return None
    r, v = pool.serving, pool.verdict
    out: dict[str, Any] = rounded(to_data(r))
    out["output_tokens_per_s_per_gpu"] = round(r.output_tokens_per_s / pool.layout.gpus_used, 4)
    out["overload_factor"] = None if r.overload_factor is None else round(r.overload_factor, 4)
    out["verdict"] = {
        "status": v.status, "summary": v.summary(r),
        "checks": [rounded({"metric": c.metric, "percentile": c.percentile, "target_ms": c.target_ms,
                            "simulated_ms": c.simulated_ms, "met": c.met}) for c in v.checks],
    }
    out["cost"] = None if pool.cost is None else rounded(to_data(pool.cost))
    return out


def _pool(pool: PoolPlan) -> dict[str, Any]:
    return {
        "name": pool.name, "share": pool.share, "parallelism": parallelism(pool),
        "memory": to_data(pool.memory), "performance": to_data(pool.performance),
        "knobs": to_data(pool.knobs), "serving": _serving(pool),
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
        backend["flags"] = to_data(list(emission.flags))
    decisions = list(plan.decisions) + (list(emission.decisions) if emission else [])
    pool = _pool(primary)
    return {
        "plan_json_version": PLAN_JSON_VERSION,
        "deployc_version": plan.deployc_version,
        "spec": {
            "file": plan.target.spec_file.replace("\\", "/").rsplit("/", 1)[-1],
            "sha256": hashlib.sha256(spec_text.encode()).hexdigest(),
            "resolved": to_data(plan.target.spec),
        },
        "target": to_data(plan.target),
        "memory": pool["memory"],
        "parallelism": pool["parallelism"],
        "performance": pool["performance"],
        "knobs": pool["knobs"],
        "serving": pool["serving"],
        "pools": [_pool(p) for p in plan.pools],
        "decisions": to_data(decisions),
        "diagnostics": to_data(list(plan.diagnostics)),
        "backend": backend,
    }


def plan_json_text(plan: Plan, spec_text: str, emission: Emission | None) -> str:
    """plan.json bytes-to-be: 2-space indent, keys in documented order, final newline."""
    return json.dumps(plan_document(plan, spec_text, emission), indent=2, ensure_ascii=False) + "\n"
