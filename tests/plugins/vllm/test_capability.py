"""The vLLM 0.33.0 kernel matrix on real catalog GPUs (sources in capability.py)."""

from __future__ import annotations

import attrs
import pytest

from deployc.catalog import resolve_gpu
from deployc.planner.plan import Plan
from deployc_vllm.capability import capability, kv_capability, weights_capability
from tests.contract_helpers import facts


@pytest.mark.parametrize(("gpu", "fmt", "supported", "kernel"), [
    ("H100 SXM", "fp8", True, "CUTLASS FP8 scaled GEMM (W8A8)"),
    ("L40S", "fp8", True, "CUTLASS FP8 scaled GEMM (W8A8)"),
    ("A100 80GB SXM", "fp8", True, "Marlin FP8 weight-only (W8A16)"),
    ("Tesla T4", "fp8", True, "Marlin FP8 weight-only (W8A16)"),
    ("Tesla T4", "bf16", False, None),
    ("Tesla T4", "fp16", True, "cuBLAS FP16 GEMM"),
    ("H100 SXM", "mxfp4", True, "OpenAI Triton MXFP4 MoE kernels"),
    ("B200", "mxfp4", True, "FlashInfer TRT-LLM MXFP4 MoE"),
    ("A100 80GB SXM", "mxfp4", True, "Marlin MXFP4 (weight-only)"),
    ("RTX PRO 6000 Blackwell", "mxfp4", True, "Marlin MXFP4 (weight-only)"),
    ("Tesla T4", "mxfp4", False, None),
    ("B200", "nvfp4", True, "CUTLASS/FlashInfer NVFP4 (W4A4)"),
    ("H100 SXM", "nvfp4", True, "Marlin NVFP4 (weight-only W4A16)"),
])
def test_weights(gpu: str, fmt: str, supported: bool, kernel: str | None) -> None:
    g = resolve_gpu(gpu)
    assert g.compute_capability is not None
    verdict = weights_capability(g.compute_capability, fmt, from_checkpoint=fmt in ("mxfp4", "nvfp4"))
    assert (verdict.supported, verdict.kernel) == (supported, kernel)


@pytest.mark.parametrize(("fmt", "cc", "supported", "kernel"), [
    ("awq", (7, 5), True, "Marlin AWQ (W4A16)"),
    ("gptq", (7, 0), True, "GPTQ (non-Marlin)"),
    ("awq", (7, 0), False, None),
])
def test_four_bit_checkpoints(fmt: str, cc: tuple[int, int], supported: bool, kernel: str | None) -> None:
    verdict = weights_capability(cc, fmt, from_checkpoint=True)
    assert (verdict.supported, verdict.kernel) == (supported, kernel)


def test_awq_needs_a_checkpoint() -> None:
    verdict = weights_capability((9, 0), "awq", from_checkpoint=False)
    assert not verdict.supported and verdict.alternative == "fp8"
    assert verdict.reason == ("AWQ needs a checkpoint quantized offline with calibration data; vLLM 0.33.0 cannot "
                              "produce it at load time")


def test_int8_only_from_a_checkpoint() -> None:
    assert not weights_capability((9, 0), "int8", from_checkpoint=False).supported
    assert weights_capability((9, 0), "int8", from_checkpoint=True).supported


@pytest.mark.parametrize(("cc", "supported"), [((9, 0), True), ((8, 9), True), ((8, 0), True), ((7, 5), False)])
def test_fp8_kv_cache(cc: tuple[int, int], supported: bool) -> None:
    verdict = kv_capability(cc, "fp8")
    assert verdict.supported is supported
    if not supported:
        assert verdict.alternative == "float16"


def test_combined_verdict_on_a_target(plans: dict[str, Plan]) -> None:
    target = plans["t4-awq"].target
    verdict = capability(facts(target, "vllm"), "awq", "float16")
    assert verdict.supported
    # A T4 (7.5) has neither FlashAttention (8.0) nor FlashInfer (8.0 in 0.33.0): vLLM runs Triton attention
    assert verdict.kernel == "Marlin AWQ (W4A16); attention: TRITON_ATTN"
    assert not capability(facts(target, "vllm"), "awq", "fp8").supported
    amd = attrs.evolve(target, gpu=attrs.evolve(target.gpu, compute_capability=None, vendor="AMD"))
    assert not capability(facts(amd, "vllm"), "bf16", "bfloat16").supported
