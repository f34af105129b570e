"""Which weight formats and KV-cache dtypes TensorRT-LLM 1.2 serves, on which NVIDIA GPU, per flow.

Sources: TensorRT-LLM "Supported Hardware" (nvidia.github.io/TensorRT-LLM/supported-hardware.html):
Blackwell, Hopper, Ada Lovelace and Ampere only (Turing and Volta are not listed); the support
matrix precision list (FP8 from SM89; NVFP4 needs Blackwell's FP4 tensor cores).

PyTorch flow (the default): ``trtllm-serve`` loads the Hugging Face checkpoint as it is, including
checkpoints already quantized to FP8 (ModelOpt, or the model's own FP8 such as DeepSeek-R1's
128×128 block scales, which run on Hopper and Blackwell: ``examples/models/core/deepseek_v3``),
NVFP4 (ModelOpt, Blackwell) and MXFP4 (gpt-oss, Hopper and Blackwell: the gpt-oss deployment guide).
It does not quantize a 16-bit checkpoint at load time in deployc's emitted form, so a requested
quantization of a 16-bit model points at a pre-quantized checkpoint or the engine flow.

Engine flow: ``examples/quantization/quantize.py`` ``--qformat`` choices (nvfp4, fp8, int8_sq,
int4_awq, w4a8_awq, int8_wo, int4_wo, full_prec; ``data/trtllm-quantize.json``) quantize a 16-bit
checkpoint with ModelOpt, so checkpoints quantized elsewhere (AutoAWQ, GPTQ, MXFP4) are not an input.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from deployc.contract import Capability
from deployc_trtllm import ENGINE_VERSION
from deployc_trtllm.options import parse_options

if TYPE_CHECKING:
    from deployc.contract import CheckpointQuant, Deployment, TargetFacts

Cc = tuple[int, int]
# The two flows: trtllm-serve loading the checkpoint (PyTorch), or quantize.py + trtllm-build first (engine).
Flow = Literal["pytorch", "engine"]
AMPERE, ADA, HOPPER, BLACKWELL = (8, 0), (8, 9), (9, 0), (10, 0)
_V = f"TensorRT-LLM {ENGINE_VERSION}"
QFORMAT = {"bf16": "full_prec", "fp16": "full_prec", "fp8": "fp8", "awq": "int4_awq", "int8": "int8_sq",
           "nvfp4": "nvfp4"}
ENGINE_FLOW_HINT = 'or set [backends.trtllm] flow = "engine" (quantize.py quantizes the 16-bit checkpoint)'


def _no(reason: str, alternative: str | None) -> Capability:
    return Capability(supported=False, reason=reason, alternative=alternative)


def weights_capability(cc: Cc, weights_format: str, from_checkpoint: bool) -> Capability:
    """The engine flow's verdict for one weight format on compute capability ``cc`` (Ampere or newer)."""
    where = f"compute capability {cc[0]}.{cc[1]}"
    if weights_format not in QFORMAT:
        return _no(f"{_V}'s engine flow (quantize.py + trtllm-build) has no {weights_format} path; its PyTorch "
                   "flow serves checkpoints of that format", 'remove flow = "engine" from [backends.trtllm], or use '
                   "vllm or sglang")
    if from_checkpoint and weights_format not in ("bf16", "fp16"):
        return _no(f"the checkpoint is already quantized ({weights_format}); {_V}'s quantize.py quantizes a 16-bit "
                   "checkpoint itself with ModelOpt", "point model.id at the 16-bit model and set "
                   f'quantization = "{weights_format}", or use the PyTorch flow, vllm or sglang')
    if weights_format == "fp8" and cc < ADA:
        return _no(f"FP8 engines need compute capability 8.9 (Ada, Hopper, Blackwell); this GPU has {where}",
                   "use int4 AWQ (awq) or bf16")
    if weights_format == "nvfp4" and cc < BLACKWELL:
        return _no(f"NVFP4 engines need Blackwell's FP4 tensor cores; this GPU has {where}", "use fp8 or awq")
    qformat = QFORMAT[weights_format]
    return Capability(supported=True, reason=f"{weights_format} engine built for {where}",
                      kernel=f"TensorRT engine ({'quantize.py --qformat ' + qformat})")


