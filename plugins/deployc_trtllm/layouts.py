"""``deployc_layout_support`` for TensorRT-LLM: deployc emits single-node TensorRT-LLM deployments only."""

from __future__ import annotations

from typing import TYPE_CHECKING

from deployc.backend import Capability

if TYPE_CHECKING:
    from deployc.planner.types import Layout
    from deployc.target import Target

MULTI_NODE_ALTERNATIVE = ("multi-node TensorRT-LLM needs an MPI/Slurm launcher deployc does not emit yet; use "
                          "--backend vllm or sglang (native multi-node scripts)")


def layout_support(target: Target, layout: Layout, gpus_per_node: int, nodes: int) -> Capability | None:
    """Refuse what :func:`deployc_trtllm.checks.check_plan` would refuse: anything beyond one node."""
    spec_nodes = target.spec.hardware.nodes
    if spec_nodes > 1 or nodes > 1:
        return Capability(supported=False, reason=f"the TensorRT-LLM backend emits single-node deployments; the "
                          f"spec has {max(spec_nodes, nodes)} nodes", alternative=MULTI_NODE_ALTERNATIVE)
    if layout.gpus_used > gpus_per_node:
        return Capability(supported=False, reason=f"the TensorRT-LLM backend emits single-node deployments; "
                          f"{layout.label()} uses {layout.gpus_used} GPUs, more than a node's {gpus_per_node}",
                          alternative=MULTI_NODE_ALTERNATIVE)
    return None
