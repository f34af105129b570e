"""``deployc plan`` text output: the verdict, the memory bar, the numbers and one line per decision."""

from __future__ import annotations

from deployc.planner.plan import Plan
from deployc.render.bars import memory_bar
from deployc.render.units import count, gib, tokens


def plan_summary(plan: Plan) -> str:
    """A screenful: what runs where, whether it fits, how fast, and why."""
    t = plan.target
    lines = [f"{t.spec.name}: {t.model.name} on {t.gpus_total} × {t.gpu.name} ({t.intra_node_link.id}) "
             f"with {plan.backend.engine} {plan.backend.engine_version}"]
    for pool in plan.pools:
        m, perf, k = pool.memory, pool.performance, pool.knobs
        verdict = "fits" if m.fits else f"DOES NOT FIT (short by {gib(m.shortfall_bytes)} per GPU)"
        lines += [
            "",
            f"pool {pool.name}: {pool.layout.label()} on {pool.layout.gpus_used} GPUs, {k.weights_format} weights, "
            f"{k.kv_cache_dtype} KV cache: {verdict}",
            *("  " + line for line in memory_bar(m.per_gpu)),
            f"  KV: {m.kv_bytes_per_token:,} B/token per GPU, capacity {tokens(m.kv_capacity_tokens)} per replica; "
            f"max concurrency {m.max_concurrency_at_max_context:g} at {k.max_model_len:,} tokens, "
            f"{m.max_concurrency_at_typical_request:g} at the typical request",
            f"  predicted: TTFT {perf.ttft_ms:.0f} ms, ITL {perf.itl_ms:.1f} ms at batch {count(perf.batch_size)}, "
            f"{perf.tokens_per_s:,.0f} tok/s ({perf.tokens_per_s_per_gpu:,.0f} per GPU), {perf.bound}-bound",
        ]
    lines += ["", "decisions:"]
    lines += [f"  {d.id} = {d.value}: {d.reason}" for d in plan.decisions]
    if plan.diagnostics:
        lines += ["", "diagnostics:"] + [f"  {d.severity.value} {d.rule}: {d.message}" for d in plan.diagnostics]
    return "\n".join(lines)
