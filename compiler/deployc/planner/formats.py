"""Numeric formats of weights and of the KV cache: bits per element and what their scales cost.

A :class:`WeightFormat` says how one linear layer's ``out × in`` matrix is stored: the bits of each
element, where scales sit (one per tensor, per output channel, per 128×128 block, or per group of
input elements), their size and any packed zero points. Only linear layers are quantized;
embeddings, norms and routers stay in the activation dtype (``unquantized_bytes``).
"""

from __future__ import annotations

import math
from typing import Literal

from attrs import evolve, frozen

from deployc.catalog.arch import CheckpointQuant
from deployc.contract.kinds import PlannedFormat

ScaleStrategy = Literal["none", "tensor", "channel", "block", "group"]
LINEAR_GROUPS = frozenset({"attention", "mlp", "shared_experts", "experts"})


@frozen(kw_only=True)
class WeightFormat:
    """How linear weights are stored; see :func:`linear_bytes` for the arithmetic."""

    name: PlannedFormat
    bits_per_weight: float
    scale_strategy: ScaleStrategy = "none"
    group_size: int = 0  # input elements per scale ("group")
    block_shape: tuple[int, int] | None = None  # (out, in) elements per scale ("block")
    scale_bytes: float = 0.0
    zero_point_bits: int = 0  # one packed zero per scale (AWQ, asymmetric GPTQ)
    tensor_scale_bytes: int = 0  # per-matrix scalars (FP8 weight scale, NVFP4 global + input scales)
    quantizes: frozenset[str] = LINEAR_GROUPS  # linear groups stored in this format
    quantizes_lm_head: bool = False
    resident_scale_copies: int = 1  # engines that keep the checkpoint's scales next to a re-laid-out copy
    expert_intermediate_pad: int = 0  # per-rank expert width rounded up to this multiple (0: none)
    unquantized_bytes: int = 2  # everything not quantized: BF16/FP16
    description: str = ""
    source: tuple[str, ...] = ()

    @property
    def is_quantized(self) -> bool:
        """True unless the weights are plain 16-bit."""
        return self.bits_per_weight < 16

    def bits_per_weight_with_scales(self, in_features: int = 4096, out_features: int = 4096) -> float:
        """Average stored bits per element of an ``out × in`` matrix, scales and zeros included."""
        weight, scales = linear_bytes(self, out_features, in_features)
        return 8 * (weight + scales) / (out_features * in_features)


def linear_bytes(fmt: WeightFormat, out_features: int, in_features: int, *,
                 quantized: bool = True) -> tuple[int, int]:
    """(weight bytes, scale and zero-point bytes) of one ``out × in`` linear matrix in ``fmt``.

    With ``quantized=False`` (a layer the format leaves alone) the matrix is in the activation dtype.
    """
    elements = out_features * in_features
    if not quantized or not fmt.is_quantized:
        return elements * fmt.unquantized_bytes, 0
    weight = math.ceil(elements * fmt.bits_per_weight / 8)
    if fmt.scale_strategy == "channel":
        scales = out_features * fmt.scale_bytes
    elif fmt.scale_strategy == "block" and fmt.block_shape:
        bo, bi = fmt.block_shape
        scales = math.ceil(out_features / bo) * math.ceil(in_features / bi) * fmt.scale_bytes
    elif fmt.scale_strategy == "group" and fmt.group_size:
        groups = out_features * math.ceil(in_features / fmt.group_size)
        scales = groups * (fmt.scale_bytes + fmt.zero_point_bits / 8)
    else:
        scales = 0.0
    total_scales = fmt.resident_scale_copies * scales + fmt.tensor_scale_bytes
    return weight, math.ceil(total_scales)


_AWQ_SRC = ("AutoAWQ GEMM layout: int32-packed 4-bit qweight, fp16 scales and 4-bit packed qzeros per group "
            "(vLLM awq.py / awq_marlin.py create_weights)",)
_GPTQ_SRC = ("GPTQ layout: int32-packed qweight, fp16 scales per group, packed qzeros (vLLM gptq.py)",)
_MXFP4_SRC = (
    "OCP MX: FP4 (E2M1) elements in blocks of 32 sharing one E8M0 scale = 4.25 bits; gpt-oss ships its MoE "
    "experts this way, attention and embeddings in BF16 (reference catalog.md, gpt-oss notes)",
    "vLLM mxfp4.py Mxfp4MoEMethod: create_weights rounds the per-rank expert width up to a multiple of "
    "64 (Triton path; 256 with FlashInfer, 128 on ROCm); process_weights_after_loading swizzles weights and "
    "scales for the Triton kernel and deletes the original weights but keeps the original scales, so scales "
    "are resident twice",
)
_NVFP4_SRC = ("NVFP4: FP4 (E2M1) elements in blocks of 16 with one FP8 (E4M3) scale = 4.5 bits, plus an FP32 "
              "per-tensor global scale and input scale (NVIDIA ModelOpt / vLLM modelopt.py)",)
