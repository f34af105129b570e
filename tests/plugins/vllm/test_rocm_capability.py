"""vLLM 0.33.0's ROCm kernel matrix on the catalog's Instinct GPUs (sources in deployc_vllm/rocm.py)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import attrs
import pytest

from deployc.catalog import resolve_gpu
from deployc.contract import AttentionFacts
from deployc_vllm.capability import capability
from deployc_vllm.rocm import rocm_env


def _target(gpu: str, checkpoint: bool = False) -> Any:
    model = SimpleNamespace(checkpoint_quant=object() if checkpoint else None, attention=AttentionFacts())
    return SimpleNamespace(gpu=resolve_gpu(gpu), model=model, options={})


@pytest.mark.parametrize(("gpu", "fmt", "checkpoint", "kernel"), [
    ("MI300X", "bf16", False, "hipBLASLt BF16 GEMM"),
    ("MI300X", "fp8", False, "AITER/hipBLASLt FP8 scaled GEMM (W8A8, e4m3fnuz)"),
    ("MI325X", "fp8", False, "AITER/hipBLASLt FP8 scaled GEMM (W8A8, e4m3fnuz)"),
    ("MI355X", "fp8", False, "AITER/hipBLASLt FP8 scaled GEMM (W8A8, e4m3fn)"),
    ("MI300X", "awq", True, "Triton AWQ GEMM (W4A16)"),
    ("MI300X", "gptq", True, "Triton W4A16 / Exllama GEMM"),
    ("MI300X", "int8", True, "AITER/Triton INT8 scaled GEMM (W8A8, compressed-tensors)"),
    ("MI355X", "mxfp4", True, "AITER CK MXFP4 (W4A4) MoE and linear"),
    ("MI300X", "mxfp4", True, "AITER Triton MXFP4 (W4A16)"),
])
def test_supported_weights(gpu: str, fmt: str, checkpoint: bool, kernel: str) -> None:
    verdict = capability(_target(gpu, checkpoint), fmt, "auto")
    assert verdict.supported
    assert verdict.kernel == f"{kernel}; attention: ROCm attention / AITER FlashAttention / Triton attention"


def test_fp8_on_mi300x_says_e4m3fnuz_and_the_load_time_conversion() -> None:
    reason = capability(_target("MI300X"), "fp8", "fp8").reason
    assert reason.startswith("FP8 matrix cores (gfx942, ROCm) use the e4m3fnuz format: an OCP e4m3fn checkpoint is "
                             "converted at load (same bytes, each scale doubled)")
    assert reason.endswith("; FP8 KV cache stored as e4m3fnuz (gfx942): half the KV memory")
    assert capability(_target("MI355X"), "fp8", "fp8").reason.endswith("FP8 KV cache stored as e4m3fn (gfx950): "
                                                                       "half the KV memory")


def test_refusals_say_why_and_what_instead() -> None:
    nvfp4 = capability(_target("MI355X"), "nvfp4", "auto")
    assert (nvfp4.supported, nvfp4.alternative) == (False, "fp8 (or mxfp4 on MI355X)")
    assert nvfp4.reason == ("NVFP4 is NVIDIA's format: on ROCm vLLM 0.33.0 has only a software-emulation kernel "
                            "(EmulationNvFp4LinearKernel), far slower than FP8")
    awq = capability(_target("MI300X"), "awq", "auto")
    assert not awq.supported and awq.alternative == "fp8"


def test_only_gfx942_and_gfx950_are_planned() -> None:
    target = _target("MI300X")
    target.gpu = attrs.evolve(target.gpu, name="MI250X", gfx_target="gfx90a")  # a plugin-contributed CDNA 2 GPU
    verdict = capability(target, "bf16", "auto")
    assert not verdict.supported
    assert verdict.reason == ("the vLLM 0.33.0 backend plans AMD Instinct gfx942 (MI300X, MI325X) and gfx950 "
                              "(MI355X); MI250X is gfx90a")
    assert rocm_env(target.gpu) == ()


def test_aiter_switch_has_its_reason() -> None:
    ((name, value, why),) = rocm_env(resolve_gpu("MI300X"))
    assert (name, value) == ("VLLM_ROCM_USE_AITER", "1")
    assert "off by default in vLLM 0.33.0 (envs.py)" in why
