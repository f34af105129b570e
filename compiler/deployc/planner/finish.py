"""Turning the chosen layout into a pool plan: serving knobs, re-estimated performance, decisions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from attrs import evolve

from deployc.catalog.prices import gpu_price
from deployc.diagnostics import Diagnostic, Severity
from deployc.planner import knobs as rules
from deployc.planner.collectives import allreduce_model
from deployc.planner.confirm import confirmed
from deployc.planner.cost import PoolCost, pool_cost
from deployc.planner.decisions import Alternative, Decision, Quantity
from deployc.planner.evaluate import Evaluated, overhead_query
from deployc.planner.formats import weight_format
from deployc.planner.load import Served
from deployc.planner.parallel import pp_layer_split
from deployc.planner.pins import pinned
from deployc.planner.precision import explain_weights
from deployc.planner.serving.simulate import RANKING_REQUESTS, SIMULATED_REQUESTS
from deployc.planner.serving_explain import serving_decision, serving_diagnostics
from deployc.planner.thermal import power_limit_decision
from deployc.planner.types import Knobs, Layout, PoolPlan
from deployc.planner.weights import split_words, weights_per_gpu
from deployc.units import GIB

if TYPE_CHECKING:
    from deployc.planner.models import BackendModels
    from deployc.planner.search import Search

MAX_LOSERS_SHOWN = 6
GOAL_ORDER = {"latency": "the lowest p99 latency against the targets (p99 end-to-end without targets)",
              "throughput": "the most output tokens/s", "cost": "the most output tokens/s per GPU"}


def _parallelism_decision(search: Search, chosen: Evaluated, served: Served, prefix: str) -> Decision:
    layout = chosen.evaluation.layout
    numbers = [Quantity("GPUs used", layout.gpus_used, ""),
               Quantity("weights per GPU", round(chosen.weights.total_bytes / GIB, 3), "GiB"),
               Quantity("KV capacity per replica", chosen.memory.kv_capacity_tokens, "tokens")]
    if layout.tp > 1:
        target = search.candidate.target
        model = allreduce_model(target.gpu, target.intra_node_link, layout.tp, cuda_graphs=True)
        numbers += [Quantity(f"TP{layout.tp} all-reduce bus bandwidth ({model.algorithm})",
                             round(model.bus_bandwidth_bytes_per_s / 1e9, 1), "GB/s"),
                    Quantity("TP all-reduce latency", round(model.latency_s * 1e6, 1), "µs")]
    r = served.result
    numbers += [Quantity("simulated TTFT p99", round(r.ttft_ms.p99, 1), "ms"),
                Quantity("simulated ITL p99", round(r.itl_ms.p99, 2), "ms"),
                Quantity("simulated output tokens/s", round(r.output_tokens_per_s, 1), "tokens/s")]
    invalid = [Alternative(k.layout.label(), "; ".join(k.reasons)) for k in search.result.rejected]
    goal = search.candidate.target.spec.slo.goal
    simulated = len(search.served)
    return Decision(
        id=f"{prefix}parallelism", value=layout.label(), rule="DPD105",
        reason=(f"best of {len(search.evaluated)} valid layouts for the {goal} goal: {simulated} simulated under the "
                f"load, each with its own knobs ({RANKING_REQUESTS} requests per replica; the chosen one again with "
                f"{SIMULATED_REQUESTS:,}): the analytic estimate's front-runners, the best using every GPU and the "
                f"roomiest, and when none of those serves, their replicas on every GPU and the best two on every "
                f"GPU without pipeline stages; then ranked: serves the SLO "
                f"first, then {GOAL_ORDER[goal]}" + (
                    f". {search.displaced.label()} ranked first but misses the SLO with {SIMULATED_REQUESTS:,} "
                    f"requests per replica; the next were simulated with {SIMULATED_REQUESTS:,} too, and "
                    f"{layout.label()} serves" if search.displaced is not None else "")),
        numbers=tuple(numbers),
        rejected=(*search.result.losers[:MAX_LOSERS_SHOWN], *invalid[:MAX_LOSERS_SHOWN]),
    )


def _memory_decision(chosen: Evaluated, prefix: str) -> Decision:
    m = chosen.memory
    note = chosen.overheads.memory_fraction_note or "memory other processes hold is subtracted first"
    kind = {"total": "of the GPU's total memory (weights, activations and KV cache must fit inside it)",
            "weights_and_kv": "of the GPU's total memory for weights and the KV pool",
            "free_after_load": "of the memory free after the engine loaded, for the KV cache"}[m.memory_fraction_kind]
    return Decision(id=f"{prefix}memory_fraction", value=m.memory_fraction, rule="DPD203",
                    reason=f"{m.backend} {m.engine_version} takes this fraction {kind}; {note}", numbers=(
                        Quantity("GPU memory (driver)", round(m.per_gpu.total_bytes / GIB, 3), "GiB"),
                        Quantity("reserved by other processes", round(
                            (m.per_gpu.other_bytes - chosen.overheads.non_torch_bytes) / GIB, 3), "GiB"),
                        Quantity("KV cache", round(m.per_gpu.kv_cache_bytes / GIB, 3), "GiB")))


def _cost(search: Search, served: Served, prefix: str) -> tuple[PoolCost, Decision] | None:
    """The pool's GPUs priced (every GPU given to it, idle ones too), and per token at the simulated rate."""
    c = search.candidate
    price = gpu_price(c.target.gpu.name, c.target.spec.slo.gpu_hour_usd)
    if price is None:
        return None
    cost = pool_cost(price, c.gpus_per_node * c.nodes, served.result)
    per_token = (f", ${cost.usd_per_million_output_tokens:.3f} per million output tokens at the simulated "
                 f"{served.result.output_tokens_per_s:,.0f} tokens/s" if cost.usd_per_million_output_tokens else "")
    decision = Decision(id=f"{prefix}cost", value=round(cost.usd_per_hour, 2), rule="DPD402", reason=(
        f"{cost.gpus} × {c.target.gpu.name} at ${cost.usd_per_gpu_hour:g} per GPU-hour ({cost.price_source}): "
        f"${cost.usd_per_hour:,.2f} per hour{per_token}"), numbers=cost.numbers())
    return cost, decision


