"""SGLang 0.5.23 on AMD Instinct GPUs (ROCm): what it runs, its image, its environment and its memory rule.

Read from the SGLang 0.5.23 wheel (paths relative to ``sglang/``):

- ``kernels/ops/quantization/fp8_kernel.py is_fp8_fnuz``: true on gfx94x (MI300X, MI325X), whose FP8 is
  e4m3fnuz; OCP e4m3fn checkpoints are normalized at load; gfx950 (MI355X) runs OCP e4m3fn.
- ``srt/layers/quantization/awq/__init__.py`` imports the Triton AWQ kernels, and ``awq.py`` accepts HIP
  (only the fused Marlin MoE path is missing there).
- ``srt/layers/quantization/gptq/schemes/gptq_linear.py``: "The non-Marlin GPTQ CUDA kernel has been
  removed"; Marlin is a CUDA kernel, so GPTQ has no ROCm path.
- ``srt/layers/quantization/mxfp4.py``: AITER MXFP4 (shuffled weights on gfx95x, ``is_gfx95_supported``).
- ``srt/arg_groups/model_override_base.py``: the default attention backend on HIP is ``aiter`` (MLA models:
  ``aiter`` when the KV heads per rank are 16 or 128, else ``triton``).
- ``srt/arg_groups/attention_hook.py``: with the ``aiter`` backend and a context longer than 8,192 tokens
  SGLang multiplies ``mem_fraction_static`` by 0.85 (room for AITER's attention workspace), even an
  explicit one, unless ``SGLANG_AITER_HONOR_EXPLICIT_MEM_FRACTION`` is set.
- ``srt/environ.py``: ``SGLANG_USE_AITER = EnvBool(False)``: AITER kernels (GEMM, MoE, norms) are opt-in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deployc.contract import Alternative, Capability, Decision
from deployc_sglang import ENGINE_VERSION

if TYPE_CHECKING:
    from deployc.contract import GPU, Deployment, TargetFacts

# SGLang's AMD release images live beside the CUDA ones in lmsysorg/sglang, one per GPU family because
# sgl-kernel and AITER are compiled per ISA: v<version>-rocm<ROCm>-mi30x (gfx942) and -mi35x (gfx950), e.g.
# lmsysorg/sglang:v0.5.12-rocm720-mi30x (github SemiAnalysisAI/InferenceX PR #1430), v0.5.6.post2-rocm700-mi35x
# (PR #369). ROCm 7.2.0 is the ROCm of the most recent such tags seen; a registry that adds a build date to the
# tag is served with operations.image_tag.
ROCM_IMAGE = "lmsysorg/sglang"
ROCM_VERSION_TAG = "rocm720"
FAMILY_TAG = {"gfx942": "mi30x", "gfx950": "mi35x"}
AITER_SCALE = 0.85  # attention_hook.py: mem_fraction_static * 0.85 with the aiter backend
AITER_SCALE_ABOVE_TOKENS = 8192  # ... when the context is longer than this
_V = f"SGLang {ENGINE_VERSION}"


def rocm_image_tag(gfx_target: str | None) -> str:
    """``v0.5.23-rocm720-mi30x`` (MI300X, MI325X) or ``...-mi35x`` (MI355X)."""
    return f"v{ENGINE_VERSION}-{ROCM_VERSION_TAG}-{FAMILY_TAG.get(gfx_target or '', 'mi30x')}"


def _no(reason: str, alternative: str | None) -> Capability:
    return Capability(supported=False, reason=reason, alternative=alternative)


def _yes(reason: str, kernel: str) -> Capability:
    return Capability(supported=True, reason=reason, kernel=kernel)


def _weights(gfx: str, weights_format: str, from_checkpoint: bool) -> Capability:
    where = f"{gfx}, ROCm"
    fnuz = gfx == "gfx942"
    if weights_format in ("bf16", "fp16"):
        return _yes(f"{weights_format.upper()} matrix cores ({where})", f"hipBLASLt {weights_format.upper()} GEMM")
    if weights_format == "fp8":
        fmt, note = ("e4m3fnuz", " (OCP e4m3fn checkpoints normalized at load)") if fnuz else ("e4m3fn", " (OCP)")
        return _yes(f"FP8 matrix cores ({where}) in {fmt}{note}", f"AITER/hipBLASLt FP8 GEMM (W8A8, {fmt})")
    if weights_format in ("awq", "int8") and not from_checkpoint:
        return _no(f"{weights_format.upper()} needs a checkpoint quantized offline", "use fp8")
    if weights_format == "awq":
        return _yes(f"4-bit AWQ weights, 16-bit activations ({where})", "Triton AWQ dequantize + GEMM (W4A16)")
    if weights_format == "gptq":
        return _no(f"{_V} removed its non-Marlin GPTQ kernel (gptq_linear.py) and Marlin is CUDA-only: no GPTQ on "
                   "ROCm", "use vllm (Triton W4A16 GPTQ on ROCm) or an AWQ checkpoint")
    if weights_format == "int8":
        return _yes(f"INT8 matrix cores ({where})", "W8A8 INT8 (Triton)")
    if weights_format == "mxfp4":
        if gfx == "gfx950":
            return _yes(f"CDNA 4 ({where}) has native MX FP4 matrix cores", "AITER MXFP4 (W4A4) MoE")
        return _yes(f"no FP4 matrix cores on CDNA 3 ({where}): MXFP4 weights, 16-bit compute", "AITER MXFP4 (W4A16)")
    if weights_format == "nvfp4":
        return _no("NVFP4 is NVIDIA's format (ModelOpt FP4, CUDA kernels only in SGLang)",
                   "use fp8 (or mxfp4 on MI355X)")
    return _no(f"{_V}: unknown weight format {weights_format!r}", None)


def rocm_capability(target: TargetFacts, weights_format: str, kv_cache_dtype: str) -> Capability:
    """SGLang's verdict for a precision on an AMD GPU (gfx942 and gfx950 are planned)."""
    gpu = target.gpu
    gfx = gpu.gfx_target or ""
    if gfx not in FAMILY_TAG:
        return _no(f"the {_V} backend plans AMD Instinct gfx942 (MI300X, MI325X) and gfx950 (MI355X); {gpu.name} is "
                   f"{gfx or 'of unknown ISA'}", None)
    weights = _weights(gfx, weights_format, target.model.checkpoint_quant is not None)
    if not weights.supported:
        return weights
    fmt = "e4m3fnuz" if gfx == "gfx942" else "e4m3fn"
    kv = (f"FP8 KV cache (--kv-cache-dtype fp8_e4m3, stored as {fmt})" if kv_cache_dtype == "fp8"
          else f"{kv_cache_dtype} KV cache")
    return Capability(supported=True, reason=f"{weights.reason}; {kv}",
                      kernel=f"{weights.kernel}; attention: AITER (SGLang's default on ROCm)")


