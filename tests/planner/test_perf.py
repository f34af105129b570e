"""The performance model: precision, roofline terms, PP/TP/EP effects, calibration data, and worked examples
planned end to end by the real planner."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import attrs
import pytest

from deployc.api import plan
from deployc.catalog import GPU, Link, ModelArch, param_counts, resolve_gpu, resolve_link, resolve_model
from deployc.planner.calibration import calibration, efficiency, step_overhead_s
from deployc.planner.decisions import Quantity
from deployc.planner.formats import weight_format
from deployc.planner.perf import (
    PerfInputs,
    compute_precision,
    decode_step_time_s,
    effective_context,
    estimate_performance,
    experts_touched_fraction,
    layer_launch_ratio,
    peak_flops,
    prefill_time_s,
    routed_active_params,
    stage_cost,
)
from deployc.planner.plan import Plan
from deployc.planner.types import Layout, Performance
from deployc.planner.weights import weights_per_gpu
from tests.conftest import REPO

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


def test_launch_gap_grows_with_the_gemms_a_layer_launches() -> None:
    # Dense GQA layers are what t_layer was fitted on: 4 GEMMs, ratio 1.
    assert layer_launch_ratio(catalog_model("Llama-3.1-8B")) == 1.0
    # gpt-oss: GQA attention (2) + router and two grouped GEMMs (3) in every layer: 5/4.
    assert layer_launch_ratio(catalog_model("gpt-oss-120b")) == 1.25
    # DeepSeek-R1: MLA (5) everywhere, 3 dense MLP layers (2), 58 MoE layers with a shared expert (3 + 2).
    assert layer_launch_ratio(catalog_model("DeepSeek-R1")) == pytest.approx((5 * 61 + 2 * 3 + 5 * 58) / (4 * 61))
    r1 = inputs(catalog_model("DeepSeek-R1"), "H200 SXM", Layout(tp=8, pp=1, dp=1), "fp8")
    stage = stage_cost(r1, new_tokens=0, context_before=0, decode_batch=4, decode_context=2000)
    assert stage.overhead_s == pytest.approx(61 * calibration().layer_overhead_s * layer_launch_ratio(r1.model))


def test_mxfp4_experts_read_one_copy_of_the_touched_experts_scales() -> None:
    model = catalog_model("gpt-oss-120b")  # MXFP4 experts, BF16 attention: every scale is an expert scale
    w = weights_per_gpu(model, weight_format("mxfp4"), tp=1, pp=1)
    inp = inputs(model, "H100 SXM", Layout(tp=1, pp=1, dp=1), "mxfp4")
    touched = experts_touched_fraction(model, 4)
    one_copy = w.scales_bytes / 2  # vLLM keeps the checkpoint's scales beside the swizzled copy
    # one E8M0 byte per 32 FP4 elements (the expert bytes also hold BF16 biases, hence not exact)
    assert one_copy == pytest.approx(w.moe_expert_bytes / 16, rel=5e-3)
    expected = w.total_bytes - w.embedding_bytes - w.moe_expert_bytes - w.scales_bytes + (
        w.moe_expert_bytes + one_copy) * touched
    stage = stage_cost(inp, new_tokens=0, context_before=0, decode_batch=4, decode_context=1000)
    assert stage.weights_read_bytes == pytest.approx(expected, rel=1e-3)
    full = stage_cost(inp, new_tokens=8192, context_before=0, decode_batch=0, decode_context=0)
    assert full.weights_read_bytes == pytest.approx(w.total_bytes - w.embedding_bytes - one_copy, rel=1e-3)


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


BENCH_DATA = Path(__file__).resolve().parents[2] / "bench" / "data"


def calibration_doc() -> dict[str, Any]:
    text = resources.files("deployc.planner").joinpath("data", "calibration.json").read_text(encoding="utf-8")
    doc: dict[str, Any] = json.loads(text)
    return doc


def test_calibration_rows_and_factors_cite_their_sources() -> None:
    doc = calibration_doc()
    rows = doc["rows"]
    assert len([r for r in rows if r.get("fit", True)]) >= 8
    for row in rows:
        assert row["source"] and row["locator"], row["id"]
        assert row["measured"] > 0
        resolve_gpu(row["gpu"])
        # Models the catalog lacks are config.json files under bench/data (bench/perf_accuracy.py).
        resolve_model(row["model"], base_dir=BENCH_DATA, allow_download=False)
    factors = doc["factors"]
    for entry in [*factors["by_family"].values(), factors["default"], *factors["by_gpu"].values()]:
        assert "fitted by bench/perf_accuracy.py" in entry["source"]
        assert 0 < entry["prefill_compute"] <= 1 and 0 < entry["decode_bandwidth"] <= 1
    for key in ("step_overhead_s", "layer_overhead_s", "eager_layer_overhead_s", "moe_compute"):
        assert factors[key]["source"]
    assert 0 < factors["moe_compute"]["value"] <= 1


def test_every_fitted_factor_names_rows_that_exist_and_are_fitted() -> None:
    doc = calibration_doc()
    fitted = {r["id"] for r in doc["rows"] if r.get("fit", True) is not False}
    factors = doc["factors"]
    entries = [*factors["by_family"].values(), *factors["by_gpu"].values(), factors["moe_compute"]]
    for entry in entries:
        named = entry["source"].split(" rows: ", 1)[1].split(";")[0].split(", ")
        assert named and set(named) <= fitted, entry["source"]
    moe_rows = factors["moe_compute"]["source"].split(" rows: ", 1)[1].split(", ")
    models = {r["id"]: r["model"] for r in doc["rows"]}
    assert all(resolve_model(models[i], base_dir=BENCH_DATA, allow_download=False).is_moe for i in moe_rows)


def test_a_gpu_with_its_own_factors_overrides_its_family() -> None:
    cal = calibration()
    rtx, l40s = resolve_gpu("RTX 4090"), resolve_gpu("L40S")
    assert rtx.arch == l40s.arch == "ada"
    assert efficiency(rtx) == cal.by_gpu["RTX 4090"]
    assert efficiency(l40s) == cal.by_family["ada"]
    assert efficiency(rtx).decode_bandwidth > efficiency(l40s).decode_bandwidth
    own = cal.by_gpu["RTX 4090"].step_overhead_s
    assert own is not None and step_overhead_s(rtx) == own
    assert step_overhead_s(l40s) == cal.step_overhead_s
    # A batch-1 decode step on the 4090 reads the weights at its own bandwidth plus its own step cost.
    model = catalog_model("Llama-3.1-8B")
    x = inputs(model, "RTX 4090", Layout(tp=1, pp=1, dp=1), "bf16", gpus_per_node=1)
    step, _, terms = decode_step_time_s(x, 1, 1000)
    q = {t.label: t.value for t in terms}
    read = (q["weights read per step per GPU"] + q["KV read per step per GPU"]) * 1e9
    memory = read / (rtx.mem_bandwidth_bytes_per_s * cal.by_gpu["RTX 4090"].decode_bandwidth)
    layers = model.num_layers * cal.layer_overhead_s
    assert step == pytest.approx(memory + layers + own)


def test_routed_expert_math_runs_at_the_moe_factor_of_the_16bit_peak() -> None:
    model = catalog_model("gpt-oss-120b")
    x = inputs(model, "H100 SXM", Layout(tp=1, pp=1, dp=1), "mxfp4")
    tokens = 8192
    cost = stage_cost(x, new_tokens=tokens, context_before=0, decode_batch=0, decode_context=0)
    expert = 2 * routed_active_params(model) * tokens
    per_token = model.num_moe_layers * model.experts_per_token * param_counts(model).per_expert
    assert routed_active_params(model) == per_token
    dense_part = cost.compute_s - expert / (peak_flops(x.gpu, "bf16") * calibration().moe_compute)
    # What is left is the non-expert math at the prefill factor of the precision's peak.
    eff = efficiency(x.gpu)
    attention_and_rest = dense_part * peak_flops(x.gpu, "bf16") * eff.prefill_compute
    # QKᵀ and AV: 2 × heads × (q + v head dims) per (query, key) pair and layer; causal, sliding layers capped.
    pairs = tokens * effective_context(model, tokens / 2)
    attention = model.num_layers * 2 * model.num_attention_heads * (model.q_head_dim + (model.v_head_dim or
                                                                                      model.head_dim)) * pairs
    assert attention_and_rest == pytest.approx(2 * param_counts(model).active * tokens - expert + attention, rel=1e-9)
    # A dense model has no expert term.
    assert routed_active_params(catalog_model("Llama-3.1-8B")) == 0


def test_moe_prefill_is_slower_with_a_lower_moe_factor(monkeypatch: pytest.MonkeyPatch) -> None:
    import deployc.planner.calibration as calibration_module

    model = catalog_model("DeepSeek-R1")
    x = inputs(model, "H200 SXM", Layout(tp=8, pp=1, dp=1), "fp8", prompt=8192)
    base = calibration()
    slow, _ = prefill_time_s(x, 8192)
    monkeypatch.setattr(calibration_module, "calibration", lambda: attrs.evolve(base, moe_compute=base.moe_compute * 2))
    fast, _ = prefill_time_s(x, 8192)
    assert fast < slow
    dense = inputs(catalog_model("Llama-3.1-70B"), "H100 SXM", Layout(tp=4, pp=1, dp=1), "bf16")
    after, _ = prefill_time_s(dense, 8192)
    monkeypatch.setattr(calibration_module, "calibration", lambda: base)
    before, _ = prefill_time_s(dense, 8192)
    assert after == before  # the MoE factor never touches a dense model


# --- worked examples: the real planner (deployc.api.plan) on specs ---------------------------------------

AWQ_70B = ("hugging-quants/Meta-Llama-3.1-70B-Instruct-AWQ-INT4",
           REPO / "samples" / "models" / "llama-3.1-70b-instruct-awq-int4")
# A loser's reason in numbers: simulated ("simulated 5,100 output tokens/s vs 6,200 for TP2 (...)", "simulated TTFT
# p99 .., ITL p99 20.1 ms, end-to-end p99 .. vs .., 18.0 ms, .. for TP4") or, for layouts the analytic filter kept
# out, its analytic reason ("... (ITL 20.1 ms vs 18.0 ms for TP4 (TTFT ...") / "(5,100 tokens/s vs 6,200 for TP2").
TOKENS_PER_S = re.compile(r"([\d,]+) (?:output )?tokens/s vs ([\d,]+) for ([^;\s)]+)")
ITL = re.compile(r"ITL (?:p99 )?(\d+\.\d) ms(?:, end-to-end p99 [\d,]+ ms vs [\d,]+ ms, (\d+\.\d) ms, [\d,]+ ms"
                 r"| vs (\d+\.\d) ms) for ([^;\s)]+)")


def itl_loss(reason: str) -> tuple[float, float, str] | None:
    """(loser ITL, winner ITL, winner) from a loser's reason, simulated or analytic."""
    found = ITL.search(reason)
    if found is None:
        return None
    return float(found.group(1)), float(found.group(2) or found.group(3)), found.group(4)


