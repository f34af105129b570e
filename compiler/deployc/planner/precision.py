"""Precision choices: activation dtype, weight format candidates, KV-cache dtype.

The capability matrix itself (which engine runs which format on which GPU, with which
kernel) belongs to the backends (hook ``deployc_capability``); this module decides what
to ask for, in what order, and explains it.
"""

from __future__ import annotations

from attrs import frozen

from deployc.catalog import GPU, ModelArch
from deployc.contract.kinds import ActivationDtype, KvCacheDtype, PlannedFormat, planned_format
from deployc.planner.decisions import Alternative, Decision, Quantity
from deployc.spec.model import Spec

# Formats vLLM, SGLang and TensorRT-LLM can produce from an unquantized checkpoint at load or
# build time. AWQ/GPTQ/NVFP4/MXFP4 need a checkpoint quantized offline (calibration data).
ON_THE_FLY_FORMATS = frozenset({"fp8"})
# [plan].quantization values that mean "unquantized", and the activation dtype each implies.
DENSE_DTYPES = {"bf16": "bfloat16", "fp16": "float16"}
QUALITY_CAVEAT = ("FP8 and 4-bit weights can hurt code generation and math reasoning more than chat; "
                  "evaluate the quantized model on your own tasks before serving it")


@frozen(kw_only=True)
class WeightChoice:
    """The weights format to plan with, what the engine is told, and whether it was forced."""

    weights_format: PlannedFormat
    quantization_flag: PlannedFormat | None  # the engine's --quantization (None: dense, or read from the checkpoint)
    from_checkpoint: bool


def activation_dtype(spec: Spec, model: ModelArch, gpu: GPU) -> Decision:
    """BF16 where the GPU has it and the checkpoint uses it; FP16 on Turing/Volta (overflow risk noted)."""
    wanted = spec.model.dtype
    if wanted != "auto":
        return Decision(id="dtype", value=wanted, rule="DPD101", reason=f"set in the spec (model.dtype = {wanted})")
    pinned = DENSE_DTYPES.get(spec.plan.quantization or "")
    if pinned is not None:  # unquantized weights are served in the activation dtype
        return Decision(id="dtype", value=pinned, rule="DPD101",
                        reason=f'the pinned weights format ([plan].quantization = "{spec.plan.quantization}")')
    if not gpu.supports_bf16:
        return Decision(
            id="dtype", value="float16", rule="DPD101",
            reason=f"{gpu.name} ({gpu.arch}) has no BF16 tensor cores; FP16 keeps the speed but has a smaller "
                   "range than BF16, so a model trained in BF16 can overflow: watch for NaN outputs",
            rejected=(Alternative("bfloat16", f"not supported on compute capability {_cc(gpu)}"),),
        )
    dtype = "float16" if model.checkpoint_dtype == "float16" else "bfloat16"
    return Decision(id="dtype", value=dtype, rule="DPD101",
                    reason=f"the checkpoint's dtype ({model.checkpoint_dtype}) and {gpu.name} supports it")


def chosen_dtype(decision: Decision) -> ActivationDtype:
    """The activation dtype an :func:`activation_dtype` decision chose."""
    return "float16" if decision.value == "float16" else "bfloat16"


def weight_candidates(spec: Spec, model: ModelArch, gpu: GPU, dtype: ActivationDtype) -> list[WeightChoice]:
    """Weight formats to try, best first (the planner keeps the first one that fits and the engine runs)."""
    dense: PlannedFormat = "bf16" if dtype == "bfloat16" else "fp16"
    ckpt = model.checkpoint_quant
    if ckpt is not None:
        return [WeightChoice(weights_format=_format_of_checkpoint(ckpt.method, ckpt.bits),
                             quantization_flag=None, from_checkpoint=True)]
    pin = spec.plan.quantization
    wanted = "none" if pin in DENSE_DTYPES else pin or spec.model.quantization
    if wanted == "none":
        return [WeightChoice(weights_format=dense, quantization_flag=None, from_checkpoint=False)]
    if wanted != "auto":
        return [WeightChoice(weights_format=wanted, quantization_flag=wanted, from_checkpoint=False)]
    fp8 = WeightChoice(weights_format="fp8", quantization_flag="fp8", from_checkpoint=False)
    plain = WeightChoice(weights_format=dense, quantization_flag=None, from_checkpoint=False)
    if gpu.fp8_native and spec.slo.goal in ("throughput", "cost"):
        return [fp8, plain]
    return [plain, fp8]


def checkpoint_format(model: ModelArch) -> str | None:
    """The weights format a pre-quantized checkpoint is served in (None for an unquantized one)."""
    ckpt = model.checkpoint_quant
    return None if ckpt is None else _format_of_checkpoint(ckpt.method, ckpt.bits)


def _format_of_checkpoint(method: str, bits: int | None) -> PlannedFormat:
    if method == "compressed-tensors":
        return "fp8" if bits == 8 else "gptq"
    return planned_format(method)


def explain_weights(choice: WeightChoice, spec: Spec, gpu: GPU, weights_bytes: int, dense_bytes: int,
                    rejected: list[Alternative], kernel: str | None) -> Decision:
    """The quantization decision with the memory it saves and the quality caveat."""
    numbers = (Quantity("weights per GPU", weights_bytes / (1 << 30), "GiB"),
               Quantity("unquantized weights per GPU", dense_bytes / (1 << 30), "GiB"))
    fmt = choice.weights_format
    if choice.from_checkpoint:
        reason = f"the checkpoint is already quantized as {fmt}; the engine reads it from the config"
    elif spec.model.quantization not in ("auto",):
        reason = f"set in the spec (model.quantization = {spec.model.quantization})"
    elif fmt == "fp8" and gpu.fp8_native and spec.slo.goal in ("throughput", "cost"):
        reason = (f"{gpu.name} has native FP8 tensor cores: FP8 halves the bytes each decode step reads and "
                  f"doubles peak compute, for the {spec.slo.goal} goal")
    elif fmt == "fp8":
        reason = "the model does not fit unquantized; FP8 weights halve weight memory"
    else:
        reason = "unquantized weights fit and keep full quality"
    if kernel:
        reason += f" (kernel: {kernel})"
    if fmt not in ("bf16", "fp16"):
        reason += f". {QUALITY_CAVEAT}"
    return Decision(id="quantization", value=fmt, rule="DPD201", reason=reason, numbers=numbers,
                    rejected=tuple(rejected))


def kv_dtype_candidates(spec: Spec, dtype: ActivationDtype, gpu: GPU) -> list[KvCacheDtype]:
    """KV-cache dtypes to try: the spec's, else the activation dtype then FP8 (when capacity is short)."""
    wanted = spec.plan.kv_cache_dtype or spec.model.kv_cache_dtype
    if wanted != "auto":
        return [wanted]
    return [dtype, "fp8"] if gpu.fp8_native else [dtype]


def _cc(gpu: GPU) -> str:
    return f"{gpu.compute_capability[0]}.{gpu.compute_capability[1]}" if gpu.compute_capability else "n/a"
