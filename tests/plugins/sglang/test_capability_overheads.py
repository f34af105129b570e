"""SGLang 0.5.23's precision matrix and its memory rule, against hand-computed cases."""

from __future__ import annotations

from pathlib import Path

from deployc.api import plan
from deployc.contract.backend import OverheadQuery
from deployc.diagnostics import PlanError
from deployc_sglang.capability import kv_capability, weights_capability
from deployc_sglang.overheads import (
    cuda_graph_bytes,
    decode_graph_max_bs,
    default_mem_fraction_static,
    prefill_graph_buckets,
    runtime_overheads,
)
from tests.conftest import REPO

GIB = 1 << 30


def _query(**changes: object) -> OverheadQuery:
    base: dict[str, object] = {
        "model_name": "m", "num_layers": 32, "hidden_size": 4096, "intermediate_size": 14336, "vocab_size": 128256,
        "num_attention_heads": 32, "is_moe": False, "gpu_name": "H100", "gpu_memory_bytes": 80 * GIB, "tp": 1, "pp": 1,
        "activation_dtype_bytes": 2, "max_num_batched_tokens": 8192, "max_num_seqs": 512, "cuda_graphs": True,
        "weights_bytes_per_gpu": 16 * GIB}
    base.update(changes)
    return OverheadQuery(**base)  # type: ignore[arg-type]


def test_fp8_on_ampere_is_marlin_weight_only_and_refused_on_turing() -> None:
    assert weights_capability((8, 0), "fp8", False).kernel == "Marlin FP8 weight-only (W8A16)"
    assert weights_capability((9, 0), "fp8", False).kernel == "FP8 scaled GEMM (W8A8)"
    turing = weights_capability((7, 5), "fp8", False)
    assert not turing.supported and "sglang#7715" in turing.reason and turing.alternative


def test_awq_on_t4_and_bf16_refused_on_turing() -> None:
    assert weights_capability((7, 5), "awq", True).kernel == "AWQ GEMM (W4A16)"
    assert not weights_capability((7, 5), "awq", False).supported
    assert not weights_capability((7, 5), "bf16", False).supported
    assert not kv_capability((7, 5), "fp8").supported
    assert kv_capability((8, 9), "fp8").supported


def test_default_fraction_follows_sglangs_rule_on_h100() -> None:
    # reserved = 512 + 1.5 × 8192 + 1024/8 + 2 × 256 + 8 × |buckets(8192)| MiB, floored at 10240 on > 60 GiB
    buckets = len(prefill_graph_buckets(8192))
    assert buckets == 8 + 14 + 8 + 8 + 12 + 8
    reserved = 512 + 1.5 * 8192 + 128 + 2 * 256 + 8 * buckets
    assert default_mem_fraction_static(_query()) == round((81920 - reserved) / 81920, 3)


def test_default_fraction_on_t4_uses_its_2k_chunk_and_batch_8() -> None:
    q = _query(gpu_memory_bytes=15 * GIB, max_num_seqs=8)
    assert decode_graph_max_bs(q.gpu_memory_bytes, 1, 64) == 8
    reserved = 512 + 1.5 * 2048 + 128 + 2 * 8 + 8 * len(prefill_graph_buckets(8192))
    assert default_mem_fraction_static(q) == round((15360 - reserved) / 15360, 3)


def test_graph_memory_larger_than_vllm_class_and_outside_the_fraction() -> None:
    # QwQ-32B TP4 on L4: 0.93 GiB observed (engine_memory_cases.json, sglang-qwq-32b-l4-tp4)
    q = _query(num_layers=64, gpu_memory_bytes=22 * GIB, tp=4, max_num_batched_tokens=4096, max_num_seqs=2048)
    assert abs(cuda_graph_bytes(q) / GIB - 0.93) < 0.05
    overheads = runtime_overheads(q)
    assert overheads.memory_fraction_kind == "weights_and_kv"
    assert overheads.cuda_graph_in_budget is False
    assert cuda_graph_bytes(_query(cuda_graphs=False)) == 0


def test_turing_is_refused_whatever_the_precision_with_vllm_as_the_alternative() -> None:
    sample = REPO / "samples" / "qwen7b-awq-t4-edge.toml"  # AWQ on a T4: the loader's minimum (75) would allow it
    try:
        plan(Path(sample), "sglang", display_name=sample.name)
    except PlanError as exc:
        hint = exc.diagnostics[0].hint or ""
    else:
        raise AssertionError("SGLang planned a T4")
    assert hint == ("SGLang 0.5.23's prebuilt kernels (sgl-kernel) have no sm_75 images for some ops every "
                    "model runs (sgl-project/sglang#38515, #24224); T4 has compute capability 7.5; alternative: use "
                    "vllm (runs AWQ and GPTQ on Turing through Marlin)")


def test_the_fraction_follows_the_emitted_chunk_and_graph_sizes_not_sglangs_larger_defaults(tmp_path: Path) -> None:
    # A 2,048-token chunk pinned (the simulation may choose SGLang's own 8,192 for this sample, where the two agree).
    sample = tmp_path / "gpt-oss-120b-h100.toml"
    pinned = "\n[plan]\nmax_num_batched_tokens = 2048\n"
    sample.write_text((REPO / "samples" / "gpt-oss-120b-h100.toml").read_text() + pinned)
    planned, _ = plan(sample, "sglang", display_name=sample.name)
    (pool,) = planned.pools
    m, k = pool.memory.per_gpu, pool.knobs
    query = _query(gpu_memory_bytes=m.total_bytes, max_num_batched_tokens=k.max_num_batched_tokens,
                   max_num_seqs=k.max_num_seqs)
    assert k.max_num_batched_tokens < 8192 and default_mem_fraction_static(query) < k.memory_fraction
    # SGLang's reserve rule at the emitted 2,048-token chunk, with no 10 GiB floor
    reserve_mib = 512 + 1.5 * k.max_num_batched_tokens + 1024 / 8 + 2 * k.max_num_seqs + 8 * len(
        prefill_graph_buckets(k.max_num_batched_tokens))
    assert k.memory_fraction <= round(1 - reserve_mib * 2**20 / m.total_bytes, 3) + 0.002
    unused = m.total_bytes - k.memory_fraction * m.total_bytes - m.activation_bytes - m.cuda_graph_bytes \
        - m.other_bytes
    assert unused < 3 * GIB  # it was 11 GiB with SGLang's defaults for a 8,192-token chunk and the floor