def planned(write_spec: Callable[[str], Path], model: str, gpu: str, quantization: str, *, gpus_per_node: int,
            concurrency: int, goal: str, nodes: int = 1, prompt_p99: int = 3000) -> Plan:
    """Plan a chat workload (1,000-token prompts, 500-token answers on average) with the vLLM backend."""
    model_lines = f'id = "{model}"\nquantization = "{quantization}"\n'
    if model == AWQ_70B[0]:
        model_lines += f'config = "{AWQ_70B[1]}"\n'
    network = 'network = "ib-ndr"\n' if nodes > 1 else ""
    text = (f'version = 1\nname = "worked"\n\n[model]\n{model_lines}\n[hardware]\ngpu = "{gpu}"\n'
            f"gpus_per_node = {gpus_per_node}\nnodes = {nodes}\n{network}\n[workload]\n"
            f"prompt_tokens = {{ mean = 1000, p99 = {prompt_p99} }}\noutput_tokens = {{ mean = 500, p99 = 1000 }}\n"
            f'concurrency = {concurrency}\n\n[slo]\ngoal = "{goal}"\n')
    result, _ = plan(write_spec(text), backend="vllm")
    return result


def losers(result: Plan) -> dict[str, str]:
    """The parallelism decision's rejected layouts and why."""
    decision = result.decision("parallelism")
    assert decision is not None
    return {str(a.value): a.reason for a in decision.rejected}


