"""vLLM 0.33.0 on AMD Instinct GPUs (ROCm): what it runs, its image, its environment, its monitoring.

Read from the vLLM 0.33.0 wheel (paths relative to its ``vllm/`` package):

- ``platforms/rocm.py``: ``supported_quantization`` lists awq, gptq, fp8, compressed-tensors, quark,
  mxfp4, modelopt_fp4...; ``is_fp8_fnuz`` is true on gfx94x (MI300X, MI325X), so ``fp8_dtype`` is
  ``float8_e4m3fnuz`` there and OCP ``float8_e4m3fn`` on gfx950 (MI355X); ``use_custom_allreduce``
  is true on gfx94x/gfx95x; ``supports_mx`` only on gfx95x; ``verify_quantization`` forces
  ``VLLM_USE_TRITON_AWQ=1`` (AWQ runs through Triton, not Marlin).
- ``model_executor/layers/quantization/fp8.py`` and ``kv_cache.py``: OCP e4m3fn checkpoints are converted
  at load with ``normalize_e4m3fn_to_e4m3fnuz`` on fnuz GPUs (same bytes, doubled scales).
- ``model_executor/kernels/linear/__init__.py``: on ROCm FP8 GEMMs are AITER (hipBLASLt/CK) then torch
  ``_scaled_mm``; 4-bit (W4A16) GEMMs are Triton W4A16 / Conch / Exllama (no Marlin, no Machete);
  MXFP4 has an AITER kernel; NVFP4 has only ``EmulationNvFp4LinearKernel`` (software dequantization).
- ``model_executor/layers/fused_moe/oracle/mxfp4.py``: AITER CK MXFP4 × MXFP4 (W4A4) MoE on gfx950;
  AITER Triton MXFP4 × BF16 (W4A16) on gfx942.
- ``v1/attention/backends/rocm_attn.py``, ``rocm_aiter_fa.py``, ``triton_attn.py``: each lists
  ``fp8_e4m3`` in ``supported_kv_cache_dtypes``; ``platforms/rocm.py _get_backend_priorities`` tries
  ROCM_ATTN, then ROCM_AITER_FA when AITER is enabled, then AITER unified attention, then Triton.
- ``envs.py``: ``VLLM_ROCM_USE_AITER`` defaults to off; its sub-switches (linear, MoE, RMSNorm, MLA,
  MHA, custom all-reduce) default to on, so the one switch turns AITER on everywhere it applies.
- ``_aiter_ops.py is_aiter_found_and_supported``: AITER needs CDNA 3 or newer (gfx942, gfx950).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deployc.contract import Alternative, Capability, Decision
from deployc_vllm import ENGINE_VERSION, ROCM_IMAGE, ROCM_IMAGE_TAG
from deployc_vllm.attention import rocm_softcap_backend, softcap_note

if TYPE_CHECKING:
    from deployc.contract import GPU, Deployment, TargetFacts

# The vLLM project's own ROCm release image, built from the same release tag as the wheel whose parser checked
# every flag (Docker Hub vllm/vllm-openai-rocm:vX.Y.Z, e.g. v0.17.0, v0.23.0, v0.31.0 in public deployments).
# AMD's rocm/vllm images carry a ROCm version and a build date in the tag and trail the vLLM releases.
GFX942, GFX950 = "gfx942", "gfx950"
PLANNED_TARGETS = (GFX942, GFX950)
_V = f"vLLM {ENGINE_VERSION}"


def _no(reason: str, alternative: str | None) -> Capability:
    return Capability(supported=False, reason=reason, alternative=alternative)


def _yes(reason: str, kernel: str) -> Capability:
    return Capability(supported=True, reason=reason, kernel=kernel)


def _fp8(gfx: str, where: str) -> Capability:
    if gfx == GFX942:
        return _yes(f"FP8 matrix cores ({where}) use the e4m3fnuz format: an OCP e4m3fn checkpoint is converted at "
                    "load (same bytes, each scale doubled), online quantization writes e4m3fnuz directly",
                    "AITER/hipBLASLt FP8 scaled GEMM (W8A8, e4m3fnuz)")
    return _yes(f"OCP FP8 (e4m3fn) matrix cores ({where})", "AITER/hipBLASLt FP8 scaled GEMM (W8A8, e4m3fn)")


def _weights(gfx: str, weights_format: str, from_checkpoint: bool) -> Capability:
    where = f"{gfx}, ROCm"
    if weights_format in ("bf16", "fp16"):
        return _yes(f"{weights_format.upper()} matrix cores ({where})", f"hipBLASLt {weights_format.upper()} GEMM")
    if weights_format == "fp8":
        return _fp8(gfx, where)
    if weights_format in ("awq", "gptq", "int8") and not from_checkpoint:
        return _no(f"{weights_format.upper()} needs a checkpoint quantized offline; {_V} cannot produce it at load "
                   "time", "fp8")
    if weights_format == "awq":
        return _yes(f"4-bit AWQ weights, 16-bit activations ({where}); {_V} forces VLLM_USE_TRITON_AWQ=1 on ROCm",
                    "Triton AWQ GEMM (W4A16)")
    if weights_format == "gptq":
        return _yes(f"4-bit GPTQ weights, 16-bit activations ({where}); Marlin is CUDA-only",
                    "Triton W4A16 / Exllama GEMM")
    if weights_format == "int8":
        return _yes(f"INT8 matrix cores ({where})", "AITER/Triton INT8 scaled GEMM (W8A8, compressed-tensors)")
    if weights_format == "mxfp4":
        if gfx == GFX950:
            return _yes(f"CDNA 4 ({where}) has native MX FP4 matrix cores", "AITER CK MXFP4 (W4A4) MoE and linear")
        return _yes(f"no FP4 matrix cores on CDNA 3 ({where}): MXFP4 weights, BF16 compute (no FP4 speed-up)",
                    "AITER Triton MXFP4 (W4A16)")
    if weights_format == "nvfp4":
        return _no(f"NVFP4 is NVIDIA's format: on ROCm {_V} has only a software-emulation kernel "
                   "(EmulationNvFp4LinearKernel), far slower than FP8", "fp8 (or mxfp4 on MI355X)")
    return _no(f"{_V}: unknown weight format {weights_format!r}", None)


def _kv(gfx: str, kv_cache_dtype: str) -> Capability:
    if kv_cache_dtype != "fp8":
        return _yes(f"{kv_cache_dtype} KV cache", "ROCm attention / AITER FlashAttention / Triton attention")
    fmt = "e4m3fnuz" if gfx == GFX942 else "e4m3fn"
    return _yes(f"FP8 KV cache stored as {fmt} ({gfx}): half the KV memory", f"ROCm/AITER attention, FP8 KV ({fmt})")


def rocm_capability(target: TargetFacts, weights_format: str, kv_cache_dtype: str) -> Capability:
    """vLLM's verdict for a precision on an AMD GPU: gfx942 and gfx950 are planned, others refused."""
    gpu = target.gpu
    gfx = gpu.gfx_target or ""
    if gfx not in PLANNED_TARGETS:
        return _no(f"the {_V} backend plans AMD Instinct gfx942 (MI300X, MI325X) and gfx950 (MI355X); {gpu.name} is "
                   f"{gfx or 'of unknown ISA'}", None)
    weights = _weights(gfx, weights_format, target.model.checkpoint_quant is not None)
    kv = _kv(gfx, kv_cache_dtype)
    softcap = rocm_softcap_backend(target.model.attention)
    if softcap is not None and kv.supported:  # vLLM's first choice, ROCM_ATTN, would drop the cap
        kv = _yes(kv.reason, f"{softcap}{softcap_note(target.model.attention)} (passed as --attention-backend: "
                             "ROCM_ATTN, vLLM's first choice on ROCm, does not apply the cap)"
                             + (", FP8 KV" if kv_cache_dtype == "fp8" else ""))
    for verdict in (weights, kv):
        if not verdict.supported:
            return verdict
    return Capability(supported=True, reason=f"{weights.reason}; {kv.reason}",
                      kernel=f"{weights.kernel}; attention: {kv.kernel}")


