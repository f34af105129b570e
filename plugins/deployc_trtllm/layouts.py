"""``deployc_layout_support`` for TensorRT-LLM: the layouts this backend's placement can put on the nodes.

Mirrors :func:`deployc_trtllm.placement.place` for one pool's layout: a trtllm-serve process holds
TP × PP GPUs (× DP when attention runs data-parallel inside it, MoE with EP); one larger than a node
spans whole nodes; the processes must pack onto the nodes given. The engine flow (``flow = "engine"``)
is emitted for one node only, so a multi-node spec that forces it is refused here too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deployc.contract import Capability
from deployc_trtllm.options import parse_options

if TYPE_CHECKING:
    from deployc.contract import Layout, TargetFacts


def _refuse(reason: str, alternative: str | None = None) -> Capability:
    return Capability(supported=False, reason=reason, alternative=alternative)


def layout_support(target: TargetFacts, layout: Layout, gpus_per_node: int, nodes: int) -> Capability | None:
    """Why this backend cannot place ``layout`` on ``nodes`` × ``gpus_per_node`` GPUs, or None when it can."""
    engine_flow = parse_options(target.options).flow == "engine"
    if engine_flow and (target.nodes > 1 or layout.gpus_used > gpus_per_node):
        return _refuse("the TensorRT-LLM engine flow is emitted for one node",
                       'remove flow = "engine" from [backends.trtllm]: the PyTorch flow runs across nodes')
    inside = layout.ep > 1 and layout.dp > 1  # pytorch.attention_dp
    gpus = layout.tp * layout.pp * (layout.dp if inside else 1)  # pytorch.engine_gpus
    servers = 1 if inside else layout.dp
    if gpus > gpus_per_node:
        if gpus % gpus_per_node:
            return _refuse(f"a server of {gpus} GPUs is not a whole number of {gpus_per_node}-GPU nodes")
        if servers * (gpus // gpus_per_node) > nodes:
            return _refuse(f"{servers} server(s) of {gpus // gpus_per_node} nodes need more than the {nodes} "
                           "node(s) given")
        return None
    if servers > (gpus_per_node // gpus) * nodes:
        return _refuse(f"{servers} servers of {gpus} GPUs do not pack onto {nodes} node(s) of {gpus_per_node}")
    return None
