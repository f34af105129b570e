"""The launch artifacts every backend emits: ``run.sh`` and ``compose.yaml`` on one node, per-node scripts and
the NCCL preflight across several."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from deployc.contract.backend import Artifact

if TYPE_CHECKING:
    from deployc.contract.deployment import Deployment, Server

PREFLIGHT_DESCRIPTION = "all_reduce_perf across the nodes, against the plan's bus bandwidth"


def single_node_artifacts(run_script: str, compose_yaml: str, run_description: str) -> list[Artifact]:
    """``run.sh`` (``run_description`` says what it starts) and the same servers as ``compose.yaml``."""
    return [Artifact(path="run.sh", content=run_script, executable=True, description=run_description),
            Artifact(path="compose.yaml", content=compose_yaml, description="the same servers for docker compose")]


def launch_artifacts(deployment: Deployment, *, run_script: Callable[[], str], compose_yaml: Callable[[], str],
                     run_description: str, node_scripts: Callable[[int], Iterable[Artifact]],
                     preflight_script: Callable[[], str]) -> list[Artifact]:
    """One node: :func:`single_node_artifacts`; several: each node's scripts, then ``preflight-nccl.sh`` when a
    server spans nodes (without one no collective crosses the fabric, and there is nothing to check)."""
    if deployment.nodes_used == 1:
        return single_node_artifacts(run_script(), compose_yaml(), run_description)
    out = [artifact for node in range(deployment.nodes_used) for artifact in node_scripts(node)]
    if any(server.spans_nodes for server in deployment.servers):
        out.append(Artifact(path="preflight-nccl.sh", content=preflight_script(), executable=True,
                            description=PREFLIGHT_DESCRIPTION))
    return out


def node_script_artifact(node: int, content: str) -> Artifact:
    """``node-N.sh``: what runs on node N."""
    return Artifact(path=f"node-{node}.sh", content=content, executable=True, description=f"what runs on node {node}")


def endpoints(servers: Sequence[Server]) -> str:
    """``node-0:8000, node-1:8000``: where each server's API listens (its first node, its port)."""
    return ", ".join(f"node-{s.nodes[0]}:{s.port}" for s in servers)


def balancer_note(servers: Sequence[Server]) -> str:
    """What spreads a pool's requests over its several servers, with their endpoints (contract 1.4).

    Each server is an independent engine with its own API port: none forwards requests to another, so
    clients need a load balancer (or a router) in front of them.
    """
    hosts = len({s.nodes[0] for s in servers})
    on = f"on {hosts} hosts" if hosts > 1 else "on one host"
    return (f"a load balancer (or router) in front of the {len(servers)} servers ({on}) must spread the requests "
            f"over their endpoints {endpoints(servers)}")