def quantity(perf: Performance, label: str) -> Quantity:
    return next(q for q in perf.step_breakdown if q.label == label)


@pytest.mark.parametrize("gpu", ["L40S", "RTX PRO 6000 Blackwell"])
def test_70b_awq_on_four_pcie_gpus_latency_shows_the_tp4_all_reduce(
        gpu: str, write_spec: Callable[[str], Path]) -> None:
    result = planned(write_spec, AWQ_70B[0], gpu, "awq", gpus_per_node=4, concurrency=1, goal="latency")
    assert result.target.intra_node_link.kind == "pcie"
    assert result.primary.layout.label() == "TP4"  # at one request, reading a quarter of the weights wins
    assert result.primary.knobs.weights_format == "awq"
    tp4 = result.primary.performance
    allreduce = term(tp4, "step: TP all-reduce")
    assert allreduce > 0.15 * tp4.itl_ms  # 160 PCIe all-reduces per token are a fifth of the step or more
    assert term(tp4, "TP all-reduce count") == 160  # two per layer, 80 layers
    each = quantity(tp4, "TP all-reduce each")
    assert each.value > 15  # µs per all-reduce, vs ~6 µs on NVLink
    assert each.unit == f"µs on {result.target.intra_node_link.id}"
    decision = result.decision("parallelism")
    assert decision is not None
    assert decision.reason.startswith("best of 10 valid layouts for the latency goal")  # every split of 1, 2, 4 GPUs
    found = itl_loss(losers(result)["TP2×PP2"])
    assert found is not None and found[2] == "TP4"
    assert found[0] > found[1]


