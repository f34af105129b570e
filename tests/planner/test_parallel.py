"""Parallel layouts: vLLM's PP split, the validity rules with their reasons, and the ranking."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from deployc.catalog import ModelArch, resolve_gpu, resolve_link, resolve_model
from deployc.planner.decisions import Quantity
from deployc.planner.parallel import (
    LayoutEvaluation,
    check_layout,
    enumerate_layouts,
    pp_layer_split,
    rank_layouts,
)
from deployc.planner.types import Layout, Performance


def catalog_model(name: str) -> ModelArch:
    """A catalog model (never downloaded)."""
    return resolve_model(name, base_dir=Path(), allow_download=False)


@pytest.mark.parametrize(
    ("layers", "pp", "split"),
    [
        (80, 1, (80,)),
        (80, 2, (40, 40)),
        (80, 3, (27, 27, 26)),  # remainder 2 goes to the stages before the last
        (32, 3, (11, 11, 10)),
        (61, 4, (15, 15, 16, 15)),  # remainder 1 goes to the second-to-last stage
        (62, 4, (15, 16, 16, 15)),
        (126, 8, (15, 16, 16, 16, 16, 16, 16, 15)),
        (7, 4, (2, 2, 2, 1)),
    ],
)
def test_pp_split_matches_vllm_get_pp_indices(layers: int, pp: int, split: tuple[int, ...]) -> None:
    # Expected values follow vLLM's loop: partitions[-i] += 1 for i in 2 .. remainder + 1.
    assert pp_layer_split(layers, pp) == split
    assert sum(split) == layers


def test_pp_split_last_stage_never_gets_the_remainder() -> None:
    for layers in range(8, 130):
        for pp in range(2, 9):
            split = pp_layer_split(layers, pp)
            assert split[-1] == layers // pp


def _qwen2_7b_like() -> ModelArch:
    base = catalog_model("Qwen2.5-7B")
    return attrs.evolve(base, name="Qwen2-7B-like")  # 28 heads / 4 KV heads, like Qwen2-7B (vllm#2652)


def _check(
    arch: ModelArch,
    layout: Layout,
    *,
    link: str = "nvlink4",
    gpus_per_node: int = 8,
    nodes: int = 1,
    block: int | None = None,
) -> tuple[bool, tuple[str, ...]]:
    c = check_layout(
        arch, layout, gpus_per_node=gpus_per_node, nodes=nodes, intra_link=resolve_link(link), weights_block_size=block
    )
    return c.valid, c.reasons


def test_heads_not_divisible_by_tp_is_rejected_with_the_numbers() -> None:
    valid, reasons = _check(_qwen2_7b_like(), Layout(tp=8, pp=1, dp=1))
    assert not valid
    assert reasons[0] == "28 attention heads are not divisible by TP8"


def test_kv_heads_fewer_than_tp_are_replicated_when_tp_is_a_multiple() -> None:
    model = catalog_model("Llama-3.1-8B")  # 32 heads, 8 KV heads
    assert attrs.evolve(model, num_kv_heads=2).num_kv_heads == 2
    assert _check(attrs.evolve(model, num_kv_heads=2), Layout(tp=4, pp=1, dp=1))[0]  # 4 % 2 == 0: replicate
    valid, reasons = _check(attrs.evolve(model, num_kv_heads=3, num_attention_heads=24), Layout(tp=4, pp=1, dp=1))
    assert not valid
    assert "TP4 is not a multiple of the 3 KV heads" in reasons[0]


def test_fp8_block_shards_must_be_multiples_of_the_block() -> None:
    model = catalog_model("Qwen3-30B-A3B")  # moe_intermediate_size 768
    valid, reasons = _check(model, Layout(tp=4, pp=1, dp=1), block=128)  # 768 / 4 = 192
    assert not valid
    assert reasons == (
        "FP8 block quantisation: moe_intermediate_size 768 / TP4 = 192 is not a multiple of the 128-wide block",
    )
    assert _check(model, Layout(tp=2, pp=1, dp=1), block=128)[0]  # 384 = 3 × 128
    assert _check(model, Layout(tp=4, pp=1, dp=1, ep=4), block=128)[0]  # experts whole under EP


def test_tp_never_crosses_a_node_and_bridges_hold_pairs() -> None:
    model = catalog_model("Llama-3.1-70B")
    valid, reasons = _check(model, Layout(tp=16, pp=1, dp=1), nodes=2)
    assert not valid
    assert reasons[0].startswith("TP16 would span 2 nodes")
    valid, reasons = _check(model, Layout(tp=4, pp=1, dp=1), link="nvlink-bridge", gpus_per_node=4)
    assert not valid
    assert "NVLink bridge joins 2 GPUs" in reasons[0]


def test_more_stages_than_layers_and_ep_rules() -> None:
    tiny = attrs.evolve(
        catalog_model("Llama-3.1-8B"), num_layers=2, layer_kinds=("full",) * 2, mlp_kinds=("dense",) * 2
    )
    assert "2 layers are fewer than the 4 pipeline stages" in _check(tiny, Layout(tp=1, pp=4, dp=1))[1]
    dense = catalog_model("Llama-3.1-8B")
    assert _check(dense, Layout(tp=2, pp=1, dp=1, ep=2))[1] == ("EP2 needs a mixture-of-experts model",)
    moe = catalog_model("Qwen3-30B-A3B")
    assert "EP must equal TP × DP = 4" in _check(moe, Layout(tp=2, pp=1, dp=2, ep=2))[1][0]


def test_enumeration_covers_dp_subsets_and_expert_parallel_variants() -> None:
    moe = catalog_model("Qwen3-30B-A3B")
    checks = enumerate_layouts(
        moe,
        gpus_per_node=4,
        nodes=1,
        gpu=resolve_gpu("H100 SXM"),
        intra_link=resolve_link("nvlink4"),
        weights_block_size=None,
    )
    labels = {c.layout.label() for c in checks}
    assert {"TP1", "TP2", "TP4", "TP1×DP4", "TP2×PP2", "TP4×EP4", "TP1×DP4×EP4", "TP1×PP4"} <= labels
    assert all(4 % c.layout.gpus_used == 0 for c in checks)


def test_sixteen_gpus_over_two_nodes_reject_tp16() -> None:
    checks = enumerate_layouts(
        catalog_model("Llama-3.1-70B"),
        gpus_per_node=8,
        nodes=2,
        gpu=resolve_gpu("H100 SXM"),
        intra_link=resolve_link("nvlink4"),
        weights_block_size=None,
    )
    by_label = {c.layout.label(): c for c in checks}
    assert not by_label["TP16"].valid
    assert by_label["TP8×PP2"].valid
    assert by_label["TP8×DP2"].valid


def _perf(itl: float, ttft: float, tps: float, gpus: int, terms: dict[str, float] | None = None) -> Performance:
    breakdown = tuple(Quantity(f"step: {k}", v, "ms") for k, v in (terms or {}).items())
    return Performance(
        ttft_ms=ttft,
        itl_ms=itl,
        tokens_per_s=tps,
        tokens_per_s_per_gpu=tps / gpus,
        bound="memory",
        bound_share=0.8,
        batch_size=1,
        step_breakdown=breakdown,
    )


def _eval(layout: Layout, perf: Performance | None, fits: bool = True, short: int = 0) -> LayoutEvaluation:
    return LayoutEvaluation(
        layout=layout,
        fits=fits,
        shortfall_bytes=short,
        kv_capacity_tokens=100_000,
        max_concurrency=10,
        performance=perf,
        meets_slo=False,
    )


def test_ranking_fit_then_slo_then_goal_with_reasons_in_numbers() -> None:
    tp4 = _eval(Layout(tp=4, pp=1, dp=1), _perf(41.0, 300, 900, 4, {"TP all-reduce": 18.0, "memory": 20.0}))
    tp2pp2 = _eval(Layout(tp=2, pp=2, dp=1), _perf(23.0, 350, 800, 4, {"TP all-reduce": 2.0, "memory": 20.0}))
    big = _eval(Layout(tp=1, pp=1, dp=4), None, fits=False, short=3 << 30)
    result = rank_layouts([tp4, big, tp2pp2], goal="latency", ttft_target_ms=None, itl_target_ms=None)
    assert result.best is tp2pp2
    assert [e.layout.label() for e in result.ranked] == ["TP2×PP2", "TP4", "TP1×DP4"]
    reasons = {a.value: a.reason for a in result.losers}
    assert reasons["TP4"] == (
        "ITL 41.0 ms vs 23.0 ms for TP2×PP2 (TTFT 300 vs 350 ms); TP all-reduce 18.00 ms per step vs 2.00 ms"
    )
    assert reasons["TP1×DP4"] == "does not fit: 3.0 GiB short per GPU for the longest sequence"


def test_slo_beats_the_goal_and_ties_go_to_fewer_gpus() -> None:
    fast = _eval(Layout(tp=4, pp=1, dp=1), _perf(20.0, 900, 1000, 4))
    slow = _eval(Layout(tp=2, pp=1, dp=1), _perf(30.0, 400, 600, 2))
    result = rank_layouts([fast, slow], goal="latency", ttft_target_ms=500, itl_target_ms=None)
    assert result.best is slow
    assert result.losers[0].reason == "misses the SLO (TTFT 900 ms > target 500 ms) which TP2 meets"
    a = _eval(Layout(tp=2, pp=1, dp=2), _perf(30.0, 400, 1200, 4))
    b = _eval(Layout(tp=2, pp=1, dp=1), _perf(30.0, 400, 600, 2))
    result = rank_layouts([a, b], goal="cost", ttft_target_ms=None, itl_target_ms=None)
    assert result.best is b
    assert "a tie, and TP2 uses fewer GPUs (2 vs 4)" in result.losers[0].reason
