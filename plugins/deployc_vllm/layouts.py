"""``deployc_layout_support`` for vLLM: the layouts deployc's vLLM emitter can place and launch.

Mirrors :func:`deployc_vllm.placement.place` and the multi-node launch of
:mod:`deployc_vllm.command`, for one pool's layout, so the planner never chooses a layout whose
artifacts this backend would then refuse to write.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from deployc.contract import Capability
from deployc_vllm.options import parse_options

if TYPE_CHECKING:
    from deployc.contract import Layout, TargetFacts


def _refuse(reason: str, alternative: str | None = None) -> Capability:
    return Capability(supported=False, reason=reason, alternative=alternative)


def layout_support(target: TargetFacts, layout: Layout, gpus_per_node: int, nodes: int) -> Capability | None:
    """Why this backend cannot deploy ``layout`` on ``nodes`` × ``gpus_per_node`` GPUs, or None when it can."""
    engine_dp = layout.dp if layout.ep > 1 and layout.dp > 1 else 1  # placement.engine_data_parallel
    engines = 1 if engine_dp > 1 else layout.dp
    gpus = layout.tp * layout.pp * engine_dp
    if gpus > gpus_per_node:
        if gpus % gpus_per_node:
            return _refuse(f"a server of {gpus} GPUs is not a whole number of {gpus_per_node}-GPU nodes")
        span = gpus // gpus_per_node
        if engines * span > nodes:
            return _refuse(f"{engines} server(s) of {span} nodes need more than the {nodes} node(s) given")
        ray = parse_options(target.options).distributed_executor_backend == "ray"
        per_node = math.ceil(engine_dp / span)
        if engine_dp > 1 and per_node > 1 and not ray:
            return _refuse(f"one expert-parallel engine of {engine_dp} data-parallel ranks over {span} nodes puts "
                           f"{per_node} ranks on each node, and the Kubernetes LeaderWorkerSet cannot derive each "
                           "node's first rank (--data-parallel-start-rank) from the worker index",
                           "one data-parallel rank per node (TP × PP filling a node), or "
                           "[backends.vllm] distributed_executor_backend = \"ray\"")
        return None
    if engines > (gpus_per_node // gpus) * nodes:
        return _refuse(f"{engines} servers of {gpus} GPUs do not pack onto {nodes} node(s) of {gpus_per_node}")
    return None
