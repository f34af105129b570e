"""SGLang's own GPU memory beside weights and KV cache, and its default ``--mem-fraction-static``.

How SGLang 0.5.23 budgets memory (``sglang/srt/arg_groups/memory_hook.py``,
``handle_gpu_memory_settings``): ``mem_fraction_static`` is (weights + KV pool) / total GPU
memory; activations, CUDA graphs and NCCL buffers must fit in the rest.  When the flag is not
given, SGLang picks it from a reserve, in MiB::

    reserved = 512 + 1.5 × max(chunked_prefill_size, 2048) + 1024 × tp × pp / 8
               + 2 × decode graph max batch + 8 × prefill graph buckets      (graphs on)
    reserved = max(reserved, 10240)                                          (GPU > 60 GiB)
    mem_fraction_static = round((gpu_mem − reserved) / gpu_mem, 3)

with the decode graph max batch from the GPU's memory class and TP (T4: 8; 20-35 GiB: 48, or 160
at TP ≥ 4; 35-60 GiB: 32 or 160; 60-160 GiB: 256 or 512; larger: 512), capped at
``--max-running-requests``, and prefill graph buckets (breakable prefill graphs are the CUDA
default, ``model_executor/cuda_graph_config.default_prefill_backend``) from
``cuda_graph_hook.generate_prefill_cuda_graph_batch_sizes`` up to the chunk size.
deployc passes its own chunk and graph sizes, so its cap is that rule applied to them (no
10 GiB floor, which stands for SGLang's larger defaults); the plan's fraction is the smaller of
the cap and what the memory plan leaves.
"""

from __future__ import annotations

import math

from deployc.contract import GIB, OverheadQuery, RuntimeOverheads
from deployc_sglang import ENGINE_VERSION
from deployc_sglang.rocm import AITER_SCALE, aiter_scales_fraction

MIB = 1 << 20
GRAPH_PER_LAYER_BYTES = 4 * MIB  # calibrated: 0.93 GiB of graphs observed, QwQ-32B TP4 on L4 (engine_memory_cases)
METADATA_BYTES = 512 * MIB  # the 512 MiB constant of SGLang's reserve (attention-backend metadata)
KV_PAGE_TOKENS = 1  # --page-size left unset: token-granular radix cache with the FlashInfer/Triton backends


def decode_graph_max_bs(gpu_memory_bytes: int, tp: int, max_running_requests: int) -> int:
    """SGLang 0.5.23's default decode CUDA-graph max batch for the GPU class, capped at the running limit."""
    mib = gpu_memory_bytes / MIB
    if mib < 20 * 1024:
        table = 8
    elif mib < 35 * 1024:
        table = 48 if tp < 4 else 160
    elif mib < 60 * 1024:
        table = 32 if tp < 4 else 160
    elif mib < 160 * 1024:
        table = 256 if tp < 4 else 512
    else:
        table = 512
    return max(1, min(table, max_running_requests))


def prefill_graph_buckets(chunk_tokens: int) -> tuple[int, ...]:
    """``generate_prefill_cuda_graph_batch_sizes(max_bs=chunk)`` of SGLang 0.5.23."""
    sizes = [*range(4, 33, 4), *range(48, 257, 16), *range(288, 513, 32), *range(576, 1025, 64),
             *range(1280, 4097, 256), *range(4608, chunk_tokens + 1, 512)]
    return tuple(s for s in sizes if s <= chunk_tokens)


def graph_reserve_mib(query: OverheadQuery) -> float:
    """SGLang's own CUDA-graph term of the reserve (``reserve_for_graph_mb``), 0 with graphs off."""
    if not query.cuda_graphs:
        return 0.0
    decode = decode_graph_max_bs(query.gpu_memory_bytes, query.tp, query.max_num_seqs)
    return 2.0 * decode + 8.0 * len(prefill_graph_buckets(query.max_num_batched_tokens))


def default_chunked_prefill_size(gpu_memory_bytes: int) -> int:
    """SGLang 0.5.23's ``--chunked-prefill-size`` when unset, by GPU memory class (memory_hook)."""
    mib = gpu_memory_bytes / MIB
    if mib < 20 * 1024:
        return 2048
    if mib < 60 * 1024:
        return 4096
    if mib < 160 * 1024:
        return 8192
    return 16384


def default_mem_fraction_static(query: OverheadQuery) -> float:
    """What SGLang 0.5.23 chooses for ``--mem-fraction-static`` when nothing else is set.

    SGLang's own rule, with SGLang's default chunk for the GPU class and its 10 GiB floor on GPUs
    above 60 GiB (both stand for the larger chunks and graph batches SGLang runs by default).
    """
    return _fraction_after_reserve(query, default_chunked_prefill_size(query.gpu_memory_bytes), floor=True)


def emitted_mem_fraction_cap(query: OverheadQuery) -> float:
    """SGLang's reserve rule applied to the chunk and CUDA-graph sizes deployc emits (the planner's cap).

    deployc passes ``--chunked-prefill-size`` and ``--cuda-graph-max-bs-decode`` itself, so the reserve
    follows those sizes, not SGLang's defaults for larger ones, and the 10 GiB floor that stands for
    those defaults does not apply: gpt-oss-120b on one H100 (chunk 2,048, decode graphs to batch 28)
    otherwise leaves about 11 GiB unused.  The planner keeps the smaller of this and what its own
    activation, graph and NCCL estimates leave.
    """
    return _fraction_after_reserve(query, query.max_num_batched_tokens, floor=False)


