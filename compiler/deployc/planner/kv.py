"""KV-cache bytes: per token, per sequence, and the tokens a memory budget holds (pure functions).

Per layer and token a GQA/MHA layer stores K and V: ``2 × kv_heads × head_dim × bytes``
(Llama-3-70B in BF16: 2 × 80 layers × 8 × 128 × 2 = 327,680 B/token, not the "2 × 8192 × 2 =
32 KB" of blog shortcuts). An MLA layer (DeepSeek-V2/V3) stores one latent shared by all heads:
``(kv_lora_rank + qk_rope_head_dim) × bytes``. Under tensor parallelism each rank holds
``max(1, kv_heads / tp)`` heads (heads are replicated when tp > kv_heads) and, as vLLM does, the
whole MLA latent. Sliding-window layers stop growing at the window.
"""

from __future__ import annotations

import functools
import math

from attrs import frozen

from deployc.catalog.arch import ModelArch
from deployc.contract.backend import PpLayerSplit
from deployc.planner.weights import pp_stage_layers


@frozen(kw_only=True)
class SequenceKV:
    """Per-token KV bytes of one GPU's layers, split by how they grow with the sequence."""

    full_layers_bytes_per_token: int  # layers that keep every token
    sliding_layers_bytes_per_token: int  # layers that keep at most the window
    sliding_window_tokens: int | None


def kv_heads_per_rank(arch: ModelArch, tp: int) -> int:
    """KV heads each TP rank stores: ``num_kv_heads / tp``, at least one (replicated when tp > kv heads).

    Rounded up, which equals ``num_kv_heads // tp`` for every layout an engine accepts (divisible).
    """
    return max(1, math.ceil(arch.num_kv_heads / tp))


def kv_bytes_per_token_layer(arch: ModelArch, kv_dtype_bytes: float, *, tp: int = 1) -> int:
    """KV bytes one layer stores per token on one TP rank."""
    if arch.uses_mla:  # the latent is not split by TP: every rank holds it
        return round((arch.kv_lora_rank + arch.qk_rope_head_dim) * kv_dtype_bytes)
    return round(2 * kv_heads_per_rank(arch, tp) * arch.head_dim * kv_dtype_bytes)


def kv_bytes_per_token_model(arch: ModelArch, kv_dtype_bytes: float) -> int:
    """KV bytes per token for the whole model, every layer, unsharded.

    Sliding-window layers are counted too: this is the short-context figure (for long sequences
    only the full-attention layers keep growing; see :func:`sequence_kv`).
    """
    return arch.num_layers * kv_bytes_per_token_layer(arch, kv_dtype_bytes, tp=1)


def _stages(arch: ModelArch, pp: int, split: PpLayerSplit) -> list[range]:
    stages, start = [], 0
    for count in pp_stage_layers(arch.num_layers, pp, split):
        stages.append(range(start, start + count))
        start += count
    return stages


def kv_bytes_per_token_per_gpu(arch: ModelArch, kv_dtype_bytes: float, *, tp: int, pp: int,
                               split: PpLayerSplit = "extra_before_last") -> int:
    """KV bytes per token on one GPU of the pipeline stage with the most layers, every layer counted."""
    layers = max(pp_stage_layers(arch.num_layers, pp, split))
    return layers * kv_bytes_per_token_layer(arch, kv_dtype_bytes, tp=tp)


def sequence_kv(arch: ModelArch, kv_dtype_bytes: float, *, tp: int, pp: int,
                split: PpLayerSplit = "extra_before_last") -> SequenceKV:
    """The heaviest stage's per-token bytes, split into full-attention and sliding-window layers."""
    per_layer = kv_bytes_per_token_layer(arch, kv_dtype_bytes, tp=tp)
    stage = max(_stages(arch, pp, split), key=lambda r: (sum(arch.layer_kinds[i] == "full" for i in r), len(r)))
    full = sum(1 for i in stage if arch.layer_kinds[i] == "full")
    return SequenceKV(full_layers_bytes_per_token=full * per_layer,
                      sliding_layers_bytes_per_token=(len(stage) - full) * per_layer,
                      sliding_window_tokens=arch.sliding_window if arch.has_sliding_window else None)


