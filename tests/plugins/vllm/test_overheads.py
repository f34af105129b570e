"""vLLM's memory overheads against real start-up logs (bench/data/engine_memory_cases.json).

The non-weight, non-KV memory a vLLM V1 engine took is reproduced within
max(0.25 GiB, 10 %) by the formula with the constants of the engine version that produced
the log (the sampler path and the CUDA-graph accounting changed between versions; see
``overheads.py``).  The V0 cases are excluded: V0 profiled a different dummy batch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from deployc.api import plan
from deployc.contract.backend import OverheadQuery
from deployc_vllm.flags import load_manifest
from deployc_vllm.overheads import HISTORICAL_PROFILES, PROFILE, MemoryProfile, runtime_overheads
from tests.conftest import REPO

GIB = 1 << 30
CASES = json.loads((REPO / "bench" / "data" / "engine_memory_cases.json").read_text())["cases"]
TOLERANCE_GIB, TOLERANCE_SHARE = 0.25, 0.10

# Dimensions the case file does not carry, from each model's config.json (intermediate_size, vocab_size).
DIMS = {
    "Qwen/Qwen2-7B-Instruct": (18944, 152064, False),
    "Qwen/Qwen2.5-7B-Instruct-AWQ": (18944, 152064, False),
    "openai/gpt-oss-20b": (2880, 201088, True),
    "Qwen/Qwen3-32B": (25600, 151936, False),
}
# Scheduler defaults of the version and GPU when the log does not state them (vllm/engine/arg_utils.py,
# get_batch_defaults: 2048 tokens / 256 sequences below 70 GiB or on A100, 8192 / 1024 on H100).
V1_CASES: dict[str, tuple[str, int, int]] = {
    "vllm-qwen2-7b-a100-80-tp1-gmu0.25": ("0.10", 2048, 256),
    "vllm-qwen2-7b-a100-80-tp2-gmu0.25": ("0.10", 2048, 256),
    "vllm-gpt-oss-20b-h100-tp1-llmd": ("0.11", 8192, 1024),
    "vllm-qwen3-32b-h100-tp2-llmd": ("0.11", 8192, 1024),
    "vllm-qwen25-7b-awq-rtx4080-tp1": ("0.26", 2048, 256),
}
EXCLUDED = {
    "vllm-llama31-8b-rtx3090-mml20000": "V0 engine",
    "vllm-llama3-8b-a100-40-tp1": "V0 engine: profiled max_num_seqs dummy sequences; its 9.37 GiB peak is not V1's",
    "vllm-llama2-70b-a100-80-tp4-pr2031": "block count only",
    "vllm-deepseek-v2-lite-awq-rtx4080-gmu0.85": "WSL2 GPU with memory not linear in the fraction (negative rest)",
    "sglang-qwq-32b-l4-tp4": "SGLang",
}


def _case(case_id: str) -> dict[str, Any]:
    return next(c for c in CASES if c["id"] == case_id)


def _query(case: dict[str, Any], budget: int, seqs: int) -> OverheadQuery:
    model = json.loads((REPO / "bench" / "data" / "engine_memory_cases.json").read_text())["models"][case["arch_key"]]
    intermediate, vocab, moe = DIMS[case["arch_key"]]
    return OverheadQuery(
        model_name=case["model"], num_layers=model["num_hidden_layers"], hidden_size=model["hidden_size"],
        intermediate_size=intermediate, vocab_size=vocab, num_attention_heads=model["num_attention_heads"],
        is_moe=moe, gpu_name=case["gpu"], gpu_memory_bytes=80 * GIB, tp=case["tensor_parallel_size"],
        pp=case["pipeline_parallel_size"], activation_dtype_bytes=2,
        max_num_batched_tokens=case.get("max_num_batched_tokens", budget), max_num_seqs=seqs,
        cuda_graphs=not case.get("enforce_eager", False), weights_bytes_per_gpu=0)


def _observed_gib(case: dict[str, Any]) -> float:
    obs = case["observed"]
    if "activation_peak_gib" in obs and "non_torch_gib" in obs:
        return float(obs["activation_peak_gib"] + obs["non_torch_gib"])
    return float(case["derived"]["non_weight_non_kv_gib"])


def test_every_vllm_case_is_used_or_excluded_with_a_reason() -> None:
    assert {c["id"] for c in CASES} == set(V1_CASES) | set(EXCLUDED)


@pytest.mark.parametrize("case_id", sorted(V1_CASES))
def test_reproduces_non_weight_non_kv_memory(case_id: str) -> None:
    case = _case(case_id)
    version, budget, seqs = V1_CASES[case_id]
    profile: MemoryProfile = HISTORICAL_PROFILES[version]
    ov = runtime_overheads(_query(case, budget, seqs), profile)
    predicted = (ov.activation_peak_bytes + ov.non_torch_bytes
                 + (ov.cuda_graph_bytes if ov.cuda_graph_in_budget else 0)) / GIB
    observed = _observed_gib(case)
    assert abs(predicted - observed) <= max(TOLERANCE_GIB, TOLERANCE_SHARE * observed), (predicted, observed)


@pytest.mark.parametrize(("case_id", "observed_graph_gib"), [
    ("vllm-qwen2-7b-a100-80-tp1-gmu0.25", 0.50), ("vllm-qwen2-7b-a100-80-tp2-gmu0.25", 0.65),
    ("vllm-gpt-oss-20b-h100-tp1-llmd", 0.39), ("vllm-qwen25-7b-awq-rtx4080-tp1", 0.48)])
def test_cuda_graph_memory_within_0_15_gib(case_id: str, observed_graph_gib: float) -> None:
    case = _case(case_id)
    _version, budget, seqs = V1_CASES[case_id]
    ov = runtime_overheads(_query(case, budget, seqs))
    assert abs(ov.cuda_graph_bytes / GIB - observed_graph_gib) <= 0.15


def test_pinned_profile_facts() -> None:
    ov = runtime_overheads(_query(_case("vllm-qwen2-7b-a100-80-tp1-gmu0.25"), 2048, 256))
    assert ov.engine_version == "0.33.0"
    assert ov.memory_fraction_kind == "total"
    assert ov.cuda_graph_in_budget is True
    assert ov.kv_block_size_tokens == 16
    gmu = load_manifest().option("--gpu-memory-utilization")
    assert gmu is not None
    manifest = json.loads((REPO / "plugins" / "deployc_vllm" / "data" / "vllm-0.33.0.json").read_text())
    default = next(o["default"] for o in manifest["options"] if o["dest"] == "gpu_memory_utilization")
    assert ov.default_memory_fraction == PROFILE.default_gpu_memory_utilization == default == 0.92
    assert any("VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS" in a for a in ov.assumptions)


def test_eager_has_no_graph_memory_and_tp_adds_nccl_buffers() -> None:
    case = _case("vllm-qwen3-32b-h100-tp2-llmd")
    query = _query(case, 8192, 1024)
    import attrs

    eager = runtime_overheads(attrs.evolve(query, cuda_graphs=False))
    assert eager.cuda_graph_bytes == 0
    tp1, tp8 = (runtime_overheads(attrs.evolve(query, tp=tp)) for tp in (1, 8))
    assert tp1.non_torch_bytes < runtime_overheads(query).non_torch_bytes < tp8.non_torch_bytes
    assert tp8.cuda_graph_bytes > tp1.cuda_graph_bytes


def test_the_activation_peak_is_profiled_over_the_emitted_token_budget() -> None:
    sample = REPO / "samples" / "gpt-oss-120b-h100.toml"
    planned, _ = plan(Path(sample), "vllm", display_name=sample.name)
    (pool,) = planned.pools
    budget = pool.knobs.max_num_batched_tokens
    assert budget != 8192  # the planning budget; vLLM profiles the one it is given
    (peak,) = [a for a in pool.memory.assumptions if "activation peak" in a]
    assert f"forward pass over {budget:,} tokens" in peak
