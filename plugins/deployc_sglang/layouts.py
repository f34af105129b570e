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
    gpus = layout.gpus_used
    if gpus > gpus_per_node and gpus % gpus_per_node:
        return Capability(supported=False, reason=f"a server of {gpus} GPUs is not a whole number of "
                          f"{gpus_per_node}-GPU nodes")
    if gpus > gpus_per_node * nodes:
        return Capability(supported=False, reason=f"a server of {gpus} GPUs needs more than the {nodes} node(s) "
                          f"of {gpus_per_node} given")
    return None