def _idle_gpus(search: Search, layout: Layout, prefix: str) -> Decision | None:
    """Why the chosen layout leaves GPUs idle, from how the best layout using all of them lost."""
    c = search.candidate
    total = c.gpus_per_node * c.nodes
    if layout.gpus_used >= total:
        return None
    full = next((e for e in search.result.ranked if e.layout.gpus_used == total), None)
    lost = next((a.reason for a in search.result.losers if full is not None and a.value == full.layout.label()),
                "no valid layout uses every GPU")
    name = full.layout.label() if full is not None else "a layout on every GPU"
    return Decision(
        id=f"{prefix}idle_gpus", value=total - layout.gpus_used, rule="DPD107", reason=(
        f"{layout.label()} uses {layout.gpus_used} of {total} GPUs; {name} on all of them ranks lower: {lost}"),
        numbers=(Quantity("GPUs given", total, ""), Quantity("GPUs used", layout.gpus_used, "")))


def _decode_graph_max_batch(search: Search, chosen: Evaluated, knobs: Knobs,
                            models: BackendModels | None) -> int | None:
    """The backend's decode CUDA-graph batch at the pool's final knobs (its overhead answer), for its emitter."""
    if models is None or not knobs.cuda_graphs:
        return None
    c = evolve(search.candidate, max_num_batched_tokens=knobs.max_num_batched_tokens, cuda_graphs=True)
    query = overhead_query(c, chosen.evaluation.layout, chosen.weights.total_bytes, knobs.max_num_seqs)
    return models.runtime_overheads(query).decode_graph_max_batch


