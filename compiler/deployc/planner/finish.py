"""Turning the chosen layout into a pool plan: serving knobs, re-estimated performance, decisions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from attrs import evolve

from deployc.diagnostics import Diagnostic, Severity
from deployc.planner import knobs as rules
from deployc.planner.collectives import allreduce_model
from deployc.planner.decisions import Alternative, Decision, Quantity
from deployc.planner.evaluate import Evaluated, evaluate_layout, perf_inputs
from deployc.planner.formats import weight_format
from deployc.planner.parallel import pp_layer_split
from deployc.planner.perf import decode_step_time_s, estimate_performance, prefill_time_s
from deployc.planner.pins import pin_context, pinned
from deployc.planner.precision import explain_weights
from deployc.planner.thermal import power_limit_decision
from deployc.planner.types import Knobs, Performance, PoolPlan
from deployc.planner.weights import weights_per_gpu
from deployc.spec.model import Spec

if TYPE_CHECKING:
    from deployc.planner.planner import Search
    from deployc.plugins import PluginRegistry

GIB = 1 << 30
MAX_LOSERS_SHOWN = 6
GOAL_ORDER = {"latency": "lowest ITL", "throughput": "most tokens/s", "cost": "most tokens/s per GPU"}


def _itl_batch_limit(chosen: Evaluated, search: Search, itl_target_ms: float | None, context: float) -> int | None:
    """The largest batch whose plain decode step stays under the ITL target (binary search)."""
    if itl_target_ms is None:
        return None
    c = search.candidate
    inputs = perf_inputs(c, chosen.evaluation.layout, chosen.weights, chosen.memory.kv_bytes_per_token, 1)
    lo, hi = 1, max(int(chosen.memory.max_concurrency_at_typical_request), 1)
    if decode_step_time_s(inputs, lo, context)[0] * 1e3 > itl_target_ms:
        return 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if decode_step_time_s(inputs, mid, context)[0] * 1e3 <= itl_target_ms:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _parallelism_decision(search: Search, chosen: Evaluated, prefix: str) -> Decision:
    layout = chosen.evaluation.layout
    perf = chosen.performance
    numbers = [Quantity("GPUs used", layout.gpus_used, ""),
               Quantity("weights per GPU", round(chosen.weights.total_bytes / GIB, 3), "GiB"),
               Quantity("KV capacity per replica", chosen.memory.kv_capacity_tokens, "tokens")]
    if layout.tp > 1:
        target = search.candidate.target
        model = allreduce_model(target.gpu, target.intra_node_link, layout.tp, cuda_graphs=True)
        numbers += [Quantity(f"TP{layout.tp} all-reduce bus bandwidth ({model.algorithm})",
                             round(model.bus_bandwidth_bytes_per_s / 1e9, 1), "GB/s"),
                    Quantity("TP all-reduce latency", round(model.latency_s * 1e6, 1), "µs")]
    if perf is not None:
        numbers += [Quantity("predicted ITL", round(perf.itl_ms, 2), "ms"),
                    Quantity("predicted TTFT", round(perf.ttft_ms, 1), "ms"),
                    Quantity("predicted output tokens/s", round(perf.tokens_per_s, 1), "tokens/s")]
    invalid = [Alternative(k.layout.label(), "; ".join(k.reasons)) for k in search.result.rejected]
    goal = search.candidate.target.spec.slo.goal
    return Decision(
        id=f"{prefix}parallelism", value=layout.label(), rule="DPC302",
        reason=(f"best of {len(search.evaluated)} valid layouts for the {goal} goal (fits, then meets the SLO, "
                f"then {GOAL_ORDER[goal]})"),
        numbers=tuple(numbers),
        rejected=(*search.result.losers[:MAX_LOSERS_SHOWN], *invalid[:MAX_LOSERS_SHOWN]),
    )


def _memory_decision(chosen: Evaluated, prefix: str) -> Decision:
    m = chosen.memory
    kind = {"total": "of the GPU's total memory (weights, activations and KV cache must fit inside it)",
            "weights_and_kv": "of the GPU's total memory for weights and the KV pool",
            "free_after_load": "of the memory free after the engine loaded, for the KV cache"}[m.memory_fraction_kind]
    note = chosen.overheads.memory_fraction_note or "memory other processes hold is subtracted first"
    return Decision(id=f"{prefix}memory_fraction", value=m.memory_fraction, rule="DPC207",
                    reason=f"{m.backend} {m.engine_version} takes this fraction {kind}; {note}", numbers=(
                        Quantity("GPU memory (driver)", round(m.per_gpu.total_bytes / GIB, 3), "GiB"),
                        Quantity("reserved by other processes", round(
                            (m.per_gpu.other_bytes - chosen.overheads.non_torch_bytes) / GIB, 3), "GiB"),
                        Quantity("KV cache", round(m.per_gpu.kv_cache_bytes / GIB, 3), "GiB")))


def _slo_misses(spec: Spec, pool: str, perf: Performance, spec_file: str) -> list[Diagnostic]:
    out = []
    checks = (("ttft_ms", spec.slo.ttft_ms, perf.ttft_ms), ("itl_ms", spec.slo.itl_ms, perf.itl_ms))
    for key, target, predicted in checks:
        if target is not None and target.p99 is not None and predicted > target.p99:
            out.append(Diagnostic(
                rule="DPC304", severity=Severity.WARNING, file=spec_file, key_path=f"slo.{key}.p99",
                message=f"pool {pool}: predicted {key.split('_')[0].upper()} {predicted:.1f} ms is above the "
                        f"p99 target of {target.p99:g} ms", hint="more GPUs, FP8 weights, or a relaxed target"))
    return out


def _seqs_and_budget(search: Search, chosen: Evaluated, registry: PluginRegistry | None, itl_target: float | None,
                     mean_context: float) -> tuple[Evaluated, Decision, Decision]:
    """max_num_seqs and the token budget; the memory plan redone at the emitted budget when it differs.

    The engine profiles (vLLM) or reserves for (SGLang) the token budget it is given, not the planning
    one, so the chosen layout is evaluated again at the emitted budget (kept when the workload still fits).
    """
    c, spec = search.candidate, search.candidate.target.spec
    layout = chosen.evaluation.layout

    def limit(ev: Evaluated) -> Decision:
        return pinned(rules.max_num_seqs(ev.concurrency_per_replica, ev.memory.max_concurrency_at_typical_request,
                                         _itl_batch_limit(ev, search, itl_target, mean_context)),
                      spec.plan.max_num_seqs, "max_num_seqs")

    seqs = limit(chosen)
    base = perf_inputs(c, layout, chosen.weights, chosen.memory.kv_bytes_per_token, float(seqs.value))
    decode_ms = decode_step_time_s(base, float(seqs.value), mean_context)[0] * 1e3
    budget = rules.token_budget(spec.slo.goal, itl_target, int(seqs.value), decode_ms,
                                lambda tokens: prefill_time_s(base, tokens)[0] * 1e3)
    budget = pinned(budget, spec.plan.max_num_batched_tokens, "max_num_batched_tokens")
    if registry is None or int(budget.value) == c.max_num_batched_tokens:
        return chosen, seqs, budget
    again = evaluate_layout(evolve(c, max_num_batched_tokens=int(budget.value)), layout, registry)
    if not again.evaluation.fits:
        return chosen, seqs, budget
    seqs = limit(again)
    if int(seqs.value) > int(budget.value) and spec.plan.max_num_batched_tokens is None:
        budget = evolve(budget, value=int(seqs.value))
    return again, seqs, budget


def finish_pool(search: Search, rejected_weights: list[Alternative], *, several: bool,
                registry: PluginRegistry | None = None) -> tuple[PoolPlan, list[Decision], list[Diagnostic]]:
    """Knobs and decisions for the chosen layout of one pool."""
    chosen = search.chosen()
    if chosen is None:
        raise ValueError("finish_pool needs a search whose best layout fits")
    c, shape, spec = search.candidate, search.candidate.shape, search.candidate.target.spec
    target, layout, memory = c.target, chosen.evaluation.layout, chosen.memory
    prefix = f"{shape.name}." if several else ""
    diagnostics: list[Diagnostic] = []
    mean_context = shape.prompt.mean + shape.output.mean / 2
    itl_target = spec.slo.itl_ms.p99 if spec.slo.itl_ms else None
    chosen, seqs, budget = _seqs_and_budget(search, chosen, registry, itl_target, mean_context)
    memory = chosen.memory
    context = rules.max_model_len(shape, spec.model.max_context_tokens, target.model.max_position_embeddings,
                                  memory.kv_capacity_tokens, memory.kv_block_size_tokens)
    context = pin_context(context, spec.plan.max_model_len)
    if context.capped:
        diagnostics.append(Diagnostic(rule="DPC303", severity=Severity.WARNING, file=target.spec_file,
                                      key_path="model.max_context_tokens", message=context.decision.reason,
                                      hint="use FP8 KV cache, more GPUs, or accept the shorter context"))
    if int(seqs.value) < chosen.concurrency_per_replica - 1e-9:
        diagnostics.append(Diagnostic(
            rule="DPC305", severity=Severity.WARNING, file=target.spec_file, key_path="workload",
            message=f"pool {shape.name}: {chosen.concurrency_per_replica:.0f} requests in flight per replica but "
                    f"max_num_seqs is {seqs.value} ({seqs.reason})",
            hint="add replicas (GPUs) or relax the ITL target"))
    load = min(chosen.concurrency_per_replica, float(seqs.value))
    final_inputs = perf_inputs(c, layout, chosen.weights, memory.kv_bytes_per_token, max(load, 1.0),
                               max_num_batched_tokens=int(budget.value))
    performance: Performance = estimate_performance(final_inputs)
    no_prefix = estimate_performance(evolve(final_inputs, prefix_cached_tokens=0.0))
    prefix_decision = rules.prefix_caching(shape, spec.workload.kind, memory.kv_block_size_tokens,
                                           no_prefix.ttft_ms, performance.ttft_ms)
    if not prefix_decision.value:
        performance = no_prefix
    graphs = rules.cuda_graphs(memory.per_gpu.free_bytes, memory.per_gpu.cuda_graph_bytes, layout.tp)
    all_reduce = rules.custom_all_reduce(target.intra_node_link.kind, layout.tp)
    dense = weights_per_gpu(target.model, weight_format("bf16" if c.dtype == "bfloat16" else "fp16"),
                            tp=layout.tp, pp=layout.pp, ep=layout.ep)
    quant = explain_weights(c.weights, spec, target.gpu, chosen.weights.total_bytes, dense.total_bytes,
                            rejected_weights, c.kernel)
    kv = Decision(id=f"{prefix}kv_cache_dtype", value=c.kv_dtype, rule="DPC402", reason=(
        "FP8 KV cache halves KV bytes per token so the cache holds the workload" if c.kv_dtype == "fp8" else
        "the activation dtype; the cache holds the workload without FP8"), numbers=(
        Quantity("KV bytes per token per GPU", memory.kv_bytes_per_token, "B"),
        Quantity("KV bytes per token, whole model", memory.kv_bytes_per_token_model, "B")))
    knobs = Knobs(
        dtype=c.dtype, weights_format=c.weights.weights_format, quantization=c.weights.quantization_flag,
        kv_cache_dtype=c.kv_dtype, max_model_len=context.max_model_len, max_num_seqs=int(seqs.value),
        max_num_batched_tokens=int(budget.value), chunked_prefill=True, prefix_caching=bool(prefix_decision.value),
        cuda_graphs=bool(graphs.value), custom_all_reduce=bool(all_reduce.value),
        memory_fraction=memory.memory_fraction,
    )
    split = pp_layer_split(target.model.num_layers, layout.pp)
    decisions = [
        _parallelism_decision(search, chosen, prefix), evolve(quant, id=f"{prefix}quantization"), kv,
        pinned(_memory_decision(chosen, prefix), spec.plan.memory_fraction, "memory_fraction",
               would_choose=chosen.own_memory_fraction), evolve(context.decision, id=f"{prefix}max_model_len"),
        evolve(seqs, id=f"{prefix}max_num_seqs"), evolve(budget, id=f"{prefix}max_num_batched_tokens"),
        Decision(id=f"{prefix}chunked_prefill", value=True, rule="DPC402", reason=(
            f"long prompts are split into chunks of at most {int(budget.value):,} tokens that share steps with "
            "running decodes, so one long prompt cannot stall every stream")),
        evolve(prefix_decision, id=f"{prefix}prefix_caching"), evolve(graphs, id=f"{prefix}cuda_graphs"),
        evolve(all_reduce, id=f"{prefix}custom_all_reduce"),
    ]
    if layout.pp > 1:
        decisions.append(Decision(id=f"{prefix}pp_layer_split", value=" / ".join(map(str, split)), rule="DPC402",
                                  reason="layers per pipeline stage, split as vLLM splits them", numbers=tuple(
                                      Quantity(f"stage {i} layers", n, "") for i, n in enumerate(split))))
    power = power_limit_decision(target, final_inputs, performance)
    if power is not None:
        decisions.append(evolve(power, id=f"{prefix}power_limit"))
        diagnostics.append(Diagnostic(rule="DPC306", severity=Severity.WARNING, file=target.spec_file,
                                      key_path="environment", message=power.reason.split(". ")[0],
                                      hint="apply the power limit in the runbook; watch throttle reasons"))
    diagnostics += _slo_misses(spec, shape.name, performance, target.spec_file)
    pool = PoolPlan(name=shape.name, share=shape.share, layout=layout, pp_layer_split=split, memory=memory,
                    performance=performance, knobs=knobs)
    return pool, decisions, diagnostics
