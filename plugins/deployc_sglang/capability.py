"""Which weight formats and KV-cache dtypes SGLang 0.5.23 runs on which NVIDIA GPU, and with what kernel.

Read from the SGLang 0.5.23 wheel (paths relative to ``sglang/srt/``); the loader refuses a
method below its minimum (``model_loader/loader.py``: "Minimum capability: ... Current capability: ..."):

- ``layers/quantization/fp8.py`` ``Fp8Config.get_min_capability`` = 80, and
  ``fp8_utils.can_auto_enable_marlin_fp8`` = ``80 <= sm < 89``: on Ampere FP8 weights run
  weight-only (W8A16) through Marlin; from 8.9 FP8 × FP8.  Earlier SGLang releases rejected FP8
  on Ampere outright (sglang#7715); below 8.0 (Turing) 0.5.23 still refuses it.
- ``modelopt_quant.py``: ModelOpt FP8 checkpoints need 89; ``ModelOptFp4Config`` needs 80
  (Marlin FP4 weight-only before Blackwell's native FP4).
- ``awq/awq.py``: AWQ 75 (FP16 activations only), AWQ-Marlin 80; ``gptq/gptq.py``: GPTQ 60,
  GPTQ-Marlin 80.  ``mxfp4.py``: 80.  ``w8a8_int8.py``: 75 (INT8 needs a W8A8 checkpoint).
- BF16 and the FlashInfer / FlashAttention attention backends need compute capability 8.0;
  an FP8 KV cache (``--kv-cache-dtype fp8_e4m3``) is dequantized inside attention on Ampere.  The
  attention backend named is the one the server runs (``attention.py``: SGLang's default for the GPU
  and model, or flashinfer where that default would drop the model's logit soft-capping).
- Turing (7.5) is refused outright, whatever the precision: the prebuilt ``sgl-kernel`` wheels of
  0.5.23 carry no sm_75 images for some of the ops every model runs ("no kernel image is available
  for execution on the device", sgl-project/sglang#38515 and #24224), so a T4 server stops at the
  first forward pass even where the loader's minimum capability (AWQ 75, GPTQ 60) lets it start.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from deployc.contract import AttentionFacts, Capability
from deployc_sglang import ENGINE_VERSION, attention

if TYPE_CHECKING:
    from deployc.contract import TargetFacts

Cc = tuple[int, int]
TURING, AMPERE, ADA, BLACKWELL = (7, 5), (8, 0), (8, 9), (10, 0)
_V = f"SGLang {ENGINE_VERSION}"
PLAIN = AttentionFacts()  # a model with nothing the attention kernels must add


def _no(reason: str, alternative: str | None) -> Capability:
    return Capability(supported=False, reason=reason, alternative=alternative)


def _yes(reason: str, kernel: str) -> Capability:
    return Capability(supported=True, reason=reason, kernel=kernel)


def _where(cc: Cc) -> str:
    return f"compute capability {cc[0]}.{cc[1]}"


def _bf16(cc: Cc, _ckpt: bool) -> Capability:
    if cc < AMPERE:
        return _no(f"BF16 needs compute capability 8.0; this GPU has {_where(cc)}", "use fp16")
    return _yes(f"BF16 tensor cores ({_where(cc)})", "cuBLAS BF16 GEMM")


def _fp16(cc: Cc, _ckpt: bool) -> Capability:
    return _yes(f"FP16 tensor cores ({_where(cc)})", "cuBLAS FP16 GEMM")


def _fp8(cc: Cc, _ckpt: bool) -> Capability:
    if cc >= ADA:
        return _yes(f"native FP8 tensor cores ({_where(cc)})", "FP8 scaled GEMM (W8A8)")
    if cc >= AMPERE:
        return _yes(f"no FP8 tensor cores ({_where(cc)}): {_V} auto-enables Marlin FP8 on sm80-88 "
                    "(fp8_utils.can_auto_enable_marlin_fp8); half the weight memory, no FP8 speed-up "
                    "(older SGLang rejected FP8 on Ampere, sglang#7715)", "Marlin FP8 weight-only (W8A16)")
    return _no(f"{_V} refuses FP8 weights below compute capability 8.0 (Fp8Config.get_min_capability = 80; "
               f"sglang#7715); this GPU has {_where(cc)}", "use AWQ 4-bit (AWQ kernel from 7.5) or fp16 weights")


def _awq(cc: Cc, ckpt: bool) -> Capability:
    if not ckpt:
        return _no(f"AWQ needs a checkpoint quantized offline; {_V} cannot make one at load time",
                   "use an AWQ checkpoint, or fp8")
    if cc >= AMPERE:
        return _yes(f"4-bit AWQ weights ({_where(cc)})", "AWQ-Marlin (W4A16)")
    if cc >= TURING:
        return _yes(f"4-bit AWQ weights with FP16 activations ({_where(cc)}; AWQ-Marlin needs 8.0)",
                    "AWQ GEMM (W4A16)")
    return _no(f"{_V} runs AWQ from compute capability 7.5; this GPU has {_where(cc)}", "use fp16")


def _gptq(cc: Cc, ckpt: bool) -> Capability:
    if not ckpt:
        return _no(f"GPTQ needs a checkpoint quantized offline; {_V} cannot make one at load time",
                   "use a GPTQ checkpoint, or fp8")
    if cc >= AMPERE:
        return _yes(f"4-bit GPTQ weights ({_where(cc)})", "GPTQ-Marlin (W4A16)")
    return _yes(f"4-bit GPTQ weights ({_where(cc)}; GPTQ-Marlin needs 8.0)", "GPTQ (W4A16)")


def _int8(cc: Cc, ckpt: bool) -> Capability:
    if not ckpt:
        return _no(f"{_V} has no load-time INT8 for dense layers (w8a8_int8 needs a W8A8 checkpoint)", "use fp8")
    if cc >= TURING:
        return _yes(f"INT8 tensor cores ({_where(cc)})", "W8A8 INT8 GEMM")
    return _no(f"W8A8 INT8 needs compute capability 7.5; this GPU has {_where(cc)}", "use fp16")


def _mxfp4(cc: Cc, _ckpt: bool) -> Capability:
    if cc < AMPERE:
        return _no(f"{_V} runs MXFP4 from compute capability 8.0 (Mxfp4Config); this GPU has {_where(cc)}", None)
    return _yes(f"MXFP4 MoE weights ({_where(cc)})", "MXFP4 MoE (FlashInfer on Blackwell, Triton/Marlin before)")


def _nvfp4(cc: Cc, _ckpt: bool) -> Capability:
    if cc >= BLACKWELL:
        return _yes(f"Blackwell ({_where(cc)}) has native FP4 tensor cores", "ModelOpt NVFP4 (W4A4)")
    if cc >= AMPERE:
        return _yes(f"no FP4 tensor cores ({_where(cc)}): weights stay 4-bit, compute is 16-bit",
                    "Marlin NVFP4 (weight-only)")
    return _no(f"{_V} runs NVFP4 from compute capability 8.0 (ModelOptFp4Config); this GPU has {_where(cc)}",
               "use awq")


_WEIGHTS: dict[str, Callable[[Cc, bool], Capability]] = {
    "bf16": _bf16, "fp16": _fp16, "fp8": _fp8, "awq": _awq, "gptq": _gptq, "int8": _int8, "mxfp4": _mxfp4,
    "nvfp4": _nvfp4,
}


def weights_capability(cc: Cc, weights_format: str, from_checkpoint: bool) -> Capability:
    """The verdict for one weight format on a GPU of compute capability ``cc``."""
    verdict = _WEIGHTS.get(weights_format)
    if verdict is None:
        return _no(f"{_V}: unknown weight format {weights_format!r}", None)
    return verdict(cc, from_checkpoint)


def kv_capability(cc: Cc, kv_cache_dtype: str, model: AttentionFacts = PLAIN) -> Capability:
    """The verdict for a KV-cache element type, naming the attention backend the server runs (attention.py)."""
    if kv_cache_dtype == "bfloat16" and cc < AMPERE:
        return _no(f"no BF16 on {_where(cc)}", "use a float16 KV cache")
    backend = attention.label(cc, model)
    if kv_cache_dtype != "fp8":
        return _yes(f"{kv_cache_dtype} KV cache", backend)
    if cc >= ADA:
        return _yes(f"FP8 (e4m3) KV cache ({_where(cc)})", f"{backend}, FP8 KV cache (fp8_e4m3)")
    if cc >= AMPERE:
        return _yes(f"FP8 (e4m3) KV cache dequantized inside attention ({_where(cc)}): half the KV memory",
                    f"{backend}, FP8 KV cache (dequantizing)")
    return _no(f"{_V}'s FlashInfer/FlashAttention backends need compute capability 8.0 for an FP8 KV cache; "
               f"this GPU has {_where(cc)}", "use a float16 KV cache")


def capability(target: TargetFacts, weights_format: str, kv_cache_dtype: str) -> Capability:
    """Both verdicts combined: unsupported if either is; the kernels joined otherwise."""
    gpu = target.gpu
    cc = gpu.compute_capability
    if str(getattr(gpu, "vendor", "NVIDIA")).upper() == "AMD":
        from deployc_sglang.rocm import rocm_capability  # noqa: PLC0415  (ROCm verdicts live apart)

        return rocm_capability(target, weights_format, kv_cache_dtype)
    if cc is None or str(getattr(gpu, "vendor", "NVIDIA")).upper() != "NVIDIA":
        return _no(f"the {_V} backend plans NVIDIA and AMD GPUs; {gpu.name} is neither", "use vllm")
    pair = (cc[0], cc[1])
    if pair < AMPERE:
        return _no(f"{_V}'s prebuilt kernels (sgl-kernel) have no sm_{cc[0]}{cc[1]} images for some ops every model "
                   f"runs (sgl-project/sglang#38515, #24224); {gpu.name} has {_where(pair)}",
                   "use vllm (runs AWQ and GPTQ on Turing through Marlin)")
    weights = weights_capability(pair, weights_format, target.model.checkpoint_quant is not None)
    kv = kv_capability(pair, kv_cache_dtype, target.model.attention)
    for verdict in (weights, kv):
        if not verdict.supported:
            return verdict
    return Capability(supported=True, reason=f"{weights.reason}; {kv.reason}",
                      kernel=f"{weights.kernel}; attention: {kv.kernel}")
