"""Which weight formats and KV-cache dtypes TensorRT-LLM 1.2 builds engines for, on which NVIDIA GPU.

Sources: TensorRT-LLM "Supported Hardware" (nvidia.github.io/TensorRT-LLM/supported-hardware.html):
Blackwell, Hopper, Ada Lovelace and Ampere only (Turing and Volta are not listed); the support
matrix precision list (FP8 from SM89, INT8/INT4 from SM80; NVFP4 needs Blackwell's FP4 tensor
cores); ``examples/quantization/quantize.py`` ``--qformat`` choices (nvfp4, fp8, int8_sq,
int4_awq, w4a8_awq, int8_wo, int4_wo, full_prec; see ``data/trtllm-quantize.json``): the engine
flow quantizes a 16-bit checkpoint itself with ModelOpt, so checkpoints already quantized
elsewhere (AutoAWQ, GPTQ, MXFP4) are not an input to it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deployc.backend import Capability
from deployc_trtllm import ENGINE_VERSION

if TYPE_CHECKING:
    from deployc.target import Target

Cc = tuple[int, int]
AMPERE, ADA, BLACKWELL = (8, 0), (8, 9), (10, 0)
_V = f"TensorRT-LLM {ENGINE_VERSION}"
QFORMAT = {"bf16": "full_prec", "fp16": "full_prec", "fp8": "fp8", "awq": "int4_awq", "int8": "int8_sq",
           "nvfp4": "nvfp4"}


def _no(reason: str, alternative: str | None) -> Capability:
    return Capability(supported=False, reason=reason, alternative=alternative)


def weights_capability(cc: Cc, weights_format: str, from_checkpoint: bool) -> Capability:
    """The verdict for one weight format on compute capability ``cc`` (Ampere or newer)."""
    where = f"compute capability {cc[0]}.{cc[1]}"
    if weights_format not in QFORMAT:
        return _no(f"{_V}'s engine flow (quantize.py + trtllm-build) has no {weights_format} path; it serves "
                   "checkpoints of that format only through its PyTorch flow, which deployc does not emit yet",
                   "use vllm or sglang")
    if from_checkpoint and weights_format not in ("bf16", "fp16"):
        return _no(f"the checkpoint is already quantized ({weights_format}); {_V}'s quantize.py quantizes a 16-bit "
                   "checkpoint itself with ModelOpt", "point model.id at the 16-bit model and set "
                   f'quantization = "{weights_format}", or use vllm or sglang')
    if weights_format == "fp8" and cc < ADA:
        return _no(f"FP8 engines need compute capability 8.9 (Ada, Hopper, Blackwell); this GPU has {where}",
                   "use int4 AWQ (awq) or bf16")
    if weights_format == "nvfp4" and cc < BLACKWELL:
        return _no(f"NVFP4 engines need Blackwell's FP4 tensor cores; this GPU has {where}", "use fp8 or awq")
    qformat = QFORMAT[weights_format]
    return Capability(supported=True, reason=f"{weights_format} engine built for {where}",
                      kernel=f"TensorRT engine ({'quantize.py --qformat ' + qformat})")


def capability(target: Target, weights_format: str, kv_cache_dtype: str) -> Capability:
    """NVIDIA Ampere or newer only, then the weight and KV verdicts."""
    gpu = target.gpu
    cc = gpu.compute_capability
    if cc is None or str(getattr(gpu, "vendor", "NVIDIA")).upper() != "NVIDIA":
        return _no(f"{_V} runs only on NVIDIA GPUs; {gpu.name} is not one", "use vllm")
    pair = (cc[0], cc[1])
    if pair < AMPERE:
        return _no(f"{_V} supports Ampere, Ada, Hopper and Blackwell (Supported Hardware page); {gpu.name} has "
                   f"compute capability {cc[0]}.{cc[1]}", "use vllm (runs AWQ on Turing)")
    if kv_cache_dtype == "fp8" and pair < ADA:
        return _no(f"an FP8 KV cache needs compute capability 8.9; {gpu.name} has {cc[0]}.{cc[1]}",
                   "use a 16-bit KV cache")
    weights = weights_capability(pair, weights_format, target.model.checkpoint_quant is not None)
    if not weights.supported:
        return weights
    return Capability(supported=True, reason=f"{weights.reason}; {kv_cache_dtype} KV cache",
                      kernel=weights.kernel)
