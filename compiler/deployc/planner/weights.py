"""Weight bytes per GPU for a tensor/pipeline/expert-parallel layout (pure functions).

Rules, each returned as an assumption string: the vocabulary is padded to a multiple of 64 and
split across TP ranks (vLLM's VocabParallelEmbedding); tied embeddings count once; the embedding
lives on the first PP stage and the LM head with the final norm on the last, and the per-GPU
figure is the heaviest stage; PP splits layers by the backend's rule (``BackendInfo.pp_layer_split``);
norms and routers are replicated; attention Q/O and MLPs are split by TP, K/V keep at least one KV head per rank; MoE
experts are split whole across EP ranks, or each expert split by TP without EP; shared experts
are split by TP. Quantization applies to linear layers only, with its scales and zero points.
"""

from __future__ import annotations

import functools
import math
from collections import Counter

from attrs import frozen

from deployc.catalog.arch import ModelArch
from deployc.contract.backend import PpLayerSplit
from deployc.planner.formats import WeightFormat, format_for_checkpoint, linear_bytes

VOCAB_PADDING = 64  # vLLM vocab_parallel_embedding.py DEFAULT_VOCAB_PADDING_SIZE
PARTS = ("embedding", "lm_head", "attention", "mlp", "experts", "norms_and_router", "scales", "vision")


@frozen(kw_only=True)
class WeightsBreakdown:
    """Weight bytes on one GPU of the heaviest pipeline stage; the parts add up to ``total_bytes``."""

    total_bytes: int
    embedding_bytes: int
    lm_head_bytes: int
    attention_bytes: int
    mlp_bytes: int  # dense MLPs and shared experts
    moe_expert_bytes: int  # routed experts (with their biases)
    norms_and_router_bytes: int
    scales_bytes: int  # quantization scales and zero points of every quantized matrix
    vision_bytes: int = 0
    format_name: str
    stage: int  # index of the heaviest PP stage
    stage_layers: tuple[int, int]  # [start, end) layers of that stage
    assumptions: tuple[str, ...]


# The split rules in words, for assumptions and decisions.
SPLIT_WORDS: dict[PpLayerSplit, str] = {
    "extra_before_last": "the extra layers one each to the stages before the last, from the second-to-last back",
    "extra_first": "the extra layers one each to the first stages",
    "extra_last": "the extra layers one each to the last stages",
}


def split_words(num_layers: int, pp: int, rule: PpLayerSplit) -> str:
    """How ``num_layers`` are split over ``pp`` stages, in words (the rule only matters for an uneven split)."""
    each = f"{num_layers // pp} layers each"
    return f"{each}, an even split" if num_layers % pp == 0 else f"{each}, {SPLIT_WORDS[rule]}"


