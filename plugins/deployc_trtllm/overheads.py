"""TensorRT-LLM's memory beside weights and KV cache: runtime buffers sized by the configured limits.

Engine flow: the engine allocates its activation and I/O buffers for the limits it was built with
(``trtllm-build --max_batch_size/--max_num_tokens``), not for the traffic it sees (USER-PAINS #17,
TRT-LLM#247, TRT-LLM#1400).  PyTorch flow: the warm-up runs a forward pass of ``max_num_tokens``
before the KV cache is sized, so the same limits set the activation peak.  Either way the KV cache
then takes ``kv_cache_config.free_gpu_memory_fraction`` (default 0.9, ``data/trtllm-llm-api.json``)
of the memory FREE after the model and those buffers were loaded, and CUDA graphs are captured
from what is left.  deployc sets ``max_num_tokens`` = the plan's token budget and
``max_batch_size`` = its running-request limit, so the query's values are those limits.
"""

from __future__ import annotations

import math

from deployc.contract import GIB, OverheadQuery, RuntimeOverheads
from deployc_trtllm import ENGINE_VERSION
from deployc_trtllm.pytorch import graph_batch_sizes

MIB = 1 << 20
DEFAULT_FREE_FRACTION = 0.9  # KvCacheConfig.free_gpu_memory_fraction default
TOKENS_PER_BLOCK = 32  # trtllm-build --tokens_per_block default (data/trtllm-build.json)
GRAPH_PER_LAYER_BYTES = 4 * MIB  # assumed, per layer and per captured batch size
# One graph per size in cuda_graph_config.batch_sizes (deployc_trtllm.pytorch.graph_batch_sizes); TorchLlmArgs'
# own description: "each CUDA graph can use up to 200 MB of extra memory" (llm_args.py, cuda_graph_config).


def runtime_buffer_bytes(query: OverheadQuery) -> int:
    """Activation buffers for ``max_num_tokens`` tokens, plus last-token logits for ``max_batch_size`` rows."""
    experts = 4 if query.is_moe else 1
    per_token = (3 * query.intermediate_size * experts / query.tp + 6 * query.hidden_size) \
        * query.activation_dtype_bytes
    logits = query.max_num_seqs * query.vocab_size * 4
    return int(query.max_num_batched_tokens * per_token + logits)


def runtime_overheads(query: OverheadQuery) -> RuntimeOverheads:
    """The overheads of one candidate layout, with the assumptions behind each number."""
    buffers = runtime_buffer_bytes(query)
    sizes = len(graph_batch_sizes(query.max_num_seqs))
    graphs = int(GRAPH_PER_LAYER_BYTES * math.ceil(query.num_layers / query.pp) * sizes) if query.cuda_graphs else 0
    nccl = int(0.1 * GIB + (0.25 * GIB * math.log2(query.tp) if query.tp > 1 else 0))
    return RuntimeOverheads(
        engine_version=ENGINE_VERSION,
        activation_peak_bytes=buffers,
        cuda_graph_bytes=graphs,
        cuda_graph_in_budget=False,
        non_torch_bytes=nccl,
        memory_fraction_kind="free_after_load",
        default_memory_fraction=DEFAULT_FREE_FRACTION,
        kv_block_size_tokens=TOKENS_PER_BLOCK,
        assumptions=(
            f"TensorRT-LLM {ENGINE_VERSION} runtime buffers {buffers / GIB:.2f} GiB, sized by the limits "
            f"max_num_tokens {query.max_num_batched_tokens:,} and max_batch_size {query.max_num_seqs:,} "
            "(allocated whatever the traffic; TRT-LLM#247, TRT-LLM#1400)",
            "TensorRT-LLM KV cache = free_gpu_memory_fraction × memory free after the engine and buffers loaded "
            f"(default {DEFAULT_FREE_FRACTION})",
            f"TensorRT-LLM CUDA graphs {graphs / GIB:.2f} GiB ({sizes} batch sizes captured; assumed 4 MiB per "
            "layer per graph, within the 200 MB per graph TorchLlmArgs states)",
            f"NCCL buffers {nccl / GIB:.2f} GiB (assumed: 0.1 GiB + 0.25 GiB per doubling of TP)",
            f"KV cache in blocks of {TOKENS_PER_BLOCK} tokens (--tokens_per_block default)",
        ),
    )