_FP8_SRC = ("vLLM fp8.py: FP8 E4M3 weights; per-tensor FP32 weight scale for --quantization fp8 (dynamic), "
            "FP32 scales per 128×128 block for block-quantized checkpoints (DeepSeek-V3 weight_block_size)",)

WEIGHT_FORMATS: tuple[WeightFormat, ...] = (
    WeightFormat(name="bf16", bits_per_weight=16, description="BF16, unquantized"),
    WeightFormat(name="fp16", bits_per_weight=16, description="FP16, unquantized"),
    WeightFormat(name="fp8", bits_per_weight=8, scale_strategy="tensor", tensor_scale_bytes=4,
                 description="FP8 E4M3 linear weights, one FP32 scale per tensor", source=_FP8_SRC),
    WeightFormat(name="int8", bits_per_weight=8, scale_strategy="channel", scale_bytes=4,
                 description="INT8 linear weights (W8A8), one FP32 scale per output channel",
                 source=("compressed-tensors W8A8 INT8, channel strategy",)),
    WeightFormat(name="awq", bits_per_weight=4, scale_strategy="group", group_size=128, scale_bytes=2,
                 zero_point_bits=4,
                 description="AWQ 4-bit, group 128: one FP16 scale and one 4-bit zero per group",
                 source=_AWQ_SRC),
    WeightFormat(name="gptq", bits_per_weight=4, scale_strategy="group", group_size=128, scale_bytes=2,
                 description="GPTQ 4-bit symmetric, group 128: one FP16 scale per group", source=_GPTQ_SRC),
    WeightFormat(name="mxfp4", bits_per_weight=4, scale_strategy="group", group_size=32, scale_bytes=1,
                 resident_scale_copies=2, expert_intermediate_pad=64,
                 description="MXFP4: 4-bit elements, one E8M0 scale per 32 (4.25 bits)", source=_MXFP4_SRC),
    WeightFormat(name="nvfp4", bits_per_weight=4, scale_strategy="group", group_size=16, scale_bytes=1,
                 tensor_scale_bytes=8, description="NVFP4: 4-bit elements, one FP8 scale per 16 (4.5 bits) "
                 "plus FP32 per-tensor scales", source=_NVFP4_SRC),
    WeightFormat(name="bitsandbytes", bits_per_weight=4, scale_strategy="group", group_size=64, scale_bytes=4,
                 description="bitsandbytes 4-bit (NF4/FP4): one FP32 absmax per 64 elements",
                 source=("bitsandbytes Params4bit: blocksize 64, FP32 absmax per block",)),
)
KV_DTYPE_BYTES: tuple[tuple[str, float], ...] = (
    ("bfloat16", 2.0), ("bf16", 2.0), ("float16", 2.0), ("fp16", 2.0), ("half", 2.0), ("float32", 4.0),
    ("fp8", 1.0), ("fp8_e4m3", 1.0), ("fp8_e5m2", 1.0), ("fp8_e4m3fn", 1.0),
)


def weight_format(name: str) -> WeightFormat:
    """The named weight format: bf16, fp16, fp8, int8, awq, gptq, mxfp4, nvfp4 or bitsandbytes."""
    for fmt in WEIGHT_FORMATS:
        if fmt.name == name.lower():
            return fmt
    raise ValueError(f"unknown weight format {name!r} (known: {', '.join(f.name for f in WEIGHT_FORMATS)})")


def kv_dtype_bytes(name: str) -> float:
    """Bytes per KV-cache element: 2 for bfloat16/float16, 1 for fp8 (e4m3 or e5m2)."""
    for key, size in KV_DTYPE_BYTES:
        if key == name.lower():
            return size
    raise ValueError(f"unknown KV-cache dtype {name!r}; resolve 'auto' to the activation dtype first")


