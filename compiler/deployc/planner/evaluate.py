"""Evaluating one candidate layout: weights, the backend's overheads, memory, then performance."""

from __future__ import annotations

import math
from collections.abc import Callable

from attrs import evolve, frozen

from deployc.contract.backend import OverheadQuery, PpLayerSplit, RuntimeOverheads, SchedulerPolicy
from deployc.contract.kinds import ActivationDtype, KvCacheDtype
from deployc.planner.collectives import network_nics
from deployc.planner.formats import kv_dtype_bytes, weight_format
from deployc.planner.knobs import CONTEXT_ROUNDING_TOKENS, round_up
from deployc.planner.memory import MemoryInputs, plan_memory
from deployc.planner.models import BackendModels
from deployc.planner.parallel import LayoutEvaluation
from deployc.planner.perf import PerfInputs, estimate_performance
from deployc.planner.precision import WeightChoice
from deployc.planner.types import Layout, MemoryPlan, Performance
from deployc.planner.weights import WeightsBreakdown, weights_per_gpu
from deployc.planner.workload import WorkloadShape
from deployc.target import Target

# Little's law iterations when the load is given as a request rate (converges in 2-3 for these models).
RATE_ITERATIONS = 4
PLANNING_TOKEN_BUDGET = 8192  # profile budget used while ranking layouts; the final knob is chosen later
# When nothing fits at PLANNING_TOKEN_BUDGET the layouts are tried again at this budget, the knob then capped at it:
# vLLM 0.33's default on GPUs below H100 class, and where SGLang's reserve stops shrinking (its rule reserves for
# max(chunked_prefill_size, 2048) tokens, srt/server_args.py _handle_gpu_memory_settings).
MEMORY_FALLBACK_TOKEN_BUDGET = 2048


@frozen(kw_only=True)
class Candidate:
    """What stays fixed while layouts are compared: backend, precision, workload, GPUs of the pool."""

    target: Target
    backend: str
    dtype: ActivationDtype
    weights: WeightChoice
    kv_dtype: KvCacheDtype
    shape: WorkloadShape
    gpus_per_node: int
    nodes: int
    kernel: str | None
    flow: str | None = None  # the backend's flow for this precision (its capability answer)
    cuda_graphs: bool = True
    max_num_batched_tokens: int = PLANNING_TOKEN_BUDGET
    budget_cap: int | None = None  # the memory fits only with steps up to this budget (planned there, as a fallback)
    scheduler: SchedulerPolicy = SchedulerPolicy()
    pp_split: PpLayerSplit = "extra_before_last"  # the backend's pipeline split (BackendInfo.pp_layer_split)
    quick: bool = False  # a what-if search (ranked fixes, sizing): fewer layouts and requests simulated
    emitted_max_model_len: int | None = None  # once the knob is decided (capped, say): memory is planned at it
    emitted_max_num_seqs: int | None = None  # once the knob is decided: the CUDA graphs are planned for it
    kv_reason: str | None = None  # why the KV dtype is what it is, when the simulation chose it (FP8 for the load)

    @property
    def activation_dtype_bytes(self) -> int:
        """2 for BF16/FP16 activations."""
        return 2

    @property
    def kv_tokens_needed(self) -> int:
        """KV tokens a replica must hold: one p99 request, or one sequence of a pinned max model length."""
        return max(self.shape.prompt.p99_tokens + self.shape.output.p99_tokens,
                   self.target.spec.plan.max_model_len or 0)  # the engine refuses to start below the pinned length

    @property
    def max_model_len_wanted(self) -> int:
        """The context the spec or the workload asks for, within the model's limit: the workload's longest
        request rounded up as the max_model_len knob rounds it, so memory is planned at the emitted length."""
        spec = self.target.spec
        if self.emitted_max_model_len is not None:
            return self.emitted_max_model_len
        wanted = spec.plan.max_model_len or spec.model.max_context_tokens or round_up(
            self.shape.needed_context_tokens, CONTEXT_ROUNDING_TOKENS)
        return min(wanted, self.target.model.max_position_embeddings)