def rocm_env(gpu: GPU) -> tuple[tuple[str, str, str], ...]:
    """(name, value, why) of the ROCm variables AMD recommends for SGLang on this GPU."""
    if gpu.gfx_target not in FAMILY_TAG:
        return ()
    return (("SGLANG_USE_AITER", "1",
             f"AMD's AI Tensor Engine kernels (FP8/BF16 GEMM, fused MoE, norms, rotary) on {gpu.gfx_target}: off by "
             f"default in {_V} (srt/environ.py SGLANG_USE_AITER = EnvBool(False)); AMD's MI300X/MI355X SGLang "
             "recipes turn it on"),)


def aiter_scales_fraction(gpu_is_amd: bool, max_model_len: int) -> bool:
    """Whether SGLang will multiply ``--mem-fraction-static`` by 0.85 (aiter backend, context > 8,192)."""
    return gpu_is_amd and max_model_len > AITER_SCALE_ABOVE_TOKENS


def rocm_decision(deployment: Deployment) -> Decision:
    """How SGLang runs on ROCm for this plan: image, AITER, attention backend, graphs."""
    gpu = deployment.gpu
    return Decision(
        id="sglang.rocm", value=f"ROCm build on {gpu.gfx_target}", rule="DPD501",
        reason=(f"{gpu.name} is an AMD Instinct GPU: SGLang's ROCm image for its family "
                f"({ROCM_IMAGE}:{rocm_image_tag(gpu.gfx_target)}), AITER kernels on (SGLANG_USE_AITER=1) and AITER "
                "attention "
                "(SGLang's default on ROCm); CUDA graphs are HIP graphs, captured as on CUDA; custom all-reduce "
                "stays on (SGLang's own kernel, RCCL beside it)"),
        rejected=(Alternative("the CUDA image (lmsysorg/sglang:v" + ENGINE_VERSION + ")",
                              "built for CUDA only: it finds no GPU on ROCm"),
                  Alternative("SGLANG_USE_AITER unset (the default)", "Triton and hipBLASLt paths only; AMD's "
                                                                      "recipes enable AITER")))
