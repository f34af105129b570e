"""A planned pool's engine as the simulation sees it, rebuilt from the plan (for benches and what-ifs)."""

from __future__ import annotations

from deployc.planner.evaluate import Candidate, evaluate_layout, perf_inputs
from deployc.planner.models import BackendModels
from deployc.planner.plan import Plan
from deployc.planner.precision import WeightChoice
from deployc.planner.serving.engine import EngineConfig
from deployc.planner.serving.simulate import ServingSetup, scheduler_as_run
from deployc.planner.types import PoolPlan
from deployc.planner.workload import WorkloadShape, workload_shapes


def pool_shape(plan: Plan, pool: PoolPlan) -> WorkloadShape:
    """The workload one pool serves."""
    return next(s for s in workload_shapes(plan.target.spec) if s.name == pool.name)


def serving_setup(plan: Plan, pool: PoolPlan, models: BackendModels) -> ServingSetup:
    """The pool's knobs, KV cache and step-cost inputs, exactly as the planner simulated them."""
    target, k, layout = plan.target, pool.knobs, pool.layout
    shape = pool_shape(plan, pool)
    gpus = layout.gpus_used
    per_node = min(target.spec.hardware.gpus_per_node, gpus)
    candidate = Candidate(target=target, backend=plan.backend.name, dtype=k.dtype,
                          weights=WeightChoice(weights_format=k.weights_format, quantization_flag=k.quantization,
                                               from_checkpoint=False),
                          kv_dtype=k.kv_cache_dtype, shape=shape, gpus_per_node=per_node,
                          nodes=max(gpus // per_node, 1), kernel=None, scheduler=plan.backend.scheduler,
                          pp_split=plan.backend.pp_layer_split, max_num_batched_tokens=k.max_num_batched_tokens)
    chosen = evaluate_layout(candidate, layout, models)
    inputs = perf_inputs(candidate, layout, chosen.weights, chosen.memory.kv_bytes_per_token, k.max_num_seqs,
                         max_num_batched_tokens=k.max_num_batched_tokens)
    engine = EngineConfig(policy=scheduler_as_run(plan.backend.scheduler, prefix_caching=k.prefix_caching),
                          max_num_seqs=k.max_num_seqs, token_budget=k.max_num_batched_tokens,
                          chunked_prefill=k.chunked_prefill, kv_capacity_tokens=pool.memory.kv_capacity_tokens,
                          kv_block_tokens=pool.memory.kv_block_size_tokens,
                          prefix_tokens=shape.prefix_hit_tokens if k.prefix_caching else 0,
                          max_model_len=k.max_model_len)
    return ServingSetup(perf=inputs, engine=engine, replicas=layout.dp)
