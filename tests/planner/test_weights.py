"""Weight bytes per GPU: hand-computed cases, the placement rules, and vLLM's own start-up logs."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from deployc.catalog import ModelArch, load_models, model_from_hf_config, param_counts
from deployc.planner.formats import (
    WEIGHT_FORMATS,
    format_for_checkpoint,
    kv_dtype_bytes,
    linear_bytes,
    weight_format,
)
from deployc.planner.weights import padded_vocab_per_rank, pp_stage_layers, weights_per_gpu
from tests.conftest import REPO

GIB = 1 << 30
FIXTURES = REPO / "tests" / "fixtures"
CATALOG = {m.name: m.arch for m in load_models()}
BF16 = weight_format("bf16")


def fixture_arch(name: str) -> ModelArch:
    config = json.loads((FIXTURES / "hf_configs" / f"{name}.json").read_text())
    return model_from_hf_config(config, name=name, source=name)


# Engine cases (tests/fixtures/engine_memory_cases.json, a copy of the research reference) → architecture.
CASE_ARCH = {
    "Qwen/Qwen2-7B-Instruct": lambda: fixture_arch("qwen2"),
    "Qwen/Qwen2.5-7B-Instruct-AWQ": lambda: fixture_arch("qwen2_5_7b_instruct_awq"),
    "Qwen/QwQ-32B": lambda: CATALOG["Qwen2.5-32B"],  # QwQ-32B has the Qwen2.5-32B shape
    "meta-llama/Llama-3.1-8B-Instruct": lambda: CATALOG["Llama-3.1-8B"],
    "meta-llama/Meta-Llama-3-8B": lambda: CATALOG["Llama-3.1-8B"],  # same weights; Llama 3 has 8K positions
    "meta-llama/Llama-2-70b-hf": lambda: CATALOG["Llama-2-70B"],
    "Qwen/Qwen3-32B": lambda: CATALOG["Qwen3-32B"],
    "openai/gpt-oss-20b": lambda: CATALOG["gpt-oss-20b"],
    "TechxGenus/DeepSeek-V2-Lite-Chat-AWQ": lambda: fixture_arch("deepseek_v2_lite_chat_awq"),
}
CASES = json.loads((FIXTURES / "engine_memory_cases.json").read_text())["cases"]
WEIGHT_CASES = [c for c in CASES if "weights_gib" in c["observed"]]


def case_id(case: dict[str, Any]) -> str:
    if case["engine"] != "vllm":
        return f"{case['id']} ({case['engine']})"
    return f"{case['id']} (vllm {'V0' if 'V0' in case['engine_version'] else 'V1'})"


@pytest.mark.parametrize("case", WEIGHT_CASES, ids=case_id)
def test_predicted_weights_within_2_percent_of_engine_logs(case: dict[str, Any]) -> None:
    arch = CASE_ARCH[case["arch_key"]]()
    fmt = weight_format("fp16" if case["dtype"].startswith("float16") else "bf16")
    weights = weights_per_gpu(arch, fmt, tp=case["tensor_parallel_size"], pp=case["pipeline_parallel_size"])
    observed = case["observed"]["weights_gib"] * GIB
    assert weights.total_bytes == pytest.approx(observed, rel=0.02)


def test_every_vllm_v1_case_with_weights_is_checked() -> None:
    v1 = [c["id"] for c in WEIGHT_CASES if c["engine"] == "vllm" and "V0" not in c["engine_version"]]
    assert len(v1) >= 6


def test_qwen2_7b_bf16_tp1_is_every_parameter_in_two_bytes() -> None:
    weights = weights_per_gpu(fixture_arch("qwen2"), BF16, tp=1, pp=1)
    assert weights.total_bytes == 15_231_233_024  # 7,615,616,512 params × 2 B; vLLM logs 14.2488 GiB
    assert weights.scales_bytes == 0


def test_qwen2_7b_bf16_tp2_by_hand() -> None:
    d, layers, inter, vocab = 3584, 28, 18944, 152064
    q, kv = 14 * 128, 2 * 128  # 28/2 query heads, 4/2 KV heads per rank
    attention = d * q + 2 * d * kv + q * d + (q + 2 * kv)  # q/k/v biases, o without
    mlp = 3 * d * inter // 2
    norms = 2 * d
    expected = 2 * (2 * vocab // 2 * d + layers * (attention + mlp + norms) + d)
    assert weights_per_gpu(fixture_arch("qwen2"), BF16, tp=2, pp=1).total_bytes == expected


@pytest.mark.parametrize("name", [n for n, a in CATALOG.items() if a.checkpoint_quant is None])
def test_bf16_single_gpu_is_two_bytes_per_parameter(name: str) -> None:
    arch = CATALOG[name]
    counts = param_counts(arch)
    assert weights_per_gpu(arch, BF16, tp=1, pp=1).total_bytes == 2 * (counts.total + counts.vision)


def test_parts_add_up_to_the_total() -> None:
    for arch in (CATALOG["DeepSeek-V3"], CATALOG["gpt-oss-120b"], CATALOG["Gemma-3-27B"], fixture_arch("qwen2")):
        for tp, pp, ep in ((1, 1, 1), (8, 1, 1), (2, 2, 1), (1, 1, 8)):
            w = weights_per_gpu(arch, BF16, tp=tp, pp=pp, ep=ep)
            parts = (w.embedding_bytes + w.lm_head_bytes + w.attention_bytes + w.mlp_bytes + w.moe_expert_bytes
                     + w.norms_and_router_bytes + w.scales_bytes + w.vision_bytes)
            assert parts == w.total_bytes


def test_vocabulary_is_padded_to_64_then_split_by_tp() -> None:
    assert padded_vocab_per_rank(32001, 1) == 32064
    assert padded_vocab_per_rank(32001, 2) == 16032
    assert padded_vocab_per_rank(152064, 4) == 38016
    arch = attrs.evolve(CATALOG["Llama-2-7B"], vocab_size=32001)
    w = weights_per_gpu(arch, BF16, tp=2, pp=1)
    assert w.embedding_bytes == w.lm_head_bytes == 16032 * 4096 * 2
    assert "vocabulary 32,001 padded to a multiple of 64 and split over 2 TP rank(s): 16,032" in w.assumptions[1]


def test_tied_embeddings_count_once_unless_pp_separates_them() -> None:
    gemma = CATALOG["Gemma-2-9B"]
    single = weights_per_gpu(gemma, BF16, tp=1, pp=1)
    assert single.embedding_bytes == 256000 * 3584 * 2 and single.lm_head_bytes == 0
    split = weights_per_gpu(gemma, BF16, tp=1, pp=2)
    assert split.stage == 1 and split.lm_head_bytes == 256000 * 3584 * 2 and split.embedding_bytes == 0
    assert any("last PP stage keeps its own copy" in a for a in split.assumptions)


def test_pp_figure_is_the_heaviest_stage() -> None:
    llama = CATALOG["Llama-3.1-70B"]
    w = weights_per_gpu(llama, BF16, tp=1, pp=3)  # 27 / 27 / 26 layers
    assert (w.stage, w.stage_layers) == (0, (0, 27))  # one more layer outweighs the final norm
    assert w.embedding_bytes == 128256 * 8192 * 2 and w.lm_head_bytes == 0
    assert any("[27, 27, 26]" in a for a in w.assumptions)


@pytest.mark.parametrize(("layers", "pp", "split"), [
    (80, 2, (40, 40)), (80, 3, (27, 27, 26)), (61, 4, (15, 15, 16, 15)), (62, 4, (15, 16, 16, 15)),
    (126, 8, (15, 16, 16, 16, 16, 16, 16, 15)), (7, 4, (2, 2, 2, 1)),
])
def test_pp_split_follows_vllm_get_pp_indices(layers: int, pp: int, split: tuple[int, ...]) -> None:
    assert pp_stage_layers(layers, pp) == split


@given(layers=st.integers(min_value=1, max_value=200), pp=st.integers(min_value=1, max_value=16))
def test_pp_split_properties(layers: int, pp: int) -> None:
    if pp > layers:
        with pytest.raises(ValueError, match="cannot split"):
            pp_stage_layers(layers, pp)
        return
    split = pp_stage_layers(layers, pp)
    assert sum(split) == layers and split[-1] == layers // pp and max(split) - min(split) <= 1


def test_kv_projections_never_shrink_below_one_head_per_rank() -> None:
    arch = CATALOG["Qwen3-30B-A3B"]  # 32 query heads, 4 KV heads, head_dim 128, hidden 2048
    per_layer = {}
    for tp in (4, 8):
        w = weights_per_gpu(arch, BF16, tp=tp, pp=1)
        per_layer[tp] = w.attention_bytes // arch.num_layers
    q_o = {tp: 2 * 2048 * (32 // tp) * 128 * 2 for tp in (4, 8)}
    assert per_layer[4] - q_o[4] == per_layer[8] - q_o[8] == 2 * 2048 * 128 * 2  # one K and one V head
    w8 = weights_per_gpu(arch, BF16, tp=8, pp=1)
    assert any("K/V heads replicated (one per rank)" in a for a in w8.assumptions)


def test_expert_parallel_keeps_experts_whole() -> None:
    arch = CATALOG["Qwen3-30B-A3B"]  # 128 experts of 3 × 2048 × 768
    ep = weights_per_gpu(arch, BF16, tp=1, pp=1, ep=8)
    tp = weights_per_gpu(arch, BF16, tp=8, pp=1)
    expert = 3 * 2048 * 768 * 2
    assert ep.moe_expert_bytes == tp.moe_expert_bytes == arch.num_layers * 16 * expert
    # at tp=8 each rank keeps one K and one V head: 16 head copies across ranks instead of 8
    assert ep.attention_bytes == 8 * tp.attention_bytes - arch.num_layers * 8 * 2048 * 128 * 2
    assert any("split whole over EP=8" in a for a in ep.assumptions)


def test_shared_experts_and_mla_projections() -> None:
    lite = fixture_arch("deepseek_v2")  # q_lora null, kv_lora 512, 16 heads, 2 shared experts of 1408
    w = weights_per_gpu(lite, BF16, tp=2, pp=1)
    heads = 8
    attention = (heads * 192 * 2048 + 576 * 2048 + heads * 256 * 512 + 2048 * heads * 128) * 2
    assert w.attention_bytes == 27 * attention  # q/kv_b/o split, kv_a replicated
    dense = 3 * 2048 * (10944 // 2) * 2
    shared = 3 * 2048 * (2816 // 2) * 2
    assert w.mlp_bytes == dense + 26 * shared


def test_quantized_mla_keeps_a_dequantized_kv_b_copy() -> None:
    awq = fixture_arch("deepseek_v2_lite_chat_awq")
    w = weights_per_gpu(awq, weight_format("fp16"), tp=1, pp=1)
    assert w.format_name == "awq"
    four_bit = (16 * 192 * 2048 + 576 * 2048 + 16 * 256 * 512 + 2048 * 16 * 128) // 2
    copy = 16 * 256 * 512 * 2  # W_UK/W_UV in FP16 next to the 4-bit kv_b_proj
    assert w.attention_bytes == 27 * (four_bit + copy)
    plain = weights_per_gpu(attrs.evolve(awq, checkpoint_quant=None), weight_format("fp16"), tp=1, pp=1)
    assert plain.attention_bytes == 27 * 2 * (16 * 192 * 2048 + 576 * 2048 + 16 * 256 * 512 + 2048 * 16 * 128)


def test_checkpoint_format_wins_over_the_format_asked_for() -> None:
    v3 = CATALOG["DeepSeek-V3"]
    w = weights_per_gpu(v3, BF16, tp=8, pp=1)
    assert w.format_name == "fp8"
    assert "the checkpoint is already quantized (fp8); its format wins" in w.assumptions
    fp8_share = param_counts(v3).total / 8  # one byte per parameter, split 8 ways
    # plus BF16 embeddings, replicated q_a/kv_a projections and norms, scales and the dequantized kv_b copy
    assert fp8_share < w.total_bytes < 1.03 * fp8_share


def test_quantization_leaves_embeddings_and_norms_alone() -> None:
    llama = CATALOG["Llama-3.1-8B"]
    bf16 = weights_per_gpu(llama, BF16, tp=1, pp=1)
    fp8 = weights_per_gpu(llama, weight_format("fp8"), tp=1, pp=1)
    assert fp8.embedding_bytes == bf16.embedding_bytes and fp8.lm_head_bytes == bf16.lm_head_bytes
    assert fp8.norms_and_router_bytes == bf16.norms_and_router_bytes
    assert fp8.attention_bytes * 2 == bf16.attention_bytes
    assert fp8.scales_bytes == 32 * 7 * 4  # one FP32 scale per linear matrix


def test_gpt_oss_experts_are_mxfp4_and_attention_stays_bf16() -> None:
    oss = CATALOG["gpt-oss-20b"]
    w = weights_per_gpu(oss, BF16, tp=1, pp=1)
    assert w.format_name == "mxfp4"
    assert w.attention_bytes == 24 * param_counts(oss).per_layer_attention * 2
    values = 24 * 32 * 3 * 2880 * 2880 // 2  # 4 bits each
    assert w.moe_expert_bytes == values + 24 * 32 * (2 * 2880 + 2880) * 2  # + BF16 biases
    assert w.scales_bytes == 2 * 24 * 32 * 3 * 2880 * 2880 // 32  # E8M0 per 32, kept twice by vLLM


def test_linear_bytes_by_hand() -> None:
    assert linear_bytes(weight_format("awq"), 4096, 4096) == (8_388_608, 4096 * 32 * 2 + 4096 * 32 // 2)
    assert linear_bytes(weight_format("gptq"), 4096, 4096) == (8_388_608, 4096 * 32 * 2)
    assert linear_bytes(weight_format("int8"), 4096, 4096) == (16_777_216, 4096 * 4)
    block, _ = format_for_checkpoint(CATALOG["DeepSeek-V3"].checkpoint_quant)  # type: ignore[arg-type]
    assert linear_bytes(block, 7168, 2048) == (7168 * 2048, 56 * 16 * 4)
    assert linear_bytes(BF16, 10, 10) == (200, 0)
    assert linear_bytes(weight_format("fp8"), 10, 10, quantized=False) == (200, 0)


@pytest.mark.parametrize(("name", "bits"), [
    ("bf16", 16.0), ("fp8", 8.0), ("awq", 4.15625), ("gptq", 4.125), ("nvfp4", 4.5), ("bitsandbytes", 4.5),
])
def test_effective_bits_per_weight(name: str, bits: float) -> None:
    assert weight_format(name).bits_per_weight_with_scales(4096, 4096) == pytest.approx(bits, abs=1e-5)


def test_mxfp4_is_4_25_bits_and_vllm_keeps_its_scales_twice() -> None:
    mxfp4 = weight_format("mxfp4")
    assert attrs.evolve(mxfp4, resident_scale_copies=1).bits_per_weight_with_scales() == 4.25
    assert mxfp4.bits_per_weight_with_scales() == 4.5


def test_checkpoint_formats() -> None:
    def fmt(name: str) -> str:
        quant = fixture_arch(name).checkpoint_quant
        assert quant is not None
        f, _ = format_for_checkpoint(quant)
        return f"{f.name} {f.bits_per_weight:g} {f.scale_strategy} {f.group_size} {f.zero_point_bits}"

    assert fmt("qwen2_5_7b_instruct_awq") == "awq 4 group 128 4"
    assert fmt("deepseek_v2_lite_chat_awq") == "awq 4 group 64 4"
    assert fmt("llama_gptq") == "gptq 4 group 128 0"
    assert fmt("llama_fp8_tensor") == "fp8 8 tensor 0 0"
    assert fmt("llama_fp8_block") == "fp8 8 block 0 0"
    assert fmt("llama_compressed_tensors_fp8") == "fp8 8 channel 0 0"
    assert fmt("llama_compressed_tensors_w4a16") == "gptq 4 group 128 0"
    assert fmt("llama_nvfp4_modelopt") == "nvfp4 4 group 16 0"
    assert fmt("llama_bnb_nf4") == "bitsandbytes 4 group 64 0"
    gpt_oss, notes = format_for_checkpoint(CATALOG["gpt-oss-20b"].checkpoint_quant)  # type: ignore[arg-type]
    assert gpt_oss.quantizes == {"experts", "mlp", "shared_experts"}
    assert notes == ("the checkpoint leaves attention unquantized",)


def test_weights_shrink_with_tensor_parallelism() -> None:
    llama = CATALOG["Llama-3.1-70B"]
    totals = [weights_per_gpu(llama, BF16, tp=tp, pp=1).total_bytes for tp in (1, 2, 4, 8)]
    assert totals == sorted(totals, reverse=True)
    assert totals[0] / totals[3] == pytest.approx(8, rel=0.001)


@given(tp=st.sampled_from([1, 2, 4, 8]), pp=st.integers(min_value=1, max_value=6),
       fmt=st.sampled_from([f.name for f in WEIGHT_FORMATS]))
def test_layouts_never_lose_weights(tp: int, pp: int, fmt: str) -> None:
    arch = CATALOG["Qwen3-235B-A22B"]
    single = weights_per_gpu(arch, weight_format(fmt), tp=1, pp=1).total_bytes
    sharded = weights_per_gpu(arch, weight_format(fmt), tp=tp, pp=pp).total_bytes
    assert sharded * tp * pp >= single * 0.999  # replicated parts only add; padding rounds up


def test_invalid_layouts_and_names_are_rejected() -> None:
    with pytest.raises(ValueError, match="parallel sizes"):
        weights_per_gpu(CATALOG["Qwen3-8B"], BF16, tp=0, pp=1)
    with pytest.raises(ValueError, match="unknown weight format 'int4'"):
        weight_format("int4")
    with pytest.raises(ValueError, match="resolve 'auto'"):
        kv_dtype_bytes("auto")
    assert (kv_dtype_bytes("bfloat16"), kv_dtype_bytes("fp8_e5m2"), kv_dtype_bytes("FP8")) == (2.0, 1.0, 1.0)


def test_fixture_copy_of_engine_cases_is_present() -> None:
    assert Path(FIXTURES / "engine_memory_cases.json").is_file() and len(WEIGHT_CASES) >= 9
    assert math.isclose(CASES[0]["observed"]["weights_gib"], 14.2488)
