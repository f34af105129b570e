"""``deployc_layout_support`` for SGLang: the layouts :func:`deployc_sglang.placement.place` can place.

SGLang holds a pool's data-parallel ranks in one server, so a pool is one server of TP × PP × DP
GPUs; one larger than a node must span whole nodes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deployc.contract import Capability

if TYPE_CHECKING:
    from deployc.contract import Layout, TargetFacts


def layout_support(target: TargetFacts, layout: Layout, gpus_per_node: int, nodes: int) -> Capability | None:  # noqa: ARG001  (the hook's arguments)
    """Why this backend cannot place ``layout`` on ``nodes`` × ``gpus_per_node`` GPUs, or None when it can."""
    one_server = layout.experts_across_replicas
    gpus = layout.gpus_used if one_server else layout.tp * layout.pp
    servers = 1 if one_server else layout.dp
    if gpus > gpus_per_node and gpus % gpus_per_node:
        return Capability(supported=False, reason=f"a server of {gpus} GPUs is not a whole number of "
                          f"{gpus_per_node}-GPU nodes")
    if gpus > gpus_per_node:
        if servers * (gpus // gpus_per_node) > nodes:
            return Capability(supported=False, reason=f"{servers} server(s) of {gpus} GPUs need more than the "
                              f"{nodes} node(s) of {gpus_per_node} given")
        return None
    if servers > (gpus_per_node // gpus) * nodes:
        return Capability(supported=False, reason=f"{servers} replicas of {gpus} GPUs do not pack onto {nodes} "
                          f"node(s) of {gpus_per_node}")
    return None
