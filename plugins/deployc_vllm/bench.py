"""``bench.sh`` for the vLLM servers: :mod:`deployc.contract.toolkit.bench` with vLLM's own image as the client."""

from __future__ import annotations

from typing import TYPE_CHECKING

from deployc.contract import Server
from deployc.contract.toolkit import Word
from deployc.contract.toolkit import bench as shared
from deployc.contract.toolkit.bench import BENCH_FLAGS, BenchClient, BenchTarget, range_ratio
from deployc.contract.toolkit.hftoken import token_export
from deployc_vllm import ENGINE, ENGINE_VERSION
from deployc_vllm.container import image_note

if TYPE_CHECKING:
    from deployc.contract import Deployment

__all__ = ["BENCH_FLAGS", "bench_script", "bench_words", "range_ratio"]


def bench_words(deployment: Deployment, server: Server, servers_in_pool: int) -> list[tuple[Word, ...]]:
    """The ``vllm bench serve`` arguments for one server, one option per line."""
    return shared.bench_words(deployment, server.pool, servers_in_pool)


def bench_script(deployment: Deployment, servers: tuple[Server, ...]) -> str:
    """``bench.sh``: one benchmark per server at its head node's address, each followed by its SLO check."""
    client = BenchClient(image=deployment.image.reference,
                         engine=f"{ENGINE} {ENGINE_VERSION} (image {deployment.image.reference})",
                         notes=tuple(n for n in (image_note(deployment),) if n),
                         token_export=token_export(deployment))
    return shared.bench_script(deployment, [BenchTarget(name=s.name, port=s.port, pool=s.pool, node=s.nodes[0])
                                           for s in servers],
                               client)