def rocm_env(gpu: GPU) -> tuple[tuple[str, str, str], ...]:
    """(name, value, why) of the ROCm variables AMD recommends for vLLM on this GPU."""
    if gpu.gfx_target not in PLANNED_TARGETS:
        return ()
    return (("VLLM_ROCM_USE_AITER", "1",
             f"AMD's AI Tensor Engine kernels (GEMM, fused MoE, RMSNorm, MLA/MHA attention, custom all-reduce) on "
             f"{gpu.gfx_target}: off by default in {_V} (envs.py), and AMD's MI300X/MI355X serving recipes turn it "
             "on; each sub-switch (VLLM_ROCM_USE_AITER_MOE, _MLA, _LINEAR...) stays at its default, on"),)


def rocm_decision(deployment: Deployment) -> Decision:
    """How vLLM runs on ROCm for this plan: image, AITER, HIP graphs, custom all-reduce."""
    gpu = deployment.gpu
    fnuz = gpu.gfx_target == GFX942
    tp = max(pool.layout.tp for pool in deployment.pools)
    return Decision(
        id="vllm.rocm", value=f"ROCm build on {gpu.gfx_target}", rule="DPD501",
        reason=(f"{gpu.name} is an AMD Instinct GPU: the ROCm image {ROCM_IMAGE}:{ROCM_IMAGE_TAG} (same vLLM release "
                f"as the checked flags), AITER kernels on; CUDA graphs are HIP graphs on ROCm, captured exactly as "
                f"on CUDA; {'FP8 is e4m3fnuz on this GPU' if fnuz else 'FP8 is OCP e4m3fn on this GPU'}"
                + (f"; tensor parallelism over {tp} GPUs uses vLLM's custom all-reduce (use_custom_allreduce is true "
                   "on gfx94x/gfx95x) with AITER's, RCCL for the rest" if tp > 1 else "")),
        rejected=(Alternative("rocm/vllm (AMD's image)", "its tags name a ROCm version and a build date, not the vLLM "
                                                        "release the flags were checked against"),
                  Alternative("VLLM_ROCM_USE_AITER=0 (the default)", "the generic Triton/hipBLASLt paths; AMD's "
                                                                      "recipes enable AITER on MI300X and MI355X")))