def _unconverted_groups(patterns: tuple[str, ...]) -> tuple[frozenset[str], bool, tuple[str, ...]]:
    """Linear groups a checkpoint leaves unquantized, whether lm_head is among them, unrecognised patterns.

    Patterns are matched by module kind, not by layer: one naming a single layer's MLP leaves every
    MLP unquantized, which overestimates bytes rather than underestimating them.
    """
    groups: set[str] = set()
    lm_head = False
    unknown: list[str] = []
    for raw in patterns:
        p = raw.removeprefix("re:").lower()
        if "lm_head" in p:
            lm_head = True
        elif "router" in p or p.rstrip("$").endswith("gate") or "embed" in p or "norm" in p:
            continue  # never quantized anyway
        elif "attn" in p or "attention" in p:
            groups.add("attention")
        elif "shared_expert" in p:
            groups.add("shared_experts")
        elif "experts" in p:
            groups.add("experts")
        elif "mlp" in p:
            groups.add("mlp")
        else:
            unknown.append(raw)
    return frozenset(groups), lm_head, tuple(unknown)


def _fp8_for_checkpoint(q: CheckpointQuant) -> WeightFormat:
    base = weight_format("fp8")
    if q.block_size:
        block = (q.block_size[0], q.block_size[-1])
        return evolve(base, scale_strategy="block", block_shape=block, scale_bytes=4, tensor_scale_bytes=0,
                      description=f"FP8 E4M3, one FP32 scale per {q.block_size[0]}×{q.block_size[-1]} block")
    if q.strategy == "channel":
        return evolve(base, scale_strategy="channel", scale_bytes=4, tensor_scale_bytes=0,
                      description="FP8 E4M3, one FP32 scale per output channel")
    return base


def _int_for_checkpoint(q: CheckpointQuant, bits: int) -> WeightFormat:
    name = "awq" if q.method == "awq" else "gptq"
    zeros = bits if q.zero_point else 0
    if not q.group_size:  # per-channel integer weights
        return evolve(weight_format(name), bits_per_weight=bits, scale_strategy="channel", group_size=0,
                      zero_point_bits=zeros, description=f"{bits}-bit integers, per-channel scales")
    with_zeros = ", with zero points" if q.zero_point else ""
    return evolve(weight_format(name), bits_per_weight=bits, group_size=q.group_size, zero_point_bits=zeros,
                  description=f"{name.upper()} {bits}-bit, group {q.group_size}{with_zeros}")


def _base_for_checkpoint(q: CheckpointQuant) -> WeightFormat:
    bits = q.bits or 8
    if q.method in ("mxfp4", "nvfp4"):
        fmt = weight_format(q.method)
    elif q.method == "bitsandbytes":
        fmt = _bitsandbytes(q)
    elif q.weight_type == "float":
        fmt = _fp8_for_checkpoint(q) if bits == 8 else weight_format("nvfp4")
    elif bits == 8 and not q.group_size:
        fmt = weight_format("int8")
    else:
        fmt = _int_for_checkpoint(q, bits)
    return fmt


def _bitsandbytes(q: CheckpointQuant) -> WeightFormat:
    if q.bits == 4:
        double = "double_quant=True" in q.scheme
        # 64-element blocks with an FP32 absmax; double quantization stores it in 8 bits (+FP32 / 256 blocks)
        return evolve(weight_format("bitsandbytes"), scale_bytes=1 + 4 / 256 if double else 4.0,
                      description=f"bitsandbytes 4-bit ({q.scheme})")
    return WeightFormat(name="bitsandbytes", bits_per_weight=8, scale_strategy="channel", scale_bytes=4,
                        description="bitsandbytes LLM.int8: INT8 rows with one FP32 scale each",
                        source=("bitsandbytes Int8Params: row-wise absmax",))


def format_for_checkpoint(quant: CheckpointQuant, *,
                          unquantized_bytes: int = 2) -> tuple[WeightFormat, tuple[str, ...]]:
    """The weight format a pre-quantized checkpoint is served in, and notes on what it leaves unquantized."""
    base = _base_for_checkpoint(quant)
    groups, lm_head_skipped, unknown = _unconverted_groups(quant.not_converted)
    fmt = evolve(base, quantizes=LINEAR_GROUPS - groups, unquantized_bytes=unquantized_bytes,
                 quantizes_lm_head=quant.lm_head_quantized and not lm_head_skipped)
    notes = []
    if groups:
        notes.append(f"the checkpoint leaves {', '.join(sorted(groups))} unquantized")
    if unknown:
        notes.append(f"unrecognised modules_to_not_convert patterns {list(unknown)}: treated as quantized")
    return fmt, tuple(notes)