def _tokens_held(tokens: int, window: int | None, block: int) -> tuple[int, int]:
    """Tokens of KV a full layer and a sliding layer hold for a sequence, whole blocks."""
    full_blocks = math.ceil(tokens / block)
    if window is None:
        return full_blocks * block, full_blocks * block
    # the last window-1 tokens plus the current one, straddling block boundaries: vLLM's
    # SlidingWindowSpec.max_memory_usage_bytes counts cdiv(window - 1, block) + 1 blocks
    sliding_blocks = min(full_blocks, math.ceil((window - 1) / block) + 1)
    return full_blocks * block, sliding_blocks * block


@functools.lru_cache(maxsize=1024)  # pure, and asked for the same layouts again and again
def kv_bytes_for_sequence(arch: ModelArch, tokens: int, kv_dtype_bytes: float, *, tp: int, pp: int,
                          block_size_tokens: int = 16, split: PpLayerSplit = "extra_before_last") -> int:
    """KV bytes one sequence of ``tokens`` needs on the busiest GPU, in whole blocks.

    Full-attention layers hold every token; sliding-window layers at most the window plus the
    block it straddles (exactly the window with ``block_size_tokens=1``).
    """
    per_layer = kv_bytes_per_token_layer(arch, kv_dtype_bytes, tp=tp)
    full_tokens, sliding_tokens = _tokens_held(tokens, arch.sliding_window, block_size_tokens)
    best = 0
    for stage in _stages(arch, pp, split):
        full = sum(1 for i in stage if arch.layer_kinds[i] == "full")
        best = max(best, per_layer * (full * full_tokens + (len(stage) - full) * sliding_tokens))
    return best


def _kv_groups(kinds: list[str]) -> tuple[int, int]:
    """(layers per group, number of groups) as vLLM's hybrid KV-cache manager groups layers.

    ``_get_kv_cache_groups_uniform_page_size``: group size = the smallest per-type layer count
    (or the largest when it is < 1.5 × the smallest); each type is cut into groups of that size,
    the last one padded.
    """
    counts = [kinds.count(k) for k in ("full", "sliding") if k in kinds]
    size = min(counts)
    if max(counts) < size * 1.5:
        size = max(counts)
    return size, sum(math.ceil(c / size) for c in counts)


def kv_capacity_tokens(arch: ModelArch, kv_budget_bytes: int, kv_dtype_bytes: float, *, tp: int, pp: int,
                       block_size_tokens: int = 16, split: PpLayerSplit = "extra_before_last") -> int:
    """Tokens a per-GPU KV budget holds, as vLLM reports "GPU KV cache size: N tokens".

    vLLM cuts the budget into blocks of ``block_size_tokens`` tokens for every layer:
    ``blocks = budget // (block page × layers)`` and reports ``blocks × block_size``. For hybrid
    models (sliding + full layers) it follows vLLM's hybrid KV-cache manager: layers are grouped
    (:func:`_kv_groups`), a block spans one layer of each group, and the count reported is
    ``blocks // groups × block_size``: the tokens that fit if every layer kept every token. That
    is the convention used here. Real hybrid capacity for long sequences is larger, because
    sliding layers free blocks beyond the window; use :func:`kv_bytes_for_sequence` for
    concurrency. With PP the engine takes the smallest stage capacity.
    """
    page = block_size_tokens * kv_bytes_per_token_layer(arch, kv_dtype_bytes, tp=tp)
    if kv_budget_bytes <= 0 or page <= 0:
        return 0
    capacity = None
    for stage in _stages(arch, pp, split):
        size, groups = _kv_groups([arch.layer_kinds[i] for i in stage])
        blocks = kv_budget_bytes // (page * size)
        tokens = blocks // groups * block_size_tokens
        capacity = tokens if capacity is None else min(capacity, tokens)
    return capacity or 0
