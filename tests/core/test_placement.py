"""One placement stage for every backend: servers on nodes and GPU ids, ports, names and load, by policy."""

from __future__ import annotations

import pytest

from deployc.contract import (
    BackendInfo,
    Hardware,
    Knobs,
    Layout,
    PlacementPolicy,
    Pool,
    Prediction,
    TokenDistribution,
    Workload,
)
from deployc.contract.backend import DataParallel
from deployc.placement import PlacementError, place

LENGTHS = TokenDistribution(mean=1000)


def _pool(name: str, tp: int, dp: int = 1, ep: int = 1, traffic: float = 1.0) -> Pool:
    knobs = Knobs(dtype="bfloat16", weights_format="bf16", quantization=None, kv_cache_dtype="bfloat16",
                  max_model_len=8192, max_num_seqs=64, max_num_batched_tokens=8192, chunked_prefill=True,
                  prefix_caching=True, cuda_graphs=True, custom_all_reduce=True, memory_fraction=0.9)
    return Pool(name=name, share=1.0, traffic_share=traffic, layout=Layout(tp=tp, pp=1, dp=dp, ep=ep),
                pp_layer_split=(80,), knobs=knobs,
                performance=Prediction(ttft_ms=100.0, itl_ms=10.0, tokens_per_s=1000.0, batch_size=8.0),
                prompt_tokens=LENGTHS, output_tokens=LENGTHS)


def _hardware(nodes: int = 1, per_node: int = 8, gpu_ids: tuple[int, ...] | None = None) -> Hardware:
    return Hardware(nodes=nodes, gpus_per_node=per_node, gpu_ids=gpu_ids, network="ethernet-100g",
                    network_interface=None, ib_hcas=(), intra_node_link="nvlink4", reserved_memory_bytes=0,
                    cooling="datacenter", ambient_c=25.0)


def _info(data_parallel: DataParallel, ep_one: bool = True) -> BackendInfo:
    return BackendInfo(name="b", engine="E", engine_version="1", image="i", image_tag="1", summary="s",
                       placement=PlacementPolicy(data_parallel=data_parallel, expert_parallel_one_server=ep_one))


def _workload(concurrency: int | None = 10, rate: float | None = None) -> Workload:
    return Workload(kind="chat", prompt_tokens=LENGTHS, output_tokens=LENGTHS, concurrency=concurrency,
                    request_rate_per_s=rate, shared_prefix_tokens=0)


def _where(info: BackendInfo, pools: tuple[Pool, ...], hw: Hardware | None = None,
           workload: Workload | None = None) -> list[tuple[str, tuple[int, ...], tuple[int, ...], int, int]]:
    servers = place(info, pools, hw or _hardware(), 8000, "svc", workload or _workload())
    return [(s.name, s.nodes, s.gpu_ids, s.port, s.engine_dp) for s in servers]


def test_separate_servers_per_replica_take_the_next_ports() -> None:
    assert _where(_info("servers"), (_pool("main", tp=2, dp=3),)) == [
        ("svc-0", (0,), (0, 1), 8000, 1), ("svc-1", (0,), (2, 3), 8001, 1), ("svc-2", (0,), (4, 5), 8002, 1)]


def test_one_server_keeps_every_replica() -> None:
    assert _where(_info("one_server"), (_pool("main", tp=2, dp=3),)) == [("svc", (0,), (0, 1, 2, 3, 4, 5), 8000, 3)]


def test_replicas_on_one_node_merge_and_the_next_node_starts_again() -> None:
    hw = _hardware(nodes=2, per_node=4)
    assert _where(_info("one_server_per_node"), (_pool("main", tp=2, dp=4),), hw) == [
        ("svc-0", (0,), (0, 1, 2, 3), 8000, 2), ("svc-1", (1,), (0, 1, 2, 3), 8000, 2)]


def test_expert_parallel_replicas_are_one_server_across_nodes() -> None:
    hw = _hardware(nodes=2, per_node=8)
    assert _where(_info("servers"), (_pool("main", tp=8, dp=2, ep=16),), hw) == [
        ("svc", (0, 1), tuple(range(8)), 8000, 2)]
    assert _where(_info("servers", ep_one=False), (_pool("main", tp=8, dp=2, ep=16),), hw) == [
        ("svc-0", (0,), tuple(range(8)), 8000, 1), ("svc-1", (1,), tuple(range(8)), 8000, 1)]


def test_pools_are_named_and_use_the_spec_gpu_ids() -> None:
    pools = (_pool("short", tp=1, traffic=0.8), _pool("long", tp=2, traffic=0.2))
    assert _where(_info("servers"), pools, _hardware(per_node=4, gpu_ids=(4, 5, 6, 7))) == [
        ("svc-short", (0,), (4,), 8000, 1), ("svc-long", (0,), (5, 6), 8001, 1)]


def test_load_is_divided_among_a_pool_s_servers() -> None:
    servers = place(_info("servers"), (_pool("main", tp=1, dp=3),), _hardware(), 8000, "svc", _workload(10))
    assert [(s.load.concurrency, s.load.request_rate_per_s) for s in servers] == [(4, None)] * 3
    servers = place(_info("servers"), (_pool("main", tp=1, dp=2, traffic=0.5),), _hardware(), 8000, "svc",
                    _workload(None, rate=8.0))
    assert [(s.load.concurrency, s.load.request_rate_per_s, s.load.traffic_share) for s in servers] == \
        [(None, 2.0, 0.25)] * 2


def test_servers_that_do_not_fit_are_refused() -> None:
    with pytest.raises(PlacementError) as info:
        place(_info("servers"), (_pool("main", tp=4, dp=3),), _hardware(per_node=4), 8000, "svc", _workload())
    assert str(info.value) == "pool 'main' needs more than the spec's 1 node(s) of 4 GPUs"
    with pytest.raises(PlacementError) as info:
        place(_info("servers"), (_pool("main", tp=6),), _hardware(nodes=2, per_node=4), 8000, "svc", _workload())
    assert str(info.value) == "pool 'main': 6 GPUs per server is not a whole number of 4-GPU nodes"


