"""Which weight formats and KV-cache dtypes vLLM 0.33.0 runs on which NVIDIA GPU, and with what kernel.

Read from the vLLM 0.33.0 wheel (paths relative to its ``vllm/`` package):

- ``platforms/cuda.py`` ``check_if_supports_dtype``: BF16 needs compute capability 8.0.
- ``model_executor/layers/quantization/fp8.py`` ``Fp8Config.get_min_capability`` = 75, and
  ``utils/marlin_utils_fp8.py`` ``is_fp8_marlin_supported`` = capability ≥ 7.5: below 8.9 FP8
  weights run weight-only (W8A16) through Marlin; from 8.9 CUTLASS runs FP8 × FP8.
- ``auto_awq.py`` (min 75) and ``auto_gptq.py`` (min 60) with ``utils/marlin_utils.py``
  (Marlin from 7.5): AWQ/GPTQ 4-bit use Marlin from Turing on.
- ``mxfp4.py`` ``Mxfp4Config.get_min_capability`` = 80; ``fused_moe/oracle/mxfp4.py`` picks
  FlashInfer TRT-LLM on datacenter Blackwell, OpenAI Triton kernels on Hopper, Marlin elsewhere.
- ``modelopt.py`` ``ModelOptNvFp4Config.get_min_capability`` = 75 and ``utils/marlin_utils_fp4.py``
  (Marlin FP4 from 7.5): NVFP4 is native W4A4 on Blackwell, weight-only Marlin before it.
- ``config/quantization.py``: the only online INT8 (``int8_per_channel_weight_only``) quantizes MoE
  experts only; dense INT8 needs a W8A8 checkpoint (compressed-tensors).
- KV cache: the attention backend vLLM selects for the GPU, KV dtype and model (``attention.py``, from
  ``platforms/cuda.py`` and ``v1/attention/backends/``): FlashAttention (2 on Ampere/Ada, 3 on Hopper) or
  FlashInfer from 8.0, TRITON_ATTN on Turing; an FP8 KV cache needs FA3 (Hopper), FlashInfer (8.0-12.1) or
  Triton from sm_89, so it is not offered on Turing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from deployc.contract import AttentionFacts, Capability
from deployc_vllm import ENGINE_VERSION, attention

if TYPE_CHECKING:
    from deployc.contract import TargetFacts

Cc = tuple[int, int]
AMPERE, ADA, HOPPER, BLACKWELL = (8, 0), (8, 9), (9, 0), (10, 0)
TURING = (7, 5)
_V = f"vLLM {ENGINE_VERSION}"
PLAIN = AttentionFacts()  # a model with nothing the attention kernels must add


def _no(reason: str, alternative: str | None) -> Capability:
    return Capability(supported=False, reason=reason, alternative=alternative)


def _yes(reason: str, kernel: str) -> Capability:
    return Capability(supported=True, reason=reason, kernel=kernel)


def _cc_text(cc: Cc) -> str:
    return f"compute capability {cc[0]}.{cc[1]}"


def _bf16(cc: Cc, where: str, _ckpt: bool) -> Capability:
    if cc < AMPERE:
        return _no(f"BF16 needs compute capability 8.0 in {_V} (platforms/cuda.py); this GPU has {where}", "fp16")
    return _yes(f"BF16 tensor cores ({where})", "cuBLAS BF16 GEMM")


def _fp16(_cc: Cc, where: str, _ckpt: bool) -> Capability:
    return _yes(f"FP16 tensor cores ({where})", "cuBLAS FP16 GEMM")


def _fp8(cc: Cc, where: str, _ckpt: bool) -> Capability:
    if cc >= ADA:
        return _yes(f"native FP8 tensor cores ({where}): weights and activations in FP8",
                    "CUTLASS FP8 scaled GEMM (W8A8)")
    if cc >= TURING:
        return _yes(f"no FP8 tensor cores ({where}): {_V} stores FP8 weights and multiplies in 16-bit; it halves "
                    "weight memory but does not speed up compute", "Marlin FP8 weight-only (W8A16)")
    return _no(f"{_V} runs FP8 weights from compute capability 7.5 (Fp8Config); this GPU has {where}", "fp16")


def _four_bit(name: str) -> Callable[[Cc, str, bool], Capability]:
    def verdict(cc: Cc, where: str, from_checkpoint: bool) -> Capability:
        if not from_checkpoint:
            return _no(f"{name} needs a checkpoint quantized offline with calibration data; {_V} cannot produce it "
                       "at load time", "fp8")
        if cc >= TURING:
            return _yes(f"4-bit {name} weights, 16-bit activations ({where})", f"Marlin {name} (W4A16)")
        if name == "GPTQ" and cc >= (6, 0):
            return _yes(f"GPTQ below compute capability 7.5 ({where}) uses the older kernels", "GPTQ (non-Marlin)")
        return _no(f"{_V} runs {name} from compute capability 7.5 (Marlin); this GPU has {where}", "fp16")
    return verdict


def _int8(cc: Cc, where: str, from_checkpoint: bool) -> Capability:
    if not from_checkpoint:
        return _no(f"{_V} has no load-time INT8 for dense layers (int8_per_channel_weight_only quantizes MoE "
                   "experts only)", "fp8")
    if cc >= TURING:
        return _yes(f"INT8 tensor cores ({where})", "CUTLASS INT8 scaled GEMM (W8A8, compressed-tensors)")
    return _no(f"INT8 W8A8 needs compute capability 7.5; this GPU has {where}", "fp16")


def _mxfp4(cc: Cc, where: str, _ckpt: bool) -> Capability:
    if cc < AMPERE:
        return _no(f"{_V} runs MXFP4 from compute capability 8.0 (Mxfp4Config); this GPU has {where}", None)
    if cc[0] == BLACKWELL[0]:
        return _yes(f"datacenter Blackwell ({where}) has native FP4 tensor cores", "FlashInfer TRT-LLM MXFP4 MoE")
    if cc == HOPPER:
        return _yes(f"Hopper ({where}): MXFP4 experts with 16-bit activations", "OpenAI Triton MXFP4 MoE kernels")
    return _yes(f"{where}: MXFP4 weights dequantized in the kernel, 16-bit compute", "Marlin MXFP4 (weight-only)")


def _nvfp4(cc: Cc, where: str, _ckpt: bool) -> Capability:
    if cc >= BLACKWELL:
        return _yes(f"Blackwell ({where}) has native FP4 tensor cores", "CUTLASS/FlashInfer NVFP4 (W4A4)")
    if cc >= TURING:
        return _yes(f"no FP4 tensor cores ({where}): weights stay 4-bit, compute is 16-bit (no FP4 speed-up)",
                    "Marlin NVFP4 (weight-only W4A16)")
    return _no(f"{_V} runs NVFP4 from compute capability 7.5 (ModelOptNvFp4Config); this GPU has {where}", None)


_WEIGHTS: dict[str, Callable[[Cc, str, bool], Capability]] = {
    "bf16": _bf16, "fp16": _fp16, "fp8": _fp8, "awq": _four_bit("AWQ"), "gptq": _four_bit("GPTQ"), "int8": _int8,
    "mxfp4": _mxfp4, "nvfp4": _nvfp4,
}


def weights_capability(cc: Cc, weights_format: str, from_checkpoint: bool) -> Capability:
    """The verdict for one weight format on a GPU of compute capability ``cc``."""
    verdict = _WEIGHTS.get(weights_format)
    if verdict is None:
        return _no(f"{_V}: unknown weight format {weights_format!r}", None)
    return verdict(cc, _cc_text(cc), from_checkpoint)


def kv_capability(cc: Cc, kv_cache_dtype: str, model: AttentionFacts = PLAIN) -> Capability:
    """The verdict for a KV-cache element type, naming the attention backend vLLM selects for it (attention.py)."""
    where = _cc_text(cc)
    if kv_cache_dtype == "bfloat16" and cc < AMPERE:
        return _no(f"no BF16 on {where}", "float16")
    choice = attention.select(cc, kv_cache_dtype, model)
    if choice is None:
        if kv_cache_dtype == "fp8":
            return _no(f"on {where} no attention backend of {_V} runs an FP8 KV cache: "
                       + "; ".join(attention.why_not(cc, kv_cache_dtype, model)), "float16")
        return _no(f"on {where} no attention backend of {_V} runs this model: "
                   + "; ".join(attention.why_not(cc, kv_cache_dtype, model)), None)
    kernel = choice.label + (", FP8 KV cache" if kv_cache_dtype == "fp8" else "") + attention.softcap_note(model)
    if kv_cache_dtype != "fp8":
        return _yes(f"{kv_cache_dtype} KV cache", kernel)
    if choice.backend == "FLASH_ATTN":  # FA3 on Hopper, FA4 on Blackwell: the query is quantized too
        return _yes(f"FP8 KV cache with FP8 attention math ({where})", kernel)
    return _yes(f"FP8 KV cache stored in FP8 and dequantized inside attention ({where}): half the KV memory",
                kernel)


def capability(target: TargetFacts, weights_format: str, kv_cache_dtype: str) -> Capability:
    """Both verdicts combined: unsupported if either is; the kernels joined otherwise."""
    gpu = target.gpu
    cc = gpu.compute_capability
    if str(getattr(gpu, "vendor", "NVIDIA")).upper() == "AMD":
        from deployc_vllm.rocm import rocm_capability  # noqa: PLC0415  (ROCm verdicts live apart)

        return rocm_capability(target, weights_format, kv_cache_dtype)
    if cc is None or str(getattr(gpu, "vendor", "NVIDIA")).upper() != "NVIDIA":
        return _no(f"the {_V} backend plans NVIDIA and AMD GPUs; {gpu.name} is neither", None)
    ckpt = target.model.checkpoint_quant
    from_checkpoint = ckpt is not None
    weights = weights_capability((cc[0], cc[1]), weights_format, from_checkpoint)
    kv = kv_capability((cc[0], cc[1]), kv_cache_dtype, target.model.attention)
    for verdict in (weights, kv):
        if not verdict.supported:
            return verdict
    return Capability(supported=True, reason=f"{weights.reason}; {kv.reason}",
                      kernel=f"{weights.kernel}; attention: {kv.kernel}")