def pp_stage_layers(num_layers: int, pp: int, rule: PpLayerSplit = "extra_before_last") -> tuple[int, ...]:
    """Layers per pipeline stage by the engine's rule (:data:`~deployc.contract.backend.PpLayerSplit`).

    Every stage gets ``num_layers // pp``; the remainder goes one layer each to
    ``extra_before_last``: the stages before the last, starting from the second-to-last (vLLM 0.33.0
    ``vllm/distributed/utils.py`` ``get_pp_indices``: the last stage holds the LM head), so the first
    stage only gets one when the remainder is ``pp - 1``; ``extra_first``: the first stages
    (TensorRT-LLM 1.2 ``tensorrt_llm/mapping.py`` ``Mapping.pp_layers``, ``torch.tensor_split``);
    ``extra_last``: the last stages (SGLang 0.5.23 ``sglang/srt/distributed/utils.py`` ``get_pp_indices``),
    so the last stage holds one more layer beside the LM head.
    """
    if pp < 1 or num_layers < pp:
        raise ValueError(f"cannot split {num_layers} layers into {pp} pipeline stages")
    partitions = [num_layers // pp] * pp
    extra = num_layers % pp
    stages = {"extra_before_last": range(pp - 1 - extra, pp - 1), "extra_first": range(extra),
              "extra_last": range(pp - extra, pp)}[rule]
    for i in stages:
        partitions[i] += 1
    return tuple(partitions)


def padded_vocab_per_rank(vocab_size: int, tp: int) -> int:
    """Embedding (and LM head) rows per TP rank after vLLM pads the vocabulary to a multiple of 64."""
    padded = math.ceil(vocab_size / VOCAB_PADDING) * VOCAB_PADDING
    return math.ceil(padded / tp)


def _linear(acc: Counter[str], fmt: WeightFormat, part: str, group: str, *, out: int, inp: int,
            count: int = 1) -> None:
    weight, scales = linear_bytes(fmt, out, inp, quantized=group in fmt.quantizes)
    acc[part] += weight * count
    acc["scales"] += scales * count


def _gqa_attention(arch: ModelArch, fmt: WeightFormat, tp: int, acc: Counter[str]) -> None:
    d, hd, vec = arch.hidden_size, arch.head_dim, fmt.unquantized_bytes
    q_heads = math.ceil(arch.num_attention_heads / tp)
    kv_heads = max(1, math.ceil(arch.num_kv_heads / tp))  # replicated when tp > num_kv_heads
    _linear(acc, fmt, "attention", "attention", out=q_heads * hd, inp=d)
    _linear(acc, fmt, "attention", "attention", out=kv_heads * hd, inp=d, count=2)
    _linear(acc, fmt, "attention", "attention", out=d, inp=q_heads * hd)
    biases = (q_heads + 2 * kv_heads) * hd if arch.attention_bias else 0
    biases += d if arch.attention_out_bias else 0
    acc["attention"] += (biases + (q_heads if arch.attention_sinks else 0)) * vec
    acc["norms_and_router"] += (2 * hd if arch.qk_norm else 0) * vec


def _mla_attention(arch: ModelArch, fmt: WeightFormat, tp: int, acc: Counter[str]) -> None:
    d, vec = arch.hidden_size, fmt.unquantized_bytes
    heads = math.ceil(arch.num_attention_heads / tp)
    if arch.q_lora_rank:  # q_a_proj is replicated, q_b_proj column-parallel
        _linear(acc, fmt, "attention", "attention", out=arch.q_lora_rank, inp=d)
        _linear(acc, fmt, "attention", "attention", out=heads * arch.q_head_dim, inp=arch.q_lora_rank)
    else:
        _linear(acc, fmt, "attention", "attention", out=heads * arch.q_head_dim, inp=d)
    kv_a_out = arch.kv_lora_rank + arch.qk_rope_head_dim
    _linear(acc, fmt, "attention", "attention", out=kv_a_out, inp=d)  # replicated
    kv_b_out = heads * (arch.qk_nope_head_dim + arch.v_head_dim)
    _linear(acc, fmt, "attention", "attention", out=kv_b_out, inp=arch.kv_lora_rank)
    _linear(acc, fmt, "attention", "attention", out=d, inp=heads * arch.v_head_dim)
    if fmt.is_quantized and "attention" in fmt.quantizes:
        # absorbed MLA keeps W_UK/W_UV dequantized next to a quantized kv_b_proj (vLLM MLA
        # process_weights_after_loading: "we just store fp16/bf16 copies")
        acc["attention"] += kv_b_out * arch.kv_lora_rank * vec
    acc["norms_and_router"] += (arch.q_lora_rank + arch.kv_lora_rank) * vec


def _gated_mlp(acc: Counter[str], fmt: WeightFormat, part: str, group: str, *, d: int, inter: int,
               count: int = 1) -> None:
    _linear(acc, fmt, part, group, out=inter, inp=d, count=2 * count)  # gate and up, column-parallel
    _linear(acc, fmt, part, group, out=d, inp=inter, count=count)  # down, row-parallel


def _moe_block(arch: ModelArch, fmt: WeightFormat, tp: int, ep: int, acc: Counter[str]) -> None:
    d, vec = arch.hidden_size, fmt.unquantized_bytes
    if ep > 1:  # experts whole, split across EP ranks
        experts, inter = math.ceil(arch.num_experts / ep), arch.moe_intermediate_size
    else:
        experts, inter = arch.num_experts, math.ceil(arch.moe_intermediate_size / tp)
    pad = fmt.expert_intermediate_pad if "experts" in fmt.quantizes and fmt.is_quantized else 0
    inter = math.ceil(inter / pad) * pad if pad else inter
    _gated_mlp(acc, fmt, "experts", "experts", d=d, inter=inter, count=experts)
    if arch.expert_bias:
        acc["experts"] += experts * (2 * inter + d) * vec
    if arch.shared_expert_intermediate_size:
        shared = math.ceil(arch.shared_expert_intermediate_size / tp)
        _gated_mlp(acc, fmt, "mlp", "shared_experts", d=d, inter=shared)
    acc["norms_and_router"] += (d * arch.num_experts + (arch.num_experts if arch.router_bias else 0)) * vec


def _layer(arch: ModelArch, fmt: WeightFormat, tp: int, ep: int, mlp_kind: str) -> Counter[str]:
    acc: Counter[str] = Counter()
    (_mla_attention if arch.uses_mla else _gqa_attention)(arch, fmt, tp, acc)
    if mlp_kind == "moe":
        _moe_block(arch, fmt, tp, ep, acc)
    else:
        _gated_mlp(acc, fmt, "mlp", "mlp", d=arch.hidden_size, inter=math.ceil(arch.intermediate_size / tp))
    acc["norms_and_router"] += arch.norms_per_layer * arch.hidden_size * fmt.unquantized_bytes
    return acc


def _stage(arch: ModelArch, fmt: WeightFormat, *, tp: int, ep: int, layers: range, first: bool,
           last: bool) -> Counter[str]:
    per_kind = {kind: _layer(arch, fmt, tp, ep, kind) for kind in set(arch.mlp_kinds)}
    acc: Counter[str] = Counter()
    for i in layers:
        acc.update(per_kind[arch.mlp_kinds[i]])
    rows, d, vec = padded_vocab_per_rank(arch.vocab_size, tp), arch.hidden_size, fmt.unquantized_bytes
    if first:
        acc["embedding"] += rows * d * vec
        acc["vision"] += math.ceil(arch.vision_params / tp) * vec
    if last:
        acc["norms_and_router"] += d * vec
        if not (arch.tie_word_embeddings and first):  # a tied head on another stage keeps its own copy
            weight, scales = linear_bytes(fmt, rows, d, quantized=fmt.quantizes_lm_head)
            acc["lm_head"] += weight
            acc["scales"] += scales
    return acc


# A pure function of hashable inputs, asked for the same layouts again and again (every search of a plan, every
# what-if and sizing plan evaluates the same few): memoised.
@functools.lru_cache(maxsize=1024)
def weights_per_gpu(arch: ModelArch, fmt: WeightFormat, *, tp: int, pp: int, ep: int = 1,
                    split: PpLayerSplit = "extra_before_last") -> WeightsBreakdown:
    """Weight bytes on the busiest GPU of a ``tp × pp`` (× ``ep`` for experts) layout, stages split by ``split``.

    ``fmt`` is the format asked for; a checkpoint that is already quantized is served in its own
    format instead (said in the assumptions). See the module docstring for the placement rules.
    """
    if min(tp, pp, ep) < 1:
        raise ValueError(f"parallel sizes must be >= 1 (tp={tp}, pp={pp}, ep={ep})")
    notes: tuple[str, ...] = ()
    if arch.checkpoint_quant is not None:
        fmt, notes = format_for_checkpoint(arch.checkpoint_quant, unquantized_bytes=fmt.unquantized_bytes)
    splits = pp_stage_layers(arch.num_layers, pp, split)
    stages, start = [], 0
    for index, count in enumerate(splits):
        layers = range(start, start + count)
        acc = _stage(arch, fmt, tp=tp, ep=ep, layers=layers, first=index == 0, last=index == pp - 1)
        stages.append((acc, (start, start + count)))
        start += count
    best = max(range(pp), key=lambda i: (sum(stages[i][0].values()), -i))
    acc, bounds = stages[best]
    return WeightsBreakdown(
        total_bytes=sum(acc[p] for p in PARTS), embedding_bytes=acc["embedding"],
        lm_head_bytes=acc["lm_head"], attention_bytes=acc["attention"], mlp_bytes=acc["mlp"],
        moe_expert_bytes=acc["experts"], norms_and_router_bytes=acc["norms_and_router"],
        scales_bytes=acc["scales"], vision_bytes=acc["vision"], format_name=fmt.name, stage=best,
        stage_layers=bounds,
        assumptions=_assumptions(arch, fmt, tp=tp, pp=pp, ep=ep, splits=splits, best=best, notes=notes,
                                 rule=split),
    )


def _assumptions(arch: ModelArch, fmt: WeightFormat, *, tp: int, pp: int, ep: int, splits: tuple[int, ...],
                 best: int, notes: tuple[str, ...], rule: PpLayerSplit) -> tuple[str, ...]:
    dtype = "FP16" if fmt.name == "fp16" else "BF16/FP16"
    out = [f"weights in {fmt.name}: {fmt.description}" + (f" ({'; '.join(notes)})" if notes else "")]
    if arch.checkpoint_quant is not None:
        out.append(f"the checkpoint is already quantized ({arch.checkpoint_quant.method}); its format wins")
    rows = padded_vocab_per_rank(arch.vocab_size, tp)
    out.append(f"vocabulary {arch.vocab_size:,} padded to a multiple of {VOCAB_PADDING} and split over {tp} "
               f"TP rank(s): {rows:,} embedding rows per GPU")
    if arch.tie_word_embeddings:
        out.append("tied embeddings: the LM head shares the embedding matrix" if pp == 1 else
                   "tied embeddings: the last PP stage keeps its own copy of the embedding as LM head")
    if pp > 1:
        out.append(f"embedding on the first PP stage, LM head and final norm on the last; layers per stage "
                   f"{list(splits)} ({split_words(arch.num_layers, pp, rule)}); figure is the heaviest stage ({best})")
    out.append("norms and MoE routers replicated on every GPU, in the activation dtype" if arch.is_moe else
               "norms replicated on every GPU, in the activation dtype")
    replicated = tp > arch.num_kv_heads and not arch.uses_mla
    kv = "K/V heads replicated (one per rank)" if replicated else "K/V split"
    out.append(f"attention Q/O split by TP={tp}, {kv}; MLPs split by TP" if tp > 1 else
               "no tensor parallelism")
    if arch.uses_mla:
        out.append("MLA: q_a/kv_a projections replicated, q_b/kv_b/o split by TP")
    if arch.is_moe:
        out.append(f"MoE: {arch.num_experts} experts split whole over EP={ep} ranks" if ep > 1 else
                   f"MoE: every expert split by TP={tp} (no expert parallelism)")
        if arch.num_shared_experts:
            out.append("shared experts split by TP")
    if fmt.is_quantized:
        head = "and LM head " if fmt.quantizes_lm_head else ""
        out.append(f"quantization applies to linear layers {head}only ({', '.join(sorted(fmt.quantizes))}); "
                   f"embeddings, norms and routers stay {dtype}; scales and zero points counted")
        out.extend(f"{fmt.name}: {s}" for s in fmt.source)
    if arch.mtp_layers:
        out.append(f"the checkpoint's {arch.mtp_layers} multi-token-prediction layer(s) are not loaded")
    if arch.vision_params:
        out.append(f"vision tower ({arch.vision_params / 1e9:.2f}B params) on the first stage, split by TP")
    return tuple(out)