@pytest.mark.parametrize("gpu", ["L40S", "RTX PRO 6000 Blackwell"])
def test_70b_awq_on_four_pcie_gpus_throughput_does_not_pay_for_tp4(gpu: str, write_spec: Callable[[str], Path]) -> None:
    result = planned(write_spec, AWQ_70B[0], gpu, "awq", gpus_per_node=4, concurrency=64, goal="throughput")
    best = result.primary.layout
    assert best.tp < 4 and best.gpus_used == 4  # PP or DP across PCIe, every GPU busy, not TP4
    found = TOKENS_PER_S.search(losers(result)["TP4"])
    assert found is not None and found.group(3) == best.label()
    assert int(found.group(1).replace(",", "")) < int(found.group(2).replace(",", ""))


def test_four_replicas_only_where_one_gpu_holds_the_model(write_spec: Callable[[str], Path]) -> None:
    """A replica per GPU needs one GPU to hold 4-bit 70B and the p99 request (16K prompt + 1K answer)."""
    long = {"concurrency": 64, "goal": "throughput", "prompt_p99": 16000}
    one_big = planned(write_spec, AWQ_70B[0], "RTX PRO 6000 Blackwell", "awq", gpus_per_node=1, **long)
    assert one_big.primary.layout.label() == "TP1"  # 96 GB holds both
    four_big = planned(write_spec, AWQ_70B[0], "RTX PRO 6000 Blackwell", "awq", gpus_per_node=4, **long)
    replicas = losers(four_big).get("TP1×DP4", "")
    assert four_big.primary.layout.label() == "TP1×DP4" or TOKENS_PER_S.search(replicas), replicas
    # 48 GB holds them only with an FP8 KV cache and 2,048-token steps (smaller activations than the 8,192 the
    # layouts are first planned at): the budget is capped there.
    one_small = planned(write_spec, AWQ_70B[0], "L40S", "awq", gpus_per_node=1, **long)
    assert (one_small.primary.knobs.kv_cache_dtype, one_small.primary.knobs.max_num_batched_tokens) == ("fp8", 2048)
    assert one_small.primary.memory.kv_capacity_tokens >= 17000
    four_small = planned(write_spec, AWQ_70B[0], "L40S", "awq", gpus_per_node=4, **long)
    assert four_small.primary.layout.gpus_per_replica > 1
    assert losers(four_small).get("TP1×DP4", "does not fit").startswith("does not fit")


@pytest.mark.parametrize("quantization", ["none", "fp8"])
def test_70b_on_four_nvlink_h100_tp4_wins_latency_and_all_reduce_is_small(
        quantization: str, write_spec: Callable[[str], Path]) -> None:
    result = planned(write_spec, "Llama-3.1-70B", "H100 SXM", quantization, gpus_per_node=4, concurrency=1,
                     goal="latency")
    assert result.target.intra_node_link.kind == "nvlink"
    assert result.primary.knobs.weights_format == ("bf16" if quantization == "none" else "fp8")
    assert result.primary.layout.label() == "TP4"
    tp4 = result.primary.performance
    assert term(tp4, "step: TP all-reduce") < 0.1 * tp4.itl_ms
    assert term(tp4, "TP all-reduce each") < 10  # µs


def test_8_h100_70b_fp8_keeps_tp_inside_the_node(write_spec: Callable[[str], Path]) -> None:
    result = planned(write_spec, "Llama-3.1-70B", "H100 SXM", "fp8", gpus_per_node=8, concurrency=16,
                     goal="latency")
    assert result.primary.layout.label() == "TP8"


def test_16_gpus_on_two_nodes_never_tp16(write_spec: Callable[[str], Path]) -> None:
    fits_one_node = planned(write_spec, "Llama-3.1-70B", "H100 SXM", "fp8", gpus_per_node=8, nodes=2,
                            concurrency=64, goal="latency")
    layout = fits_one_node.primary.layout
    assert layout.tp == 8 and layout.gpus_used == 16  # TP fills a node; the second node is a replica or a stage
    assert losers(fits_one_node)["TP16"].startswith("TP16 would span 2 nodes")
    needs_two = planned(write_spec, "Llama-3.1-405B", "H100 SXM", "none", gpus_per_node=8, nodes=2, concurrency=16,
                        goal="latency")
    assert needs_two.primary.layout.label() == "TP8×PP2"
    assert needs_two.primary.pp_layer_split == (63, 63)
    assert losers(needs_two)["TP16"].startswith("TP16 would span 2 nodes")
    assert losers(needs_two)["TP8"].startswith("does not fit")  # bf16 405B needs both nodes