def finish_pool(search: Search, rejected_weights: list[Alternative], *, several: bool,
                models: BackendModels | None = None) -> tuple[PoolPlan, list[Decision], list[Diagnostic]]:
    """Knobs and decisions for the chosen layout of one pool."""
    if search.chosen() is None:
        raise ValueError("finish_pool needs a search whose best layout fits")
    c, shape, spec = search.candidate, search.candidate.shape, search.candidate.target.spec
    prefix = f"{shape.name}." if several else ""
    diagnostics: list[Diagnostic] = []
    search, (chosen, knobs_for_load, served) = confirmed(search, models)
    target, layout, memory = c.target, chosen.evaluation.layout, chosen.memory
    context, seqs, budget = knobs_for_load.context, knobs_for_load.max_num_seqs, knobs_for_load.token_budget
    if context.capped:
        diagnostics.append(Diagnostic(rule="DPC303", severity=Severity.WARNING, file=target.spec_file,
                                      key_path="model.max_context_tokens", message=context.decision.reason,
                                      hint="use FP8 KV cache, more GPUs, or accept the shorter context"))
    final_inputs, performance = knobs_for_load.inputs, knobs_for_load.performance
    prefix_decision = knobs_for_load.prefix_caching
    graphs = rules.cuda_graphs(memory.per_gpu.free_bytes, memory.per_gpu.cuda_graph_bytes, layout.tp)
    all_reduce = rules.custom_all_reduce(target.intra_node_link.kind, layout.tp)
    dense = weights_per_gpu(target.model, weight_format("bf16" if c.dtype == "bfloat16" else "fp16"),
                            tp=layout.tp, pp=layout.pp, ep=layout.ep, split=c.pp_split)
    quant = explain_weights(c.weights, spec, target.gpu, chosen.weights.total_bytes, dense.total_bytes,
                            rejected_weights, c.kernel)
    kv = Decision(id=f"{prefix}kv_cache_dtype", value=c.kv_dtype, rule="DPD202", reason=c.kv_reason or (
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
    split = pp_layer_split(target.model.num_layers, layout.pp, c.pp_split)
    decisions = [
        _parallelism_decision(search, chosen, served, prefix), evolve(quant, id=f"{prefix}quantization"), kv,
        pinned(_memory_decision(chosen, prefix), spec.plan.memory_fraction, "memory_fraction",
               would_choose=chosen.own_memory_fraction), evolve(context.decision, id=f"{prefix}max_model_len"),
        evolve(seqs, id=f"{prefix}max_num_seqs"), evolve(budget, id=f"{prefix}max_num_batched_tokens"),
        Decision(id=f"{prefix}chunked_prefill", value=True, rule="DPD304", reason=(
            f"long prompts are split into chunks of at most {int(budget.value):,} tokens that share steps with "
            "running decodes, so one long prompt cannot stall every stream")),
        evolve(prefix_decision, id=f"{prefix}prefix_caching"), evolve(graphs, id=f"{prefix}cuda_graphs"),
        evolve(all_reduce, id=f"{prefix}custom_all_reduce"),
    ]
    if layout.pp > 1:
        decisions.append(Decision(id=f"{prefix}pp_layer_split", value=" / ".join(map(str, split)), rule="DPD106",
                                  reason=f"layers per pipeline stage as the engine splits them: "
                                  f"{split_words(target.model.num_layers, layout.pp, c.pp_split)}",
                                  numbers=tuple(
                                      Quantity(f"stage {i} layers", n, "") for i, n in enumerate(split))))
    power = power_limit_decision(target, final_inputs, performance)
    if power is not None:
        decisions.append(evolve(power, id=f"{prefix}power_limit"))
        diagnostics.append(Diagnostic(rule="DPC306", severity=Severity.WARNING, file=target.spec_file,
                                      key_path="environment", message=power.reason.split(". ")[0],
                                      hint="apply the power limit in the runbook; watch throttle reasons"))
    diagnostics += serving_diagnostics(served, shape, search.candidate, prefix)
    idle = _idle_gpus(search, layout, prefix)
    if idle is not None:
        decisions.append(idle)
        diagnostics.append(Diagnostic(rule="DPC321", severity=Severity.WARNING, file=target.spec_file,
                                      key_path="hardware", message=f"{shape.name + ': ' if several else ''}"
                                      f"{idle.reason}", hint="give the pool fewer GPUs, or pin [plan] dp"))
    decisions.append(serving_decision(served, layout, prefix))
    cost = _cost(search, served, prefix)
    if cost is not None:
        decisions.append(cost[1])
    pool = PoolPlan(name=shape.name, share=shape.share, layout=layout, pp_layer_split=split, memory=memory,
                    performance=performance, knobs=knobs, serving=served.result, verdict=served.verdict,
                    cost=cost[0] if cost is not None else None,
                    decode_graph_max_batch=_decode_graph_max_batch(search, chosen, knobs, models), flow=c.flow)
    return pool, decisions, diagnostics
