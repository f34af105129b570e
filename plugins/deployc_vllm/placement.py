"""Where each vLLM server runs: which nodes, which GPU devices, which port.

A pool's data-parallel replicas on one host are one engine with vLLM's own
``--data-parallel-size`` (its API server spreads requests over the DP engine cores behind
one port: several servers on several ports would need a load balancer in front).  With
expert parallelism every replica of the pool is one engine, across nodes if need be, so
the experts can be sharded across them.  Replicas are packed onto nodes in order; one
whose TP × PP exceeds a node spans whole nodes (one engine per replica).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import attrs
from attrs import frozen

from deployc.planner.types import PoolPlan

if TYPE_CHECKING:
    from deployc.planner.plan import Plan


class PlacementError(ValueError):
    """The plan's layouts do not fit the spec's nodes and GPUs."""


@frozen(kw_only=True)
class Server:
    """One ``vllm serve`` engine (possibly spanning nodes) and where it runs."""

    pool: PoolPlan
    pool_index: int
    replica: int
    nodes: tuple[int, ...]
    gpu_ids: tuple[int, ...]  # device ids used on each of its nodes
    port: int
    name: str
    engine_dp: int  # data-parallel ranks inside this engine

    @property
    def spans_nodes(self) -> bool:
        """Whether one engine runs across several nodes."""
        return len(self.nodes) > 1

    @property
    def gpus(self) -> int:
        """GPUs on each of its nodes."""
        return len(self.gpu_ids)


def engine_data_parallel(pool: PoolPlan) -> bool:
    """Expert-parallel MoE keeps every DP rank inside one engine (across nodes if need be)."""
    return pool.layout.ep > 1 and pool.layout.dp > 1


def _group_on_hosts(servers: list[Server]) -> list[Server]:
    """Replicas of one pool on the same node become one engine with ``--data-parallel-size``."""
    out: list[Server] = []
    for server in servers:
        last = out[-1] if out else None
        if (last is not None and last.pool is server.pool and not last.spans_nodes and not server.spans_nodes
                and last.nodes == server.nodes):
            out[-1] = attrs.evolve(last, gpu_ids=last.gpu_ids + server.gpu_ids, engine_dp=last.engine_dp + 1)
        else:
            out.append(server)
    return out


def _server_name(spec_name: str, pool: str | None, replica: int | None) -> str:
    return "-".join(p for p in (spec_name, pool, None if replica is None else str(replica)) if p)


def place(plan: Plan) -> tuple[Server, ...]:
    """Every server of every pool, packed onto the spec's nodes in order."""
    hw = plan.target.spec.hardware
    per_node = hw.gpus_per_node
    device_ids = tuple(hw.gpu_ids) if hw.gpu_ids else tuple(range(per_node))
    node, used = 0, 0
    servers: list[Server] = []
    for pool_index, pool in enumerate(plan.pools):
        pool_servers: list[Server] = []
        layout = pool.layout
        engine_dp = layout.dp if engine_data_parallel(pool) else 1
        engines = 1 if engine_dp > 1 else layout.dp
        gpus = layout.tp * layout.pp * engine_dp
        for replica in range(engines):
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
            pool_servers.append(Server(pool=pool, pool_index=pool_index, replica=replica, nodes=nodes, gpu_ids=ids,
                                       port=0, name="", engine_dp=engine_dp))
        servers += _group_on_hosts(pool_servers)
    return tuple(_name_and_port(plan, servers))


def _name_and_port(plan: Plan, servers: list[Server]) -> list[Server]:
    """One port per engine on a host (from operations.port up); replicas numbered when a pool has several."""
    several_pools = len(plan.pools) > 1
    ports_on_node: dict[int, int] = {}
    out: list[Server] = []
    for server in servers:
        engines = sum(1 for s in servers if s.pool is server.pool)
        index = sum(1 for s in out if s.pool is server.pool)
        offset = ports_on_node.get(server.nodes[0], 0)
        ports_on_node[server.nodes[0]] = offset + 1
        name = _server_name(plan.target.spec.name, server.pool.name if several_pools else None,
                            index if engines > 1 else None)
        out.append(attrs.evolve(server, replica=index, port=plan.target.spec.operations.port + offset, name=name))
    return out


def nodes_used(servers: tuple[Server, ...]) -> int:
    """How many nodes the servers occupy."""
    return max((max(s.nodes) for s in servers), default=0) + 1


def local_dp(server: Server) -> int:
    """Data-parallel ranks of an engine on each of its nodes."""
    return math.ceil(server.engine_dp / len(server.nodes))
