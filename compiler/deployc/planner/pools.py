"""Splitting the GPUs between serving pools when the traffic has short and long request classes.

Why separate pools (seed 003): when long prompts share a KV cache with short chat requests, a
long request arriving at a full cache evicts the blocks of the short requests' shared prefix;
they all re-prefill, the long one is preempted again, and the cycle repeats. Routing each class
to its own pool gives each its own cache. GPUs are split in proportion to each class's KV
demand (Little's law: requests in flight × tokens each holds), in whole nodes when there are
several nodes, and at least one GPU (one node) per pool.
"""

from __future__ import annotations

from collections.abc import Sequence

from attrs import frozen

from deployc.planner.decisions import Decision, Quantity
from deployc.planner.workload import WorkloadShape
from deployc.target import Target


@frozen
class GpuSplit:
    """(GPUs per node, nodes) for each pool, and the decision explaining it."""

    gpus: tuple[tuple[int, int], ...]
    decision: Decision


def kv_demand(shape: WorkloadShape) -> float:
    """Relative KV demand: share of requests × how long each stays (≈ output tokens) × tokens it holds."""
    return shape.share * shape.output.mean * (shape.prompt.mean + shape.output.mean / 2)


def _largest_remainder(total: int, weights: Sequence[float]) -> list[int]:
    """Integers summing to ``total``, each ≥ 1, proportional to ``weights``."""
    count = len(weights)
    spare = total - count
    raw = [w / sum(weights) * spare for w in weights]
    out = [1 + int(r) for r in raw]
    order = sorted(range(count), key=lambda i: raw[i] - int(raw[i]), reverse=True)
    for i in order[: total - sum(out)]:
        out[i] += 1
    return out


def split_gpus(target: Target, shapes: Sequence[WorkloadShape]) -> GpuSplit | None:
    """One pool: all GPUs. Several: proportional to KV demand, whole nodes across nodes.

    None when there are fewer GPUs (or nodes) than pools: the classes must share one pool.
    """
    hw = target.spec.hardware
    if len(shapes) == 1:
        return GpuSplit(gpus=((hw.gpus_per_node, hw.nodes),), decision=Decision(
            id="pools", value=1, rule="DPD104", reason="uniform traffic: one pool"))
    demands = [kv_demand(s) for s in shapes]
    units = hw.nodes if hw.nodes > 1 else hw.gpus_per_node
    if units < len(shapes):
        return None
    counts = _largest_remainder(units, demands)
    gpus = tuple((hw.gpus_per_node, n) if hw.nodes > 1 else (n, 1) for n in counts)
    numbers = tuple(Quantity(f"{s.name}: KV demand share", round(d / sum(demands) * 100, 1), "%")
                    for s, d in zip(shapes, demands, strict=True))
    numbers += tuple(Quantity(f"{s.name}: GPUs", g[0] * g[1], "") for s, g in zip(shapes, gpus, strict=True))
    return GpuSplit(gpus=gpus, decision=Decision(
        id="pools", value=len(shapes), rule="DPD104", numbers=numbers,
        reason=("short and long requests get separate pools so long prompts cannot evict the short requests' "
                "cached prefix (the KV-eviction cascade); route by prompt length at the gateway. GPUs are split "
                "by each class's KV demand (requests in flight × tokens held)")))