def _fraction_after_reserve(query: OverheadQuery, chunk: int, *, floor: bool) -> float:
    gpu_mib = query.gpu_memory_bytes / MIB
    reserved = 512 + 1.5 * max(chunk, 2048) + 1024 * query.tp * query.pp / 8
    reserved += graph_reserve_mib(query)
    if floor and gpu_mib > 60 * 1024:
        reserved = max(reserved, 10 * 1024)
    return round((gpu_mib - reserved) / gpu_mib, 3)


def cuda_graph_bytes(query: OverheadQuery) -> int:
    """Graph memory: SGLang's reserve for graphs plus a per-layer term (graphs hold every layer's buffers)."""
    if not query.cuda_graphs:
        return 0
    layers = math.ceil(query.num_layers / query.pp)
    return int(graph_reserve_mib(query) * MIB + GRAPH_PER_LAYER_BYTES * layers)


def activation_bytes(query: OverheadQuery) -> int:
    """One prefill chunk's forward pass (MLP intermediate dominates) plus the attention metadata constant.

    SGLang computes logits only for each request's last token, so the sampler term is one row per
    running request in FP32.
    """
    experts = 4 if query.is_moe else 1  # fused-MoE buffers hold each token once per routed expert (top-k ≈ 4)
    per_token = (3 * query.intermediate_size * experts / query.tp + 4 * query.hidden_size) \
        * query.activation_dtype_bytes
    logits = min(query.max_num_seqs, query.max_num_batched_tokens) * query.vocab_size * 4
    return int(query.max_num_batched_tokens * per_token + logits + METADATA_BYTES)


def non_torch_bytes(tp: int, pp: int) -> int:
    """NCCL and custom all-reduce buffers: SGLang's own ``1024 MiB × tp × pp / 8`` slack (0 for one GPU)."""
    if tp * pp == 1:
        return int(0.1 * GIB)
    return int(GIB * tp * pp / 8)


def runtime_overheads(query: OverheadQuery) -> RuntimeOverheads:
    """The overheads of one candidate layout, with the assumptions behind each number."""
    graphs = cuda_graph_bytes(query)
    default = default_mem_fraction_static(query)
    cap = emitted_mem_fraction_cap(query)
    scaled = aiter_scales_fraction(query.gpu_vendor.upper() == "AMD", query.max_model_len)
    # SGLang takes 0.85 of the fraction for AITER's attention workspace: plan within what it keeps of the cap
    planned = round(cap * AITER_SCALE, 3) if scaled else cap
    decode = decode_graph_max_bs(query.gpu_memory_bytes, query.tp, query.max_num_seqs)
    assumptions = (
        f"SGLang {ENGINE_VERSION} mem_fraction_static = (weights + KV pool) / total memory; deployc asks for at most "
        f"{cap:.3f}, SGLang's reserve rule (memory_hook.handle_gpu_memory_settings) applied to the emitted "
        f"{query.max_num_batched_tokens:,}-token chunk and decode graphs up to batch {decode} "
        f"(SGLang's own default, for its larger default sizes, would be {default:.3f})",
        f"SGLang activations {activation_bytes(query) / GIB:.2f} GiB: a {query.max_num_batched_tokens:,}-token "
        "prefill chunk, last-token logits per running request, 512 MiB attention metadata",
        (f"SGLang CUDA graphs {graphs / GIB:.2f} GiB outside mem_fraction_static: decode graphs up to batch {decode} "
         f"(2 MiB each) and {len(prefill_graph_buckets(query.max_num_batched_tokens))} breakable prefill buckets "
         "(8 MiB each), SGLang's reserve_for_graph_mb, plus 4 MiB per layer (calibrated on 0.93 GiB observed for "
         "QwQ-32B TP4 on L4); larger than vLLM's for the same model"
         if graphs else "SGLang CUDA graphs off: no graph memory"),
        f"SGLang NCCL/all-reduce slack {non_torch_bytes(query.tp, query.pp) / GIB:.2f} GiB (1 GiB × TP × PP / 8)",
        "SGLang KV pool is token-granular (page size 1, --page-size unset)",
    ) + ((f"SGLang on ROCm with AITER attention and a {query.max_model_len:,}-token context multiplies "
          f"mem_fraction_static by {AITER_SCALE} (attention_hook.py, room for AITER's workspace): the plan's fraction "
          f"stays within {planned:.3f} ({AITER_SCALE} × {cap:.3f}), and the emitted flag is divided by {AITER_SCALE} "
          "so the engine ends at the plan's",)
         if scaled else ())
    return RuntimeOverheads(
        engine_version=ENGINE_VERSION,
        activation_peak_bytes=activation_bytes(query),
        cuda_graph_bytes=graphs,
        cuda_graph_in_budget=False,
        non_torch_bytes=non_torch_bytes(query.tp, query.pp),
        memory_fraction_kind="weights_and_kv",
        default_memory_fraction=planned,
        kv_block_size_tokens=KV_PAGE_TOKENS,
        assumptions=assumptions,
        decode_graph_max_batch=decode if query.cuda_graphs else None,
    )
