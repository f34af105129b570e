"""The backend-choice framework: TensorRT-LLM's compile cost counts only where there is a compile step."""

from __future__ import annotations

from pathlib import Path

from attrs import evolve

from deployc.api import load_spec
from deployc.planner.backend_choice import rank_backends
from deployc.plugins import default_registry
from deployc.spec.model import Spec

INSTALLED = default_registry().models().infos()  # the built-ins: sglang, trtllm, vllm
BASE = """version = 1
name = "choice"
[model]
id = "meta-llama/Llama-3.1-8B-Instruct"
[hardware]
gpu = "H100 SXM"
[workload]
kind = "chat"
prompt_tokens = { mean = 1000, p99 = 4000 }
output_tokens = { mean = 200, p99 = 800 }
concurrency = 128
[operations]
model_change = "%s"
models = "%s"
"""


def _spec(tmp_path: Path, change: str, models: str = "single", table: str = "") -> Spec:
    path = tmp_path / f"{change}-{models}.toml"
    path.write_text(BASE % (change, models) + table)
    return load_spec(path).spec


def test_pytorch_flow_keeps_trtllm_a_candidate_when_the_model_changes(tmp_path: Path) -> None:
    ranking = rank_backends(_spec(tmp_path, "weekly"), INSTALLED, "NVIDIA")
    assert ranking.order == ("vllm", "sglang", "trtllm")
    assert ranking.reasons == {}
    assert ranking.notes["trtllm"] == ("ranked last: the model changes weekly; the PyTorch flow needs no engine "
                                       "build, but each change still costs its warm-up (autotuning, CUDA graph "
                                       "capture)")
    multi = rank_backends(_spec(tmp_path, "monthly", "multi"), INSTALLED, "NVIDIA")
    assert "trtllm" in multi.order and multi.preferred == "vllm"


def test_engine_flow_still_pays_the_build_per_change(tmp_path: Path) -> None:
    pinned = '[backends.trtllm]\nflow = "engine"\n'
    ranking = rank_backends(_spec(tmp_path, "weekly", table=pinned), INSTALLED, "NVIDIA")
    assert ranking.order == ("vllm", "sglang")
    assert ranking.reasons["trtllm"] == ("the model changes weekly; each TensorRT-LLM engine build takes 10-30 "
                                         "minutes per configuration and is tied to one GPU architecture")
    multi = rank_backends(_spec(tmp_path, "rarely", "multi", table=pinned), INSTALLED, "NVIDIA")
    assert multi.reasons["trtllm"] == "several models share the fleet; TensorRT-LLM needs an engine per model"


def test_stable_high_volume_prefers_trtllm_in_either_flow(tmp_path: Path) -> None:
    for table in ("", '[backends.trtllm]\nflow = "engine"\n'):
        ranking = rank_backends(_spec(tmp_path, "quarterly", table=table), INSTALLED, "NVIDIA")
        assert ranking.order[0] == "trtllm" and ranking.notes == {}
    assert rank_backends(_spec(tmp_path, "quarterly"), INSTALLED, "AMD").reasons["trtllm"].startswith(
        "TensorRT-LLM runs only on NVIDIA GPUs")


def test_a_backend_is_excluded_on_a_gpu_vendor_it_does_not_list(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "weekly")
    vllm = next(info for info in INSTALLED if info.name == "vllm")
    echo = evolve(vllm, name="echo", engine="Echo", gpu_vendors=("nvidia",), strengths=())
    ranking = rank_backends(spec, [vllm, echo], "AMD")
    assert ranking.order == ("vllm",)
    assert ranking.reasons == {"echo": "Echo runs only on NVIDIA GPUs (AMD given); vllm has ROCm builds for AMD "
                                       "Instinct GPUs"}
