"""KV-cache bytes: hand-computed per-token figures, sliding windows, MLA, TP replication, vLLM's token counts."""

from __future__ import annotations

import json
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from deployc.catalog import ModelArch, load_models, model_from_hf_config
from deployc.planner.kv import (
    SequenceKV,
    kv_bytes_for_sequence,
    kv_bytes_per_token_model,
    kv_bytes_per_token_per_gpu,
    kv_capacity_tokens,
    sequence_kv,
)
from tests.conftest import REPO

GIB = 1 << 30
KIB, MIB = 1 << 10, 1 << 20
FIXTURES = REPO / "tests" / "fixtures"
CATALOG = {m.name: m.arch for m in load_models()}
BF16, FP8 = 2.0, 1.0
# KV bytes per token in BF16, every layer counted, as the research reference computed them.
REFERENCE_KV_BF16 = {
    "Llama-2-7B": 524_288, "Llama-2-13B": 819_200, "Llama-2-70B": 327_680, "Llama-3.1-8B": 131_072,
    "Llama-3.1-70B": 327_680, "Llama-3.1-405B": 516_096, "Llama-3.3-70B": 327_680, "Qwen2.5-7B": 57_344,
    "Qwen2.5-14B": 196_608, "Qwen2.5-32B": 262_144, "Qwen2.5-72B": 327_680, "Qwen3-8B": 147_456,
    "Qwen3-32B": 262_144, "Qwen3-30B-A3B": 98_304, "Qwen3-235B-A22B": 192_512, "Mistral-7B-v0.3": 131_072,
    "Mixtral-8x7B": 131_072, "Mixtral-8x22B": 229_376, "DeepSeek-V3": 70_272, "DeepSeek-R1": 70_272,
    "gpt-oss-20b": 49_152, "gpt-oss-120b": 73_728, "Gemma-2-9B": 344_064, "Gemma-2-27B": 376_832,
    "Gemma-3-27B": 507_904, "Phi-3-mini": 393_216, "Phi-3-medium": 204_800,
}


def fixture_arch(name: str) -> ModelArch:
    config = json.loads((FIXTURES / "hf_configs" / f"{name}.json").read_text())
    return model_from_hf_config(config, name=name, source=name)


def test_llama_3_70b_is_320_kib_per_token_not_the_articles_32_kb() -> None:
    llama = CATALOG["Llama-3.1-70B"]  # Llama-3-70B has the same attention shape
    per_token = kv_bytes_per_token_model(llama, BF16)
    assert per_token == 2 * 80 * 8 * 128 * 2 == 327_680 == 320 * KIB
    erratum = 2 * 8192 * 2  # article 002: "2 × 8192 float16 values = 32KB per token"
    assert per_token == 10 * erratum
    assert kv_bytes_for_sequence(llama, 16, BF16, tp=1, pp=1) == 5 * MIB  # one 16-token block, all layers
    assert kv_bytes_for_sequence(llama, 16, BF16, tp=1, pp=1) // llama.num_layers == 64 * KIB  # per layer
    assert 100 * 2000 * per_token / 1e9 == pytest.approx(65.5, abs=0.1)  # not the article's "6.4TB"


def test_qwen2_7b_per_token_and_under_tp2() -> None:
    qwen2 = fixture_arch("qwen2")
    assert kv_bytes_per_token_model(qwen2, BF16) == 57_344
    assert kv_bytes_per_token_per_gpu(qwen2, BF16, tp=1, pp=1) == 57_344
    assert kv_bytes_per_token_per_gpu(qwen2, BF16, tp=2, pp=1) == 28_672


def test_deepseek_v3_mla_latent_is_not_split_by_tp() -> None:
    v3 = CATALOG["DeepSeek-V3"]
    assert kv_bytes_per_token_model(v3, BF16) == 61 * (512 + 64) * 2 == 70_272
    assert kv_bytes_per_token_per_gpu(v3, BF16, tp=8, pp=1) == 70_272  # every rank holds the latent
    expanded = 2 * 61 * 128 * (192 + 128) // 2 * 2  # an engine without MLA caching: per-head K(192)+V(128)
    assert expanded == 4_997_120 and expanded // 70_272 == 71
    assert kv_bytes_per_token_model(v3, FP8) == 35_136


