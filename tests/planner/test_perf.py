"""The performance model: precision, roofline terms, PP/TP/EP effects, calibration data, worked examples."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import attrs
import pytest

from deployc.catalog import GPU, Link, ModelArch, resolve_gpu, resolve_link, resolve_model
from deployc.planner.formats import weight_format
from deployc.planner.parallel import Goal, LayoutEvaluation, SearchResult, enumerate_layouts, rank_layouts
from deployc.planner.perf import (
    PerfInputs,
    compute_precision,
    decode_step_time_s,
    estimate_performance,
    experts_touched_fraction,
    peak_flops,
    prefill_time_s,
)
from deployc.planner.types import Layout, Performance
from deployc.planner.weights import weights_per_gpu

GIB = 1 << 30


def catalog_model(name: str) -> ModelArch:
    """A catalog model (never downloaded)."""
    return resolve_model(name, base_dir=Path(), allow_download=False)


def intra_link(gpu: GPU) -> Link:
    if gpu.nvlink is not None:
        return resolve_link(f"nvlink{gpu.nvlink.gen}" if gpu.nvlink.topology == "nvswitch" else "nvlink-bridge")
    return resolve_link(f"pcie{gpu.pcie_gen}")


def kv_per_token(model: ModelArch, layout: Layout, dtype_bytes: float = 2.0) -> float:
    return 2 * model.num_layers * max(model.num_kv_heads / layout.tp, 1) * model.head_dim * dtype_bytes / layout.pp


def inputs(
    model: ModelArch,
    gpu_name: str,
    layout: Layout,
    fmt: str,
    *,
    concurrency: float = 1.0,
    prompt: float = 1000,
    output: float = 500,
    gpus_per_node: int = 8,
    network: str | None = None,
    **extra: object,
) -> PerfInputs:
    gpu = resolve_gpu(gpu_name)
    weights = weights_per_gpu(model, weight_format(fmt), tp=layout.tp, pp=layout.pp, ep=layout.ep)
    values: dict[str, object] = {
        "model": model,
        "gpu": gpu,
        "layout": layout,
        "intra_link": intra_link(gpu),
        "network": resolve_link(network) if network else None,
        "gpus_per_node": gpus_per_node,
        "weights_bytes_per_gpu": weights.total_bytes,
        "kv_bytes_per_token_per_gpu": kv_per_token(model, layout),
        "weights_format": fmt,
        "prompt_tokens": prompt,
        "output_tokens": output,
        "concurrency": concurrency,
        "expert_weights_bytes_per_gpu": weights.moe_expert_bytes,
        "embedding_bytes_per_gpu": weights.embedding_bytes,
    }
    values.update(extra)
    return PerfInputs(**values)  # type: ignore[arg-type]


def term(perf: Performance, label: str) -> float:
    return next(q.value for q in perf.step_breakdown if q.label == label)


# --- precision and peaks ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "gpu", "precision"),
    [
        ("fp8", "H100 SXM", "fp8"),
        ("fp8", "A100 80GB SXM", "bf16"),  # weight-only FP8 (Marlin) on Ampere
        ("awq", "L40S", "bf16"),
        ("gptq", "RTX PRO 6000 Blackwell", "bf16"),
        ("mxfp4", "H100 SXM", "bf16"),  # weight-only on Hopper
        ("mxfp4", "B200", "fp8"),
        ("nvfp4", "B200", "fp4"),
        ("bf16", "T4", "fp16"),  # no BF16 on Turing
    ],
)
def test_compute_precision(fmt: str, gpu: str, precision: str) -> None:
    assert compute_precision(fmt, resolve_gpu(gpu), 2)[0] == precision


def test_geforce_peaks_are_the_fp32_accumulate_rates() -> None:
    assert peak_flops(resolve_gpu("RTX 4090"), "bf16") == pytest.approx(165.2e12)  # catalog pitfall 2
    assert peak_flops(resolve_gpu("L40S"), "bf16") == pytest.approx(362.05e12)  # full rate on data-centre Ada


# --- roofline terms ----------------------------------------------------------------------------------


def test_batch_one_decode_is_memory_bound_and_reads_the_weights() -> None:
    model = catalog_model("Llama-3.1-8B")
    inp = inputs(model, "H100 SXM", Layout(tp=1, pp=1, dp=1), "bf16")
    step, bound, terms = decode_step_time_s(inp, 1, 1250)
    assert bound == "memory"
    read = next(q.value for q in terms if q.label == "weights read per step per GPU") * 1e9
    embedding = model.vocab_size * model.hidden_size * 2
    assert read == pytest.approx(inp.weights_bytes_per_gpu - embedding)  # only the batch's embedding rows
    assert step > read / inp.gpu.mem_bandwidth_bytes_per_s  # never faster than the HBM line rate


def test_large_batches_amortise_the_weights() -> None:
    inp = inputs(catalog_model("Llama-3.1-8B"), "H100 SXM", Layout(tp=1, pp=1, dp=1), "bf16")
    one, _, _ = decode_step_time_s(inp, 1, 1250)
    many, _, _ = decode_step_time_s(inp, 64, 1250)
    assert one < many < 64 * one / 8


def test_long_prefill_is_compute_bound_near_the_flop_formula() -> None:
    model = catalog_model("Llama-3.1-8B")
    inp = inputs(model, "H100 SXM", Layout(tp=1, pp=1, dp=1), "bf16")
    seconds, numbers = prefill_time_s(inp, 8192)
    compute_ms = next(q.value for q in numbers if q.label == "prefill compute")
    assert compute_ms > 0.8 * seconds * 1e3
    flops = 2 * 8.03e9 * 8192  # + attention
    assert seconds > flops / 989e12


def test_moe_decode_reads_only_the_experts_the_batch_touches() -> None:
    model = catalog_model("Qwen3-30B-A3B")  # 128 experts, top-8
    assert experts_touched_fraction(model, 1) == pytest.approx(8 / 128)
    assert experts_touched_fraction(model, 512) > 0.99
    inp = inputs(model, "H100 SXM", Layout(tp=1, pp=1, dp=1), "bf16")
    _, _, one = decode_step_time_s(inp, 1, 1000)
    _, _, full = decode_step_time_s(inp, 256, 1000)
    read = {
        label: next(q.value for q in t if q.label == "weights read per step per GPU")
        for label, t in (("one", one), ("full", full))
    }
    assert read["one"] < 0.25 * read["full"]


def test_tp_cuts_latency_pp_does_not() -> None:
    model = catalog_model("Llama-3.1-70B")
    tp2 = estimate_performance(inputs(model, "H100 SXM", Layout(tp=2, pp=1, dp=1), "fp8"))
    tp4 = estimate_performance(inputs(model, "H100 SXM", Layout(tp=4, pp=1, dp=1), "fp8"))
    tp2pp2 = estimate_performance(inputs(model, "H100 SXM", Layout(tp=2, pp=2, dp=1), "fp8"))
    assert tp4.itl_ms < 0.75 * tp2.itl_ms
    assert tp2pp2.itl_ms >= tp2.itl_ms  # a token still crosses every layer's weights in turn
    assert term(tp2pp2, "step: PP hand-off") > 0


def test_prefix_cache_cuts_ttft_and_power_cap_hurts_prefill_more_than_decode() -> None:
    model = catalog_model("Llama-3.1-8B")
    base = inputs(model, "L40S", Layout(tp=1, pp=1, dp=1), "bf16", prompt=4000)
    cached = estimate_performance(attrs.evolve(base, prefix_cached_tokens=3000))
    full = estimate_performance(base)
    assert cached.ttft_ms < 0.4 * full.ttft_ms
    capped = estimate_performance(attrs.evolve(base, power_limit_fraction=0.5))
    assert capped.ttft_ms / full.ttft_ms > capped.itl_ms / full.itl_ms > 1
    assert any("Power capped at 50%" in a for a in capped.assumptions)


def test_eager_mode_costs_launch_time_and_queueing_is_stated() -> None:
    base = inputs(catalog_model("Llama-3.1-8B"), "H100 SXM", Layout(tp=2, pp=1, dp=1), "bf16")
    graphs = estimate_performance(base)
    eager = estimate_performance(attrs.evolve(base, cuda_graphs=False))
    assert eager.itl_ms > graphs.itl_ms
    assert graphs.assumptions[0].startswith("Queueing is ignored")


def test_replicas_multiply_throughput_but_not_requests_that_do_not_exist() -> None:
    model = catalog_model("Llama-3.1-8B")
    one = estimate_performance(inputs(model, "H100 SXM", Layout(tp=1, pp=1, dp=1), "bf16", concurrency=8))
    two = estimate_performance(inputs(model, "H100 SXM", Layout(tp=1, pp=1, dp=2), "bf16", concurrency=8))
    assert two.tokens_per_s == pytest.approx(2 * one.tokens_per_s)
    half = estimate_performance(inputs(model, "H100 SXM", Layout(tp=1, pp=1, dp=2), "bf16", concurrency=0.5))
    solo = estimate_performance(inputs(model, "H100 SXM", Layout(tp=1, pp=1, dp=1), "bf16", concurrency=1))
    assert half.tokens_per_s == pytest.approx(solo.tokens_per_s)  # one request in flight in total


# --- calibration data ----------------------------------------------------------------------------------


def test_calibration_rows_and_factors_cite_their_sources() -> None:
    text = resources.files("deployc.planner").joinpath("data", "calibration.json").read_text(encoding="utf-8")
    doc = json.loads(text)
    rows = doc["rows"]
    assert len([r for r in rows if r.get("fit", True)]) >= 8
    for row in rows:
        assert row["source"] and row["locator"], row["id"]
        assert row["measured"] > 0
        resolve_gpu(row["gpu"])
        catalog_model(row["model"])
    factors = doc["factors"]
    for entry in [*factors["by_family"].values(), factors["default"]]:
        assert entry["source"].startswith(("fitted by bench/perf_accuracy.py", "used for GPU families"))
        assert 0 < entry["prefill_compute"] <= 1 and 0 < entry["decode_bandwidth"] <= 1
    for key in ("step_overhead_s", "layer_overhead_s", "eager_layer_overhead_s"):
        assert factors[key]["source"]


# --- worked examples: the layout search with a stand-in memory fit -------------------------------------


def search(
    model_name: str,
    gpu_name: str,
    fmt: str,
    *,
    gpus_per_node: int,
    nodes: int = 1,
    concurrency: float,
    goal: Goal,
    max_context: int = 4096,
    prompt: int = 1000,
    output: int = 500,
) -> SearchResult:
    """Every valid layout evaluated: stand-in memory (90% of memory − 2 GiB, minus weights, holds the KV
    cache; the layout fits when one max-context sequence fits), concurrency split over replicas."""
    model, gpu = catalog_model(model_name), resolve_gpu(gpu_name)
    checks = enumerate_layouts(
        model, gpus_per_node=gpus_per_node, nodes=nodes, gpu=gpu, intra_link=intra_link(gpu), weights_block_size=None
    )
    evaluations = []
    for check in (c for c in checks if c.valid):
        lay = check.layout
        weights = weights_per_gpu(model, weight_format(fmt), tp=lay.tp, pp=lay.pp, ep=lay.ep)
        per_token = kv_per_token(model, lay)
        capacity = (gpu.memory_bytes * 0.9 - 2 * GIB - weights.total_bytes) / per_token
        fits = capacity >= max_context
        load = min(concurrency / lay.dp, max(capacity / (prompt + output), 1.0))
        perf = (
            estimate_performance(
                inputs(
                    model,
                    gpu_name,
                    lay,
                    fmt,
                    concurrency=load,
                    prompt=prompt,
                    output=output,
                    gpus_per_node=gpus_per_node,
                    network="ib-ndr" if nodes > 1 else None,
                )
            )
            if fits
            else None
        )
        evaluations.append(
            LayoutEvaluation(
                layout=lay,
                fits=fits,
                shortfall_bytes=0 if fits else int((max_context - capacity) * per_token),
                kv_capacity_tokens=int(max(capacity, 0)),
                max_concurrency=capacity / (prompt + output),
                performance=perf,
                meets_slo=False,
            )
        )
    return rank_layouts(
        evaluations,
        goal=goal,
        ttft_target_ms=None,
        itl_target_ms=None,
        rejected=checks,
    )


def by_label(result: SearchResult) -> dict[str, LayoutEvaluation]:
    return {e.layout.label(): e for e in result.ranked}


def perf_of(result: SearchResult, label: str) -> Performance:
    perf = by_label(result)[label].performance
    assert perf is not None
    return perf


def reason(result: SearchResult, label: str) -> str:
    return next(a.reason for a in result.losers if a.value == label)


@pytest.mark.parametrize("gpu", ["L40S", "RTX PRO 6000 Blackwell"])
def test_70b_awq_on_four_pcie_gpus_latency_shows_the_tp4_all_reduce(gpu: str) -> None:
    result = search("Llama-3.1-70B", gpu, "awq", gpus_per_node=4, concurrency=1, goal="latency")
    assert result.best is not None
    assert result.best.layout.label() == "TP4"  # at one request, reading a quarter of the weights wins
    tp4, tp2pp2 = perf_of(result, "TP4"), perf_of(result, "TP2×PP2")
    allreduce = term(tp4, "step: TP all-reduce")
    assert allreduce > 0.15 * tp4.itl_ms  # 160 PCIe all-reduces per token are a fifth of the step or more
    assert term(tp4, "TP all-reduce count") == 160
    assert term(tp4, "TP all-reduce each") > 15  # µs per all-reduce, vs ~6 µs on NVLink
    assert tp2pp2.itl_ms > tp4.itl_ms
    assert reason(result, "TP2×PP2").startswith(f"ITL {tp2pp2.itl_ms:.1f} ms vs {tp4.itl_ms:.1f} ms for TP4")
    assert "TP1×PP4" in by_label(result)


@pytest.mark.parametrize("gpu", ["L40S", "RTX PRO 6000 Blackwell"])
def test_70b_awq_on_four_pcie_gpus_throughput_prefers_replicas(gpu: str) -> None:
    result = search("Llama-3.1-70B", gpu, "awq", gpus_per_node=4, concurrency=64, goal="throughput")
    assert result.best is not None
    assert result.best.layout.dp >= 2  # PP or DP across PCIe, not TP4
    tp4 = perf_of(result, "TP4")
    assert tp4.tokens_per_s < result.best.performance.tokens_per_s  # type: ignore[union-attr]
    assert term(tp4, "step: TP all-reduce") > term(result.best.performance, "step: TP all-reduce")  # type: ignore[arg-type]
    assert reason(result, "TP4").startswith(f"{round(tp4.tokens_per_s):,} tokens/s vs")


def test_four_replicas_only_where_one_gpu_holds_the_model() -> None:
    big = search("Llama-3.1-70B", "RTX PRO 6000 Blackwell", "awq", gpus_per_node=4, concurrency=64, goal="throughput")
    assert by_label(big)["TP1×DP4"].fits  # 96 GB holds 4-bit 70B
    small = search(
        "Llama-3.1-70B", "L40S", "awq", gpus_per_node=4, concurrency=64, goal="throughput", max_context=16384
    )
    assert not by_label(small)["TP1×DP4"].fits  # 48 GB does not leave room for a 16K sequence
    assert reason(small, "TP1×DP4").startswith("does not fit")


@pytest.mark.parametrize("fmt", ["bf16", "fp8"])
def test_70b_on_four_nvlink_h100_tp4_wins_latency_and_all_reduce_is_small(fmt: str) -> None:
    result = search("Llama-3.1-70B", "H100 SXM", fmt, gpus_per_node=4, concurrency=1, goal="latency")
    assert result.best is not None and result.best.layout.label() == "TP4"
    tp4 = perf_of(result, "TP4")
    assert term(tp4, "step: TP all-reduce") < 0.1 * tp4.itl_ms


def test_8_h100_70b_fp8_keeps_tp_inside_the_node() -> None:
    result = search("Llama-3.1-70B", "H100 SXM", "fp8", gpus_per_node=8, concurrency=16, goal="latency")
    assert result.best is not None
    assert result.best.layout.label() == "TP8"


def test_16_gpus_on_two_nodes_never_tp16() -> None:
    fits_one_node = search("Llama-3.1-70B", "H100 SXM", "fp8", gpus_per_node=8, nodes=2, concurrency=64, goal="latency")
    assert fits_one_node.best is not None and fits_one_node.best.layout.label() == "TP8×DP2"
    needs_two = search("Llama-3.1-405B", "H100 SXM", "bf16", gpus_per_node=8, nodes=2, concurrency=16, goal="latency")
    assert needs_two.best is not None and needs_two.best.layout.label() == "TP8×PP2"
    assert any(c.layout.label() == "TP16" for c in needs_two.rejected)
