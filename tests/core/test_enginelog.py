"""The backends' start-up log readers read back what each shipped real log says, and name its engine."""

from __future__ import annotations

import json

import pytest

from deployc.catalog import resolve_gpu
from deployc.contract.enginelog import EngineLog, likeliest
from deployc.plugins import default_registry
from tests.conftest import REPO

H100 = resolve_gpu("H100 SXM")


def parse_engine_log(lines: list[str]) -> EngineLog:
    """The reading of the backend that recognises the log best, as check-log takes it (an empty one: none does)."""
    found = likeliest(default_registry().engine_logs("\n".join(lines), H100))
    return found[1] if found is not None else EngineLog()

ALL_CASES = json.loads((REPO / "bench" / "data" / "engine_memory_cases.json").read_text())["cases"]
# These cases quote a summary table, not the engine's own log lines: nothing to parse.
SUMMARY_ONLY = {"vllm-gpt-oss-20b-h100-tp1-llmd", "vllm-qwen3-32b-h100-tp2-llmd",
                "vllm-deepseek-v2-lite-awq-rtx4080-gmu0.85"}
CASES = [c for c in ALL_CASES if c["id"] not in SUMMARY_ONLY]


def test_summary_only_cases_have_no_engine_lines() -> None:
    for case in ALL_CASES:
        if case["id"] in SUMMARY_ONLY:
            assert parse_engine_log(case["log_lines"]).engine is None
FIELDS = ("weights_gib", "available_kv_gib", "kv_tokens", "max_concurrency", "cuda_graph_gib",
          "activation_peak_gib", "non_torch_gib", "gpu_blocks")


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_parser_recovers_every_observed_number_in_the_log_lines(case: dict) -> None:  # type: ignore[type-arg]
    log = parse_engine_log(case["log_lines"])
    text = "\n".join(case["log_lines"])
    checked = 0
    for field in FIELDS:
        observed = case["observed"].get(field)
        if observed is None or getattr(log, field) is None:
            continue
        # Only numbers printed in the lines themselves are expected back (some were derived by hand).
        assert getattr(log, field) == pytest.approx(observed, rel=2e-3), field
        checked += 1
    assert checked >= 1, f"nothing parsed from {text[:200]}"
    assert log.engine == case["engine"]


def test_sglang_kv_line() -> None:
    log = parse_engine_log(["[2025-01-01] KV Cache is allocated. #tokens: 46611, K size: 1.42 GB, V size: 1.42 GB"])
    assert (log.engine, log.kv_tokens, log.available_kv_gib) == ("sglang", 46611, 2.84)


def test_vllm_non_default_args() -> None:
    log = parse_engine_log(["INFO [utils.py:326] non-default args: {'model': 'x', 'max_model_len': 16384, "
                            "'tensor_parallel_size': 2, 'gpu_memory_utilization': 0.25}"])
    assert (log.tensor_parallel_size, log.max_model_len, log.gpu_memory_utilization) == (2, 16384, 0.25)


def test_engine_settings_are_read_from_both_engines_logs() -> None:
    sglang = parse_engine_log([
        "server_args=ServerArgs(model_path='Qwen/QwQ-32B', tp_size=4, mem_fraction_static=0.85, "
        "chunked_prefill_size=2048, quantization=None, kv_cache_dtype='auto', disable_cuda_graph=False)",
        "[TP0] Load weight begin. avail mem=21.63 GB",
        "[TP0] Load weight end. type=Qwen2ForCausalLM, dtype=torch.bfloat16, avail mem=6.09 GB, mem usage=15.54 GB."])
    assert (sglang.engine, sglang.tensor_parallel_size, sglang.gpu_memory_utilization, sglang.max_num_batched_tokens,
            sglang.model, sglang.quantization, sglang.kv_cache_dtype, sglang.enforce_eager, sglang.architecture,
            sglang.free_before_load_gib) == ("sglang", 4, 0.85, 2048, "Qwen/QwQ-32B", "none", "auto", False,
                                             "Qwen2ForCausalLM", 21.63)
    vllm = parse_engine_log(["INFO [utils.py:326] non-default args: {'model': 'x', 'max_num_seqs': 128, "
                             "'max_num_batched_tokens': 4096, 'enforce_eager': True, 'quantization': 'fp8'}"])
    assert (vllm.max_num_seqs, vllm.max_num_batched_tokens, vllm.enforce_eager, vllm.quantization, vllm.model) == (
        128, 4096, True, "fp8", "x")


def test_each_engine_reads_only_its_own_log() -> None:
    sglang = "[2025-01-01] KV Cache is allocated. #tokens: 46611, K size: 1.42 GB, V size: 1.42 GB"
    vllm = "INFO [gpu_worker.py:276] Available KV cache memory: 9.84 GiB"
    assert set(default_registry().engine_logs(sglang, H100)) == {"sglang"}
    assert set(default_registry().engine_logs(vllm, H100)) == {"vllm"}
    assert default_registry().engine_logs("nothing an engine prints", H100) == {}


def test_the_engines_defaults_on_the_gpu_come_with_the_reading() -> None:
    vllm = parse_engine_log(["INFO [gpu_worker.py:276] Available KV cache memory: 9.84 GiB"])
    assert (vllm.default_max_num_seqs, vllm.default_max_num_batched_tokens) == (1024, 8192)  # H100: 80 GB tier
    sglang = parse_engine_log(["[TP0] Capture cuda graph end. Time elapsed: 9.1 s. mem usage=0.53 GB"])
    assert (sglang.default_max_num_seqs, sglang.default_max_num_batched_tokens) == (None, 8192)