@frozen(kw_only=True)
class Evaluated:
    """A layout's full evaluation: what the ranking sees, and what the planner keeps for the chosen one."""

    evaluation: LayoutEvaluation
    weights: WeightsBreakdown
    overheads: RuntimeOverheads
    memory: MemoryPlan
    performance: Performance | None
    concurrency_per_replica: float
    own_memory_fraction: float  # what deployc would choose without a [plan].memory_fraction pin


def overhead_query(c: Candidate, layout: Layout, weights_bytes: int, max_num_seqs: int) -> OverheadQuery:
    """The question the backend answers about its own memory use for this layout."""
    m = c.target.model
    return OverheadQuery(
        model_name=m.name, num_layers=m.num_layers, hidden_size=m.hidden_size,
        intermediate_size=max(m.intermediate_size, m.moe_intermediate_size), vocab_size=m.vocab_size,
        num_attention_heads=m.num_attention_heads, is_moe=m.is_moe, gpu_name=c.target.gpu.name,
        gpu_memory_bytes=c.target.gpu.memory_bytes, tp=layout.tp, pp=layout.pp,
        activation_dtype_bytes=c.activation_dtype_bytes, max_num_batched_tokens=c.max_num_batched_tokens,
        max_num_seqs=max_num_seqs, cuda_graphs=c.cuda_graphs, weights_bytes_per_gpu=weights_bytes,
        gpu_vendor=c.target.gpu.vendor, max_model_len=c.max_model_len_wanted,
    )


def perf_inputs(c: Candidate, layout: Layout, weights: WeightsBreakdown, kv_per_token: int, concurrency: float,
                max_num_batched_tokens: int | None = None, cuda_graphs: bool | None = None) -> PerfInputs:
    """The performance model's inputs for this layout at a given load per replica."""
    env = c.target.spec.environment
    power = (env.power_limit_w / c.target.gpu.tdp_w) if env.power_limit_w and c.target.gpu.tdp_w else 1.0
    return PerfInputs(
        model=c.target.model, gpu=c.target.gpu, layout=layout, intra_link=c.target.intra_node_link,
        network=c.target.network, gpus_per_node=c.gpus_per_node, weights_bytes_per_gpu=weights.total_bytes,
        network_nics=network_nics(c.target.network, c.target.spec.hardware.ib_hcas),
        expert_weights_bytes_per_gpu=weights.moe_expert_bytes, embedding_bytes_per_gpu=weights.embedding_bytes,
        kv_bytes_per_token_per_gpu=kv_per_token, weights_format=c.weights.weights_format,
        activation_dtype_bytes=c.activation_dtype_bytes, prompt_tokens=c.shape.prompt.mean,
        output_tokens=c.shape.output.mean, concurrency=concurrency,
        prefix_cached_tokens=c.shape.prefix_hit_tokens,
        cuda_graphs=c.cuda_graphs if cuda_graphs is None else cuda_graphs,
        power_limit_fraction=min(power, 1.0),
        max_num_batched_tokens=max_num_batched_tokens or c.max_num_batched_tokens, pp_split=c.pp_split,
    )


def _load_per_replica(c: Candidate, layout: Layout, weights: WeightsBreakdown, kv_per_token: int,
                      kv_limit: float) -> tuple[float, Performance]:
    """Requests in flight per replica (capped by the KV cache), and the performance there.

    A request rate becomes a concurrency by Little's law: rate × (TTFT + output × ITL).
    """
    shape = c.shape
    if shape.concurrency is not None:
        load = min(shape.concurrency / layout.dp, max(kv_limit, 1.0))
        return load, estimate_performance(perf_inputs(c, layout, weights, kv_per_token, load))
    rate = (shape.request_rate_per_s or 0.0) / layout.dp
    load = 1.0
    perf = estimate_performance(perf_inputs(c, layout, weights, kv_per_token, load))
    for _ in range(RATE_ITERATIONS):
        latency_s = (perf.ttft_ms + max(shape.output.mean - 1, 0) * perf.itl_ms) / 1e3
        load = min(max(rate * latency_s, 1.0), max(kv_limit, 1.0))
        perf = estimate_performance(perf_inputs(c, layout, weights, kv_per_token, load))
    return load, perf


