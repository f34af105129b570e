"""Where each TensorRT-LLM server runs: which nodes, which GPU devices, which port.

A pool's data-parallel replicas are separate servers (own GPUs, own port; a Kubernetes Service
or any balancer spreads requests), except with attention data parallelism (MoE with EP), where
the DP groups are one ``trtllm-serve`` over TP × DP GPUs.  Servers are packed onto nodes in
order; one larger than a node spans whole nodes (MPI ranks on every node).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from attrs import frozen

from deployc.planner.types import PoolPlan
from deployc_trtllm.pytorch import attention_dp, engine_gpus

if TYPE_CHECKING:
    from deployc.planner.plan import Plan


class PlacementError(ValueError):
    """The plan's layouts do not fit the spec's nodes and GPUs."""


@frozen(kw_only=True)
class Server:
    """One ``trtllm-serve`` (one MPI world, possibly spanning nodes) and where it runs."""

    pool: PoolPlan
    replica: int
    nodes: tuple[int, ...]
    gpu_ids: tuple[int, ...]  # device ids used on each of its nodes
    port: int
    name: str

    @property
    def spans_nodes(self) -> bool:
        """Whether the server's ranks run on several nodes."""
        return len(self.nodes) > 1

    @property
    def gpus(self) -> int:
        """GPUs on each of its nodes."""
        return len(self.gpu_ids)


def place(plan: Plan) -> tuple[Server, ...]:
    """Servers of every pool, packed onto the spec's nodes in order."""
    hw = plan.target.spec.hardware
    per_node = hw.gpus_per_node
    device_ids = tuple(hw.gpu_ids) if hw.gpu_ids else tuple(range(per_node))
    node, used = 0, 0
    ports_on_node: dict[int, int] = {}
    servers: list[Server] = []
    for pool in plan.pools:
        gpus = engine_gpus(pool)
        count = 1 if attention_dp(pool) else pool.layout.dp
        for replica in range(count):
            nodes: tuple[int, ...]
            if gpus <= per_node:
                if used + gpus > per_node:
                    node, used = node + 1, 0
                nodes, ids = (node,), device_ids[used:used + gpus]
                used += gpus
            else:
                if gpus % per_node:
                    raise PlacementError(f"pool {pool.name!r}: {gpus} GPUs per server is not a whole number of "
                                         f"{per_node}-GPU nodes")
                if used:
                    node, used = node + 1, 0
                span = gpus // per_node
                nodes, ids = tuple(range(node, node + span)), device_ids
                node += span
            if max(nodes) >= hw.nodes:
                raise PlacementError(f"pool {pool.name!r} needs more than the spec's {hw.nodes} node(s) of "
                                     f"{per_node} GPUs")
            offset = ports_on_node.get(nodes[0], 0)
            ports_on_node[nodes[0]] = offset + 1
            parts = (plan.target.spec.name, pool.name if len(plan.pools) > 1 else "", str(replica) if count > 1 else "")
            servers.append(Server(pool=pool, replica=replica, nodes=nodes, gpu_ids=ids,
                                  port=plan.target.spec.operations.port + offset, name="-".join(p for p in parts if p)))
    return tuple(servers)


def nodes_used(servers: tuple[Server, ...]) -> int:
    """How many nodes the servers occupy."""
    return max((max(s.nodes) for s in servers), default=0) + 1
