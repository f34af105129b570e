"""``deployc plan`` text output: the verdict, the memory bar, the numbers and one line per decision."""

from __future__ import annotations

from deployc.planner.plan import Plan
from deployc.planner.types import PoolPlan
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
            f"  decode step: {perf.decode_step_ms:.1f} ms at batch {count(perf.batch_size)}, {perf.bound}-bound "
            f"({perf.bound_share:.0%} of the step); analytic ITL {perf.itl_ms:.1f} ms with arriving prompts' "
            "chunks in the steps",
            *serving_lines(pool),
        ]
    lines += ["", "decisions:"]
    lines += [f"  {d.id} = {d.value}: {d.reason}" for d in plan.decisions]
    if plan.diagnostics:
        lines += ["", "diagnostics:"]
        for d in plan.diagnostics:  # the hint holds the ranked, re-simulated fixes of an SLO miss
            lines += [f"  {d.severity.value} {d.rule}: {d.message}", *([f"    hint: {d.hint}"] if d.hint else [])]
    return "\n".join(lines)


def serving_lines(pool: PoolPlan) -> list[str]:
    """The simulated service: verdict, latency percentiles, throughput and cost (the figures EXPLAIN.md gives)."""
    r, verdict = pool.serving, pool.verdict
    if r is None or verdict is None:
        return []
    load = (f"{r.clients_per_replica} clients per replica" if r.mode == "closed" else
            f"{r.offered_requests_per_s:g} requests/s (capacity {r.capacity_requests_per_s:.2f}/s)")
    lines = [
        f"  simulated ({r.requests_simulated:,} requests per replica, {load}):",
        f"    TTFT p50 {r.ttft_ms.p50:,.0f} ms, p90 {r.ttft_ms.p90:,.0f} ms, p99 {r.ttft_ms.p99:,.0f} ms; "
        f"ITL p50 {r.itl_ms.p50:.1f} ms, p99 {r.itl_ms.p99:.1f} ms; TPOT p50 {r.tpot_ms.p50:.1f} ms, "
        f"p99 {r.tpot_ms.p99:.1f} ms",
        f"    queue wait p50 {r.queue_wait_ms.p50:,.0f} ms, p99 {r.queue_wait_ms.p99:,.0f} ms; "
        f"{r.output_tokens_per_s:,.0f} output tok/s ({r.output_tokens_per_s / pool.layout.gpus_used:,.0f} per GPU), "
        f"{r.requests_per_s:.2f} req/s; KV cache {r.kv_utilisation_mean:.0%} used on average, "
        f"{r.preemptions} preemptions",
    ]
    if pool.cost is not None:
        c = pool.cost
        per_token = (f", ${c.usd_per_million_output_tokens:.3f} per 1M output tokens"
                     if c.usd_per_million_output_tokens is not None else "")
        lines.append(f"    cost: ${c.usd_per_hour:,.2f}/hour for {c.gpus} GPUs{per_token}")
    lines.append(f"  verdict: {verdict.summary(r)}")
    return lines
