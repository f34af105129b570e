"""The planner's result types: memory, parallelism, performance and serving knobs, per pool."""

from __future__ import annotations

from typing import Literal

from attrs import frozen

from deployc.contract.backend import MemoryFractionKind
from deployc.contract.deployment import Knobs as Knobs  # noqa: PLC0414  (re-exported: the type lives in the contract)
from deployc.contract.deployment import Layout as Layout  # noqa: PLC0414  (re-exported: the type lives in the contract)
from deployc.planner.cost import PoolCost
from deployc.planner.decisions import Quantity
from deployc.planner.serving.result import ServingResult
from deployc.planner.serving.verdict import ServingVerdict

Bound = Literal["memory", "compute", "communication"]


@frozen(kw_only=True)
class MemoryBreakdown:
    """Bytes on one GPU (the most loaded one)."""

    total_bytes: int
    usable_bytes: int
    weights_bytes: int
    kv_cache_bytes: int
    activation_bytes: int
    cuda_graph_bytes: int
    other_bytes: int

    @property
    def free_bytes(self) -> int:
        """What is left after everything above (never negative in a plan that fits)."""
        return self.total_bytes - (self.weights_bytes + self.kv_cache_bytes + self.activation_bytes
                                   + self.cuda_graph_bytes + self.other_bytes)


@frozen(kw_only=True)
class MemoryPlan:
    """Memory per GPU and what it buys: KV capacity and concurrency."""

    per_gpu: MemoryBreakdown
    kv_bytes_per_token: int
    kv_bytes_per_token_model: int
    kv_capacity_tokens: int
    max_concurrency_at_max_context: float
    max_concurrency_at_typical_request: float
    memory_fraction: float
    memory_fraction_kind: MemoryFractionKind
    kv_block_size_tokens: int
    backend: str
    engine_version: str
    fits: bool
    shortfall_bytes: int
    assumptions: tuple[str, ...] = ()


@frozen(kw_only=True)
class Performance:
    """Predicted latency and throughput at the workload's concurrency, for one replica set."""

    ttft_ms: float
    itl_ms: float
    tokens_per_s: float
    tokens_per_s_per_gpu: float
    bound: Bound
    bound_share: float  # the bound's share of the decode step
    batch_size: float
    decode_step_ms: float = 0.0  # one decode step at the batch; itl_ms adds the arriving prompts' chunks
    step_breakdown: tuple[Quantity, ...] = ()
    assumptions: tuple[str, ...] = ()


@frozen(kw_only=True)
class PoolPlan:
    """One serving pool: a layout of the GPUs with its memory, performance and knobs.

    ``decode_graph_max_batch`` is the backend's overhead answer at the pool's final knobs
    (:attr:`~deployc.contract.backend.RuntimeOverheads.decode_graph_max_batch`) and ``flow`` its capability
    answer for the pool's precision (:attr:`~deployc.contract.backend.Capability.flow`), kept for its emitter.
    """

    name: str
    share: float
    layout: Layout
    pp_layer_split: tuple[int, ...]
    memory: MemoryPlan
    performance: Performance
    knobs: Knobs
    serving: ServingResult | None = None
    verdict: ServingVerdict | None = None
    cost: PoolCost | None = None
    decode_graph_max_batch: int | None = None
    flow: str | None = None