def test_gpt_oss_120b_full_layers_grow_and_sliding_layers_stop_at_128() -> None:
    oss = CATALOG["gpt-oss-120b"]
    split = sequence_kv(oss, BF16, tp=1, pp=1)
    assert split == SequenceKV(full_layers_bytes_per_token=36_864, sliding_layers_bytes_per_token=36_864,
                               sliding_window_tokens=128)
    exact = kv_bytes_for_sequence(oss, 100_000, BF16, tp=1, pp=1, block_size_tokens=1)
    assert exact == 36_864 * 100_000 + 4_718_592  # 18 sliding layers × 128 tokens × 2048 B
    blocks = kv_bytes_for_sequence(oss, 100_000, BF16, tp=1, pp=1, block_size_tokens=16)
    assert blocks == 36_864 * 100_000 + 18 * 144 * 2048  # window - 1 tokens + the current one, in 9 blocks
    short = kv_bytes_for_sequence(oss, 100, BF16, tp=1, pp=1, block_size_tokens=1)
    assert short == 100 * 73_728  # below the window every layer keeps every token


def test_gemma_3_27b_five_local_layers_per_global() -> None:
    gemma = CATALOG["Gemma-3-27B"]
    assert kv_bytes_per_token_model(gemma, BF16) == 507_904  # short-context figure, all 62 layers
    split = sequence_kv(gemma, BF16, tp=1, pp=1)
    assert split.full_layers_bytes_per_token == 81_920  # 10 global layers
    assert split.sliding_layers_bytes_per_token == 425_984 and split.sliding_window_tokens == 1024
    seq = kv_bytes_for_sequence(gemma, 131_072, BF16, tp=1, pp=1, block_size_tokens=1)
    assert seq == 81_920 * 131_072 + 436_207_616  # 52 local layers capped at 1024 tokens


@pytest.mark.parametrize(("name", "expected"), sorted(REFERENCE_KV_BF16.items()))
def test_catalog_kv_per_token_matches_the_reference(name: str, expected: int) -> None:
    arch = CATALOG[name]
    assert kv_bytes_per_token_model(arch, BF16) == expected
    assert kv_bytes_per_token_model(arch, FP8) * 2 == expected  # FP8 KV halves it


def test_tp_beyond_the_kv_heads_replicates_them() -> None:
    arch = CATALOG["Qwen3-30B-A3B"]  # 4 KV heads
    per_gpu = {tp: kv_bytes_per_token_per_gpu(arch, BF16, tp=tp, pp=1) for tp in (1, 2, 4, 8)}
    assert per_gpu == {1: 98_304, 2: 49_152, 4: 24_576, 8: 24_576}  # one head per rank at TP4 and TP8


def test_pp_takes_the_stage_with_most_layers() -> None:
    llama = CATALOG["Llama-3.1-70B"]
    assert kv_bytes_per_token_per_gpu(llama, BF16, tp=1, pp=3) == 27 * 4096
    gemma = CATALOG["Gemma-3-27B"]
    assert sequence_kv(gemma, BF16, tp=1, pp=2).full_layers_bytes_per_token == 5 * 8192


def test_phi3_sliding_window_is_not_assumed() -> None:
    phi = CATALOG["Phi-3-mini"]
    assert kv_bytes_for_sequence(phi, 4096, BF16, tp=1, pp=1) == 4096 * 393_216


CASE_ARCH = {
    "Qwen/Qwen2-7B-Instruct": lambda: fixture_arch("qwen2"),
    "Qwen/Qwen2.5-7B-Instruct-AWQ": lambda: fixture_arch("qwen2_5_7b_instruct_awq"),
    "meta-llama/Llama-3.1-8B-Instruct": lambda: CATALOG["Llama-3.1-8B"],
    "meta-llama/Meta-Llama-3-8B": lambda: CATALOG["Llama-3.1-8B"],
    "TechxGenus/DeepSeek-V2-Lite-Chat-AWQ": lambda: fixture_arch("deepseek_v2_lite_chat_awq"),
    "Qwen/QwQ-32B": lambda: CATALOG["Qwen2.5-32B"],
}
CASES = json.loads((FIXTURES / "engine_memory_cases.json").read_text())["cases"]
TOKEN_CASES = [c for c in CASES if {"kv_tokens", "available_kv_gib"} <= set(c["observed"])]