# Pre-quantized checkpoint formats the PyTorch flow loads, and the compute capability each needs.
_PYTORCH_CHECKPOINTS: dict[str, tuple[Cc, str, str]] = {
    "fp8": (ADA, "FP8 GEMMs need compute capability 8.9 (Ada, Hopper, Blackwell)",
            "FP8 checkpoint (per-tensor scales)"),
    "mxfp4": (HOPPER, "gpt-oss's MXFP4 MoE kernels run on Hopper and Blackwell (gpt-oss deployment guide)",
              "MXFP4 MoE weights"),
    "nvfp4": (BLACKWELL, "NVFP4 needs Blackwell's FP4 tensor cores", "ModelOpt NVFP4 checkpoint"),
}


def pytorch_weights_capability(cc: Cc, weights_format: str, checkpoint: CheckpointQuant | None) -> Capability:
    """The PyTorch flow's verdict: 16-bit checkpoints, or FP8/MXFP4/NVFP4 checkpoints as they are."""
    where = f"compute capability {cc[0]}.{cc[1]}"
    if weights_format in ("bf16", "fp16"):
        return Capability(supported=True, reason=f"{weights_format} checkpoint on {where}",
                          kernel="PyTorch flow (trtllm-serve --backend pytorch)")
    if checkpoint is None:
        return _no(f"{_V}'s PyTorch flow serves a pre-quantized checkpoint; deployc does not quantize a 16-bit "
                   f"checkpoint to {weights_format} at load time with it",
                   f"point model.id at a ModelOpt {weights_format} checkpoint (e.g. nvidia/<model>-FP8), "
                   + ENGINE_FLOW_HINT)
    entry = _PYTORCH_CHECKPOINTS.get(weights_format)
    if entry is None:
        return _no(f"{_V}'s PyTorch flow loads FP8, MXFP4 and NVFP4 checkpoints; {checkpoint.method} checkpoints "
                   "are not among them", "use a ModelOpt-quantized checkpoint, vllm or sglang")
    need, why, kernel = entry
    if weights_format == "fp8" and checkpoint.block_size:
        need, why, kernel = (HOPPER, "block-scaled FP8 (128×128, DeepSeek-V3/R1) runs on Hopper and Blackwell",
                             "block-scaled FP8 checkpoint")
    if cc < need:
        return _no(f"{why}; this GPU has {where}", "use a GPU of that generation, vllm or sglang")
    return Capability(supported=True, reason=f"{kernel} loaded as is on {where}",
                      kernel=f"PyTorch flow ({kernel})")


def deployment_flow(deployment: Deployment) -> Flow:
    """The flow the plan runs in, as the capability answers decided it (kept on each pool by the planner).

    The engine flow when any pool's precision needs it (one flow per deployment: every pool is then built).
    """
    flows = {pool.flow for pool in deployment.pools}
    if None in flows:
        raise ValueError("the plan carries no TensorRT-LLM flow for a pool (it was made without this backend's "
                         "capability answer)")
    return "engine" if "engine" in flows else "pytorch"


def capability(target: TargetFacts, weights_format: str, kv_cache_dtype: str) -> Capability:
    """NVIDIA Ampere or newer only, then the weight and KV verdicts of the configured flow."""
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
    ckpt = target.model.checkpoint_quant
    flow = parse_options(target.options).flow
    runs_in: Flow = "engine" if flow == "engine" else "pytorch"
    if flow == "engine":
        weights = weights_capability(pair, weights_format, ckpt is not None)
    else:
        weights = pytorch_weights_capability(pair, weights_format, ckpt)
        engine = weights_capability(pair, weights_format, ckpt is not None)
        # The engine flow is emitted for one node only, so a multi-node spec keeps to what the PyTorch flow loads.
        if not weights.supported and flow == "auto" and engine.supported and target.nodes == 1:
            weights = Capability(supported=True, reason=f"{engine.reason} (engine flow: the PyTorch flow loads only "
                                 "pre-quantized checkpoints)", kernel=engine.kernel)
            runs_in = "engine"
    if not weights.supported:
        return weights
    return Capability(supported=True, reason=f"{weights.reason}; {kv_cache_dtype} KV cache",
                      kernel=weights.kernel, flow=runs_in)