def planned_max_num_seqs(c: Candidate, layout: Layout) -> int:
    """The max_num_seqs the memory plan sizes the engine's CUDA graphs for: the pinned or emitted one, else the
    clients per replica (64 without a concurrency) until the load knobs are decided."""
    pinned_seqs = c.target.spec.plan.max_num_seqs
    return pinned_seqs or c.emitted_max_num_seqs or max(1, math.ceil((c.shape.concurrency or 64) / layout.dp))


def evaluate_layout(c: Candidate, layout: Layout, backend: BackendModels) -> Evaluated:
    """Weights and overheads → memory → performance at the workload's load, for one layout."""
    model = c.target.model
    weights = weights_per_gpu(model, weight_format(c.weights.weights_format), tp=layout.tp, pp=layout.pp,
                              ep=layout.ep, split=c.pp_split)
    pins = c.target.spec.plan
    overheads = backend.runtime_overheads(overhead_query(c, layout, weights.total_bytes,
                                                         planned_max_num_seqs(c, layout)))
    inputs = MemoryInputs(
        model=model, gpu=c.target.gpu, layout=layout, weights_bytes_per_gpu=weights.total_bytes,
        kv_dtype_bytes=kv_dtype_bytes(c.kv_dtype), reserved_bytes=c.target.reserved_memory_bytes,
        overheads=overheads, max_model_len=c.max_model_len_wanted,
        typical_request_tokens=c.shape.typical_request_tokens, backend=c.backend,
        memory_fraction=pins.memory_fraction, pp_split=c.pp_split,
    )
    memory = plan_memory(inputs)
    own_fraction = memory.memory_fraction if pins.memory_fraction is None else plan_memory(
        evolve(inputs, memory_fraction=None)).memory_fraction
    # A pinned fraction can leave too little outside it for what the engine keeps there, even running eager.
    overcommit = 0 if pins.memory_fraction is None else max(
        0, -(memory.per_gpu.free_bytes + memory.per_gpu.cuda_graph_bytes))
    fits_workload = memory.kv_capacity_tokens >= c.kv_tokens_needed and not overcommit
    performance: Performance | None = None
    load = 0.0
    if fits_workload:
        load, performance = _load_per_replica(c, layout, weights, memory.kv_bytes_per_token,
                                              memory.max_concurrency_at_typical_request)
    shortfall = overcommit or (memory.shortfall_bytes if not fits_workload else 0)
    if not fits_workload and shortfall == 0:
        shortfall = max(1, (c.kv_tokens_needed - memory.kv_capacity_tokens)
                        * memory.kv_bytes_per_token)
    evaluation = LayoutEvaluation(
        layout=layout, fits=fits_workload, shortfall_bytes=shortfall,
        kv_capacity_tokens=memory.kv_capacity_tokens, max_concurrency=memory.max_concurrency_at_typical_request,
        performance=performance, meets_slo=False,
    )
    return Evaluated(evaluation=evaluation, weights=weights, overheads=overheads, memory=memory,
                     performance=performance, concurrency_per_replica=load, own_memory_fraction=own_fraction)


MemoryAtBudget = Callable[[int], "Evaluated | None"]


def memory_at_budget(c: Candidate, layout: Layout, backend: BackendModels) -> MemoryAtBudget:
    """The layout evaluated with its memory planned at a token budget (None where the workload does not fit).

    The engine profiles (vLLM) or reserves for (SGLang: 1.5 MiB a token of its chunk) the budget it is given, so
    a budget the tuning simulates runs with the KV cache that budget leaves, not the planning budget's.
    """
    def at(budget: int) -> Evaluated | None:
        again = evaluate_layout(evolve(c, max_num_batched_tokens=budget), layout, backend)
        return again if again.evaluation.fits else None
    return at