@pytest.mark.parametrize("case", TOKEN_CASES, ids=lambda c: c["id"])
def test_engine_kv_token_counts_within_1_percent(case: dict[str, Any]) -> None:
    arch = CASE_ARCH[case["arch_key"]]()
    observed = case["observed"]
    # vLLM allocates blocks (16 tokens unless set); SGLang counts single tokens
    block = case.get("block_size", 16) if case["engine"] == "vllm" else 1
    tokens = kv_capacity_tokens(arch, int(observed["available_kv_gib"] * GIB), BF16,
                                tp=case["tensor_parallel_size"], pp=case["pipeline_parallel_size"],
                                block_size_tokens=block)
    assert tokens == pytest.approx(observed["kv_tokens"], rel=0.01)


def test_the_93872_and_450192_token_examples() -> None:
    qwen2 = fixture_arch("qwen2")
    assert kv_capacity_tokens(qwen2, int(5.01 * GIB), BF16, tp=1, pp=1) == pytest.approx(93_872, rel=0.01)
    assert kv_capacity_tokens(qwen2, int(12.02 * GIB), BF16, tp=2, pp=1) == pytest.approx(450_192, rel=0.01)


def test_hybrid_capacity_follows_vllms_report_convention() -> None:
    oss = CATALOG["gpt-oss-20b"]  # 12 full + 12 sliding layers: 2 groups of 12
    case = next(c for c in CASES if c["arch_key"] == "openai/gpt-oss-20b")
    budget = int(case["observed"]["available_kv_gib"] * GIB)
    tokens = kv_capacity_tokens(oss, budget, BF16, tp=1, pp=1, block_size_tokens=case["block_size"])
    implied = case["sanity_check"]["implied_tokens_from_available_kv"]  # budget / all-layers bytes per token
    assert tokens == pytest.approx(implied, rel=0.01)
    gemma = CATALOG["Gemma-3-27B"]  # 10 full + 52 sliding: groups of 10, 1 + 6 groups (52 padded to 60)
    page = 16 * 8192
    assert kv_capacity_tokens(gemma, 70 * page * 100, BF16, tp=1, pp=1) == 100 * 16


def test_capacity_edge_cases() -> None:
    llama = CATALOG["Llama-3.1-8B"]
    assert kv_capacity_tokens(llama, 0, BF16, tp=1, pp=1) == 0
    assert kv_capacity_tokens(llama, -5, BF16, tp=1, pp=1) == 0
    one_block = 16 * 131_072
    assert kv_capacity_tokens(llama, one_block - 1, BF16, tp=1, pp=1) == 0
    assert kv_capacity_tokens(llama, one_block, BF16, tp=1, pp=1) == 16
    assert kv_capacity_tokens(llama, one_block, FP8, tp=1, pp=1) == 32
    staged = kv_capacity_tokens(CATALOG["Llama-3.1-70B"], GIB, BF16, tp=1, pp=3)
    assert staged == GIB // (16 * 4096 * 27) * 16  # the 27-layer stages bound it


@given(budget=st.integers(min_value=0, max_value=200 * GIB), tp=st.sampled_from([1, 2, 4, 8]),
       name=st.sampled_from(["Llama-3.1-70B", "DeepSeek-V3", "gpt-oss-120b", "Gemma-3-27B", "Qwen3-30B-A3B"]))
def test_capacity_never_exceeds_the_budget(budget: int, tp: int, name: str) -> None:
    arch = CATALOG[name]
    tokens = kv_capacity_tokens(arch, budget, BF16, tp=tp, pp=1)
    assert tokens % 16 == 0
    assert tokens * kv_bytes_per_token_per_gpu(arch, BF16, tp=tp, pp=1) <= budget
    more = kv_capacity_tokens(arch, budget + GIB, BF16, tp=tp, pp=1)
    assert more >= tokens


@given(tokens=st.integers(min_value=1, max_value=300_000), block=st.sampled_from([1, 16, 32, 128]))
def test_sequence_bytes_are_whole_blocks_between_the_bounds(tokens: int, block: int) -> None:
    oss = CATALOG["gpt-oss-120b"]
    seq = kv_bytes_for_sequence(oss, tokens, BF16, tp=1, pp=1, block_size_tokens=block)
    per_layer = 2048
    assert seq % (per_layer * block) == 0
    assert 18 * tokens * per_layer <= seq <= 36 * (tokens + block) * per_layer


def test_arch_without_kv_heads_changes_nothing_for_mla() -> None:
    v3 = attrs.evolve(CATALOG["DeepSeek-V3"], num_kv_heads=1)
    assert kv_bytes_per_token_model(v3, BF16) == 70_272