# Attention backends of vLLM 0.33.0 (v1/attention/backends/registry.py) that exist for one vendor only: the CUDA
# kernels (FlashAttention, FlashInfer, FlashMLA, CUTLASS MLA) and the ROCm/AITER ones (rocm_*.py).
CUDA_ONLY_ATTENTION = frozenset({"FLASH_ATTN", "FLASH_ATTN_DIFFKV", "FLASHINFER", "TRITON_FLASHINFER",
                                 "FLASHINFER_MLA", "FLASHINFER_MLA_SPARSE", "CUTLASS_MLA", "FLASHMLA",
                                 "FLASHMLA_SPARSE", "FLASH_ATTN_MLA", "FLASH_ATTN_MLA_SPARSE"})
ROCM_ONLY_ATTENTION = frozenset({"ROCM_ATTN", "ROCM_SEGMENTED_ATTN", "ROCM_AITER_MLA", "ROCM_AITER_TRITON_MLA",
                                 "ROCM_AITER_FA", "ROCM_AITER_MLA_SPARSE", "ROCM_AITER_UNIFIED_ATTN"})
ATTENTION_FLAG = "--attention-backend"


def attention_values(extra_args: tuple[str, ...]) -> list[str]:
    """The backends the extra arguments name with --attention-backend, upper-cased as vLLM's enum spells them."""
    values = []
    for i, arg in enumerate(extra_args):
        flag, eq, value = arg.partition("=")
        if flag == ATTENTION_FLAG:
            values.append(value if eq else (extra_args[i + 1] if i + 1 < len(extra_args) else ""))
    return [v.upper() for v in values if v]


def vendor_mismatches(gpu: GPU, extra_args: tuple[str, ...]) -> list[tuple[str, str]]:
    """(message, fix) for each extra argument that names another vendor's kernel than the plan's GPU."""
    out = []
    for value in attention_values(extra_args):
        if gpu.is_amd and value in CUDA_ONLY_ATTENTION:
            out.append((f"{ATTENTION_FLAG} {value} is a CUDA kernel; {gpu.name} is an AMD GPU (ROCm)",
                        "drop it (vLLM picks ROCM_ATTN / ROCM_AITER_FA / TRITON_ATTN on ROCm) or name one of those"))
        elif not gpu.is_amd and value in ROCM_ONLY_ATTENTION:
            out.append((f"{ATTENTION_FLAG} {value} is a ROCm kernel; {gpu.name} is an NVIDIA GPU (CUDA)",
                        "drop it (vLLM picks FLASH_ATTN / FLASHINFER on CUDA) or name one of those"))
    return out
