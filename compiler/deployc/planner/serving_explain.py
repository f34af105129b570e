"""The serving simulation's figures as a Decision, and its verdict as diagnostics with fixes."""

from __future__ import annotations

from deployc.diagnostics import Diagnostic, Severity
from deployc.planner.decisions import Decision, Quantity
from deployc.planner.evaluate import Candidate
from deployc.planner.load import Served
from deployc.planner.serving.result import ServingResult
from deployc.planner.types import Layout
from deployc.planner.workload import WorkloadShape


def serving_numbers(r: ServingResult, gpus: int) -> tuple[Quantity, ...]:
    """Every figure the simulation reports, with units (plan.json, EXPLAIN.md and `plan` print these)."""
    numbers = [
        Quantity("TTFT p50", round(r.ttft_ms.p50, 1), "ms"), Quantity("TTFT p90", round(r.ttft_ms.p90, 1), "ms"),
        Quantity("TTFT p99", round(r.ttft_ms.p99, 1), "ms"),
        Quantity("ITL p50", round(r.itl_ms.p50, 2), "ms"), Quantity("ITL p90", round(r.itl_ms.p90, 2), "ms"),
        Quantity("ITL p99", round(r.itl_ms.p99, 2), "ms"),
        Quantity("TPOT p50", round(r.tpot_ms.p50, 2), "ms"), Quantity("TPOT p99", round(r.tpot_ms.p99, 2), "ms"),
        Quantity("end-to-end p50", round(r.e2e_ms.p50, 1), "ms"),
        Quantity("end-to-end p99", round(r.e2e_ms.p99, 1), "ms"),
        Quantity("queue wait p50", round(r.queue_wait_ms.p50, 1), "ms"),
        Quantity("queue wait p99", round(r.queue_wait_ms.p99, 1), "ms"),
        Quantity("output tokens/s", round(r.output_tokens_per_s, 1), "tokens/s"),
        Quantity("total tokens/s", round(r.total_tokens_per_s, 1), "tokens/s"),
        Quantity("output tokens/s per GPU", round(r.output_tokens_per_s / max(gpus, 1), 1), "tokens/s"),
        Quantity("output tokens/s per user", round(1e3 / r.tpot_ms.mean, 1) if r.tpot_ms.mean else 0.0,
                 "tokens/s"),
        Quantity("requests/s", round(r.requests_per_s, 3), "requests/s"),
        Quantity("requests running per replica (mean)", round(r.mean_running_per_replica, 1), ""),
        Quantity("KV cache in use (mean)", round(r.kv_utilisation_mean * 100, 1), "%"),
        Quantity("KV cache in use (peak)", round(r.kv_utilisation_peak * 100, 1), "%"),
        Quantity("preemptions", r.preemptions, ""),
    ]
    if r.offered_requests_per_s is not None:
        numbers.append(Quantity("offered requests/s", r.offered_requests_per_s, "requests/s"))
    if r.capacity_requests_per_s is not None:
        numbers.append(Quantity("capacity (saturated)", round(r.capacity_requests_per_s, 3), "requests/s"))
    if r.rejected_requests:
        numbers.append(Quantity("requests the engine refuses (of those simulated)", r.rejected_requests, ""))
        numbers.append(Quantity("of those, prompt + max_tokens above max_model_len", r.rejected_over_context, ""))
    return tuple(numbers)


def serving_decision(served: Served, layout: Layout, prefix: str) -> Decision:
    """The pool's verdict with the simulated figures behind it."""
    r, verdict = served.result, served.verdict
    load = (f"{r.clients_per_replica} clients per replica (closed loop)" if r.mode == "closed" else
            f"{r.offered_requests_per_s:g} requests/s (Poisson)")
    reason = (f"{verdict.summary(r)}. Simulated {r.requests_simulated:,} requests per replica ({load}; prompts "
              f"{r.prompt_lengths}; outputs {r.output_lengths}) through the engine's scheduler with the plan's knobs")
    return Decision(id=f"{prefix}serving", value=verdict.status, rule="DPD401", reason=reason,
                    numbers=serving_numbers(r, layout.gpus_used))


def serving_diagnostics(served: Served, shape: WorkloadShape, c: Candidate, prefix: str) -> list[Diagnostic]:
    """Errors for a pool that does not serve its traffic; warnings for queueing and idle GPUs."""
    r, verdict = served.result, served.verdict
    spec_file = c.target.spec_file
    pool = f"pool {shape.name}: " if prefix else ""
    out: list[Diagnostic] = []
    if verdict.status == "overloaded":
        out.append(Diagnostic(
            rule="DPC320", file=spec_file, key_path="workload.request_rate_per_s",
            message=f"{pool}{verdict.summary(r)}",
            hint=f"about {verdict.overload_factor:.1f}× the GPUs (replicas), FP8 weights, shorter outputs, or a rate "
                 f"below {r.capacity_requests_per_s:.2f} requests/s"))
    over, too_big = r.rejected_over_context, r.rejected_requests - r.rejected_over_context
    if over:
        out.append(Diagnostic(
            rule="DPC325", file=spec_file, key_path="workload.prompt_tokens",
            message=f"{pool}the engine refuses {over:,} of {r.requests_simulated:,} simulated requests: their prompt "
                    f"+ max_tokens is above max_model_len ({served.knobs.context.max_model_len:,} tokens)",
            hint="a model with a longer context, shorter prompts, or a smaller max_tokens"))
    if too_big:
        out.append(Diagnostic(
            rule="DPC326", file=spec_file, key_path="workload.prompt_tokens",
            message=f"{pool}the engine refuses {too_big:,} of {r.requests_simulated:,} simulated requests: each is "
                    "longer than the whole KV cache of a replica",
            hint="more GPUs or FP8 KV cache, so that one request fits the cache"))
    for miss in verdict.misses():
        key = {"TTFT": "ttft_ms", "ITL": "itl_ms", "TPOT": "tpot_ms"}[miss.metric]
        out.append(Diagnostic(
            rule="DPC304", file=spec_file, key_path=f"slo.{key}.{miss.percentile}",
            message=f"{pool}simulated {miss.sentence()}",
            hint="more GPUs, FP8 weights, fewer users, shorter prompts, or a relaxed target"))
    clients = r.clients_per_replica
    seqs = int(served.knobs.max_num_seqs.value)
    if clients is not None and clients > seqs:
        out.append(Diagnostic(
            rule="DPC322", severity=Severity.WARNING, file=spec_file, key_path="workload.concurrency",
            message=f"{pool}{clients} clients per replica but {seqs} run at once: the rest wait, simulated queue wait "
                    f"p50 {r.queue_wait_ms.p50:,.0f} ms, p99 {r.queue_wait_ms.p99:,.0f} ms",
            hint="add GPUs (replicas), or a smaller model or FP8 to fit more requests in the KV cache"))
    return out
