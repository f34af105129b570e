"""`deployc check-log` on the shipped real start-up logs: predicted against observed, attributed."""

from __future__ import annotations

import pytest

from deployc.catalog import resolve_gpu
from deployc.checklog import compare, run_check
from deployc.cli import main
from deployc_vllm.enginelog import batch_defaults as vllm_batch_defaults
from tests.conftest import REPO

LOGS = REPO / "samples" / "logs"


def test_tp2_log_weights_match_and_rows_carry_observed_numbers() -> None:
    rows = {r.label: r for r in compare(LOGS / "qwen2-7b-a100.toml", LOGS / "qwen2-7b-a100-tp2.log")}
    assert rows["weights per GPU"].observed == pytest.approx(7.1217)
    assert abs(rows["weights per GPU"].error or 1) < 0.02
    assert rows["KV cache tokens"].observed == 450_192
    assert abs(rows["KV cache tokens"].error or 1) < 0.10


def test_log_settings_replace_the_plan(capsys: pytest.CaptureFixture[str]) -> None:
    # The TP1 log states no tensor_parallel_size: vLLM prints only non-defaults, so it ran with TP 1.
    assert main(["check-log", str(LOGS / "qwen2-7b-a100.toml"), str(LOGS / "qwen2-7b-a100-tp1.log")]) == 0
    out = capsys.readouterr().out
    assert ("at the run's settings: TP 1 (log), memory fraction 0.25 (log), max model length 16384 (log), "
            "max running requests 256 (vllm default), token budget (chunk) 2048 (vllm default)") in out
    assert "weights per GPU           14.19 GiB predicted, 14.25 observed (-0.4%) ok" in out


def test_a_file_without_engine_lines_is_a_clean_error(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    log = tmp_path / "x.log"
    log.write_text("hello\n")
    assert main(["check-log", str(LOGS / "qwen2-7b-a100.toml"), str(log)]) == 1
    assert "no SGLang or vLLM start-up lines found [DPC001]" in capsys.readouterr().err


QWQ_SPEC = """version = 1
name = "qwq-l4"
[model]
id = "Qwen/Qwen2.5-32B-Instruct"  # QwQ-32B has the same shapes
[hardware]
gpu = "L4"
gpus_per_node = 4
[workload]
prompt_tokens = { mean = 1000, p99 = 4000 }
output_tokens = { mean = 200, p99 = 800 }
concurrency = 8
[operations]
backend = "sglang"
"""


def test_sglang_server_args_are_replayed_and_a_miss_exits_1(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    spec = tmp_path / "qwq.toml"
    spec.write_text(QWQ_SPEC)
    log = LOGS / "qwq-32b-l4-tp4-sglang.log"
    rows = {r.label: r for r in compare(spec, log)}
    assert abs(rows["weights per GPU"].error or 1) < 0.02  # TP4 and BF16 as the log ran (it was -49% at TP2)
    assert main(["check-log", str(spec), str(log)]) == 1  # the KV pool is outside its tolerance
    out = capsys.readouterr().out
    assert ("TP 4 (log), memory fraction 0.85 (log), max model length 131072 (log), max running requests 2049 "
            "(log), token budget (chunk) 2048 (log)") in out
    assert out.rstrip().endswith("result: a figure is outside its tolerance")


def test_vllm_defaults_follow_the_gpu() -> None:
    assert vllm_batch_defaults(resolve_gpu("A100 80GB SXM")) == (256, 2048)  # A100 is kept on the small tier
    assert vllm_batch_defaults(resolve_gpu("H100 SXM")) == (1024, 8192)
    assert vllm_batch_defaults(resolve_gpu("B200")) == (1024, 16384)
    assert vllm_batch_defaults(resolve_gpu("L4")) == (256, 2048)


def test_a_named_version_uses_its_memory_accounting(tmp_path) -> None:  # type: ignore[no-untyped-def]
    log = tmp_path / "v010.log"
    log.write_text("INFO vLLM API server version 0.10.1.1\n" + (LOGS / "qwen2-7b-a100-tp2.log").read_text())
    check = run_check(LOGS / "qwen2-7b-a100.toml", log)
    pinned = {r.label: r for r in compare(LOGS / "qwen2-7b-a100.toml", LOGS / "qwen2-7b-a100-tp2.log")}
    old = {r.label: r for r in check.rows}
    assert "replayed with deployc's vLLM 0.10 memory accounting" in check.text
    # 0.10 captured CUDA graphs after sizing the KV cache: their memory is no longer taken from it
    graphs = pinned["CUDA graphs"].predicted
    assert old["KV cache memory"].predicted == pytest.approx(pinned["KV cache memory"].predicted + graphs, abs=0.02)


def test_a_log_of_another_model_or_gpu_is_said(tmp_path) -> None:  # type: ignore[no-untyped-def]
    other_gpu = run_check(LOGS / "qwen2-7b-a100.toml", LOGS / "qwq-32b-l4-tp4-sglang.log")
    assert ("note: the log's GPU had 21.63 GiB free before loading, the spec's A100 80GB SXM has 80.0 GiB: a "
            "different GPU (or one other processes were using); the predictions are for the spec's GPU") \
        in other_gpu.notes
    other_model = run_check(LOGS / "qwen2-7b-a100.toml", LOGS / "qwen2-7b-a100-tp1.log")
    assert other_model.notes == (
        "note: the log served 'Qwen2-7B-Instruct', the spec plans 'Qwen/Qwen2.5-7B-Instruct' (Qwen2.5-7B-Instruct): "
        "the figures compare only where the two models have the same shapes",)
