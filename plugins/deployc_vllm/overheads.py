"""vLLM's own GPU memory beside weights and KV cache, per engine version.

How vLLM 0.33.0 sizes the KV cache (``vllm/v1/worker/gpu_worker.py``,
``Worker.determine_available_memory``; ``vllm/utils/mem_utils.py``, ``memory_profiling``):

    requested = total GPU memory × gpu_memory_utilization      (a fraction of TOTAL memory)
    KV cache  = requested − (weights + persistent growth during the profile run
                             + transient torch peak) − CUDA-graph estimate

The profile run (``GPUModelRunner.profile_run``) is one forward pass over
``max_num_batched_tokens`` tokens, then one sampler call on one row per request,
``min(max_num_seqs, max_num_batched_tokens)`` rows of ``vocab_size`` logits
(``_dummy_sampler_run``).  The two do not overlap, so the transient peak is the larger of
the two.  Since v0.21 (``VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS``, default ``1`` in
``vllm/envs.py``) the CUDA-graph memory is estimated by a dummy capture and subtracted
inside the budget; up to v0.20 graphs were captured after sizing the KV cache, outside it.
The memory snapshot is taken after NCCL and cuBLAS initialised, so their start-up buffers
must be free but are not counted; NCCL buffers connected lazily by the first collective
of the profile run are (the "non-torch" increase).
"""

from __future__ import annotations

import math
import re

from attrs import frozen

from deployc.contract import GIB, OverheadQuery, RuntimeOverheads
from deployc_vllm import ENGINE_VERSION

MIB = 1 << 20


@frozen(kw_only=True)
class MemoryProfile:
    """How one vLLM version budgets memory; every constant carries its source."""

    version: str
    sampler_bytes_per_logit: float
    sampler_source: str
    cuda_graph_in_budget: bool
    graph_source: str
    default_gpu_memory_utilization: float
    kv_block_size_tokens: int = 16


# The pinned version: the one the hook answers for.
PROFILE = MemoryProfile(
    version=ENGINE_VERSION,
    sampler_bytes_per_logit=14.0,
    sampler_source=(
        "vLLM 0.33.0 samples with FlashInfer's top-k/top-p kernel by default (VLLM_USE_FLASHINFER_SAMPLER defaults "
        "to 1 in vllm/envs.py; flashinfer_sampler_supported() in vllm/v1/sample/ops/topk_topp_sampler.py), which "
        "does not sort the vocabulary: about 14 B per logit (model-dtype logits, their FP32 copy, probabilities), "
        "calibrated on vLLM 0.10.1.1 Qwen2-7B TP1 (0.46 GiB for 256 × 152,064 logits) and vLLM 0.26 "
        "Qwen2.5-7B-AWQ (0.56 GiB)"),
    cuda_graph_in_budget=True,
    graph_source=(
        "vLLM 0.33.0 subtracts its CUDA-graph estimate from the gpu_memory_utilization budget "
        "(available_kv_cache_memory_bytes = requested_memory − non_kv_cache_memory − "
        "cudagraph_memory_estimate_applied, vllm/v1/worker/gpu_worker.py; VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS "
        "defaults to 1 since v0.21, vllm/envs.py). The estimate can exceed the real capture (vllm#45178, vllm#53013)"),
    default_gpu_memory_utilization=0.92,  # --gpu-memory-utilization default in the 0.33.0 flag manifest
)

# Older V1 versions, kept to check the formula's structure against their real start-up logs.
HISTORICAL_PROFILES: dict[str, MemoryProfile] = {
    "0.10": MemoryProfile(
        version="0.10", sampler_bytes_per_logit=14.0, sampler_source="FlashInfer sampler (as 0.33.0)",
        cuda_graph_in_budget=False, graph_source="graphs captured after the KV cache was sized (≤ v0.20)",
        default_gpu_memory_utilization=0.9),
    "0.11": MemoryProfile(
        version="0.11", sampler_bytes_per_logit=38.7,
        sampler_source=("PyTorch top-k/top-p (FlashInfer sampler opt-in): sorts the FP32 logits with int64 "
                        "indices; 38.7 B per logit fitted on the llm-d gpt-oss-20b and Qwen3-32B H100 logs"),
        cuda_graph_in_budget=False, graph_source="graphs captured after the KV cache was sized (≤ v0.20)",
        default_gpu_memory_utilization=0.9),
    "0.26": MemoryProfile(
        version="0.26", sampler_bytes_per_logit=14.0, sampler_source="as 0.33.0",
        cuda_graph_in_budget=True, graph_source="estimate in the budget (≥ v0.21)", default_gpu_memory_utilization=0.9),
}

def profile_for(version: str | None) -> MemoryProfile:
    """The memory profile of a vLLM version: the pinned one, or the historical profile nearest below it.

    Up to 0.20 CUDA graphs were captured after the KV cache was sized (outside the budget); 0.11-0.20
    sampled with PyTorch's sorting top-k/top-p (the 0.11 profile); 0.21 on count the graph estimate inside
    the budget (the 0.26 profile) until the pinned version.
    """
    match = re.match(r"v?(\d+)\.(\d+)", version or "")
    if match is None:
        return PROFILE
    minor = (int(match.group(1)), int(match.group(2)))
    if minor >= (0, 33):
        return PROFILE
    if minor >= (0, 21):
        return HISTORICAL_PROFILES["0.26"]
    return HISTORICAL_PROFILES["0.11" if minor >= (0, 11) else "0.10"]


BASE_NON_TORCH_BYTES = int(0.10 * GIB)
NON_TORCH_PER_TP_DOUBLING = int(0.30 * GIB)
NON_TORCH_PIPELINE_BYTES = int(0.10 * GIB)
GRAPH_BASE_BYTES = int(0.30 * GIB)
GRAPH_PER_LAYER_BYTES = 5 * MIB
GRAPH_PER_TP_DOUBLING = int(0.10 * GIB)
MOE_ROUTED_COPIES = 4  # fused-MoE buffers hold each token once per routed expert (top-k, assumed 4)


def sampler_peak_bytes(query: OverheadQuery, profile: MemoryProfile) -> int:
    """The dummy sampler call: one row of logits per request, ``min(max_num_seqs, budget)`` rows."""
    rows = min(query.max_num_seqs, query.max_num_batched_tokens)
    return int(rows * query.vocab_size * profile.sampler_bytes_per_logit)


def forward_peak_bytes(query: OverheadQuery) -> int:
    """The dummy forward pass over the token budget: the MLP intermediate dominates.

    Per token and layer: the fused gate/up output (2 × intermediate / TP), the activation
    output (intermediate / TP), and about four hidden-size vectors (residual, normed input,
    attention output, QKV), in the activation dtype.
    """
    intermediate = query.intermediate_size * (MOE_ROUTED_COPIES if query.is_moe else 1)
    per_token = (3 * intermediate / query.tp + 4 * query.hidden_size) * query.activation_dtype_bytes
    return int(query.max_num_batched_tokens * per_token)


def non_torch_bytes(tp: int, pp: int) -> int:
    """cuBLAS workspaces, plus NCCL channel buffers connected by the profile run's first collectives."""
    extra = NON_TORCH_PER_TP_DOUBLING * math.log2(tp) if tp > 1 else 0
    return int(BASE_NON_TORCH_BYTES + extra + (NON_TORCH_PIPELINE_BYTES if pp > 1 else 0))


def cuda_graph_bytes(query: OverheadQuery) -> int:
    """CUDA-graph memory: 0.4-0.65 GiB observed for 7-8B models at TP1/TP2, more with layers and TP."""
    if not query.cuda_graphs:
        return 0
    layers = math.ceil(query.num_layers / query.pp)
    return int(GRAPH_BASE_BYTES + GRAPH_PER_LAYER_BYTES * layers + GRAPH_PER_TP_DOUBLING * math.log2(query.tp))


def runtime_overheads(query: OverheadQuery, profile: MemoryProfile = PROFILE) -> RuntimeOverheads:
    """The overheads of one candidate layout, with the assumptions behind each number."""
    sampler = sampler_peak_bytes(query, profile)
    forward = forward_peak_bytes(query)
    rows = min(query.max_num_seqs, query.max_num_batched_tokens)
    graphs = cuda_graph_bytes(query)
    where = "inside" if profile.cuda_graph_in_budget else "outside"
    assumptions = (
        f"vLLM {profile.version} activation peak {max(sampler, forward) / GIB:.2f} GiB = the larger of the profile "
        f"run's forward pass over {query.max_num_batched_tokens:,} tokens ({forward / GIB:.2f} GiB) and its sampler "
        f"call on {rows:,} rows × {query.vocab_size:,} logits ({sampler / GIB:.2f} GiB; "
        f"{profile.sampler_bytes_per_logit:g} B per logit: {profile.sampler_source})",
        f"vLLM non-torch memory {non_torch_bytes(query.tp, query.pp) / GIB:.2f} GiB: 0.10 GiB, plus 0.30 GiB per "
        "doubling of TP for NCCL channel buffers (fitted to 0.21-0.54 GiB observed at TP2), plus 0.10 GiB with PP",
        (f"vLLM CUDA graphs {graphs / GIB:.2f} GiB, {where} gpu_memory_utilization: {profile.graph_source}"
         if graphs else "vLLM CUDA graphs off (--enforce-eager): no graph memory"),
        f"vLLM KV cache in blocks of {profile.kv_block_size_tokens} tokens (CacheConfig.DEFAULT_BLOCK_SIZE, "
        "vllm/config/cache.py)",
        "vLLM's start-up snapshot is taken after NCCL and cuBLAS initialised: their buffers and the CUDA context "
        "must fit in the memory gpu_memory_utilization leaves free",
    )
    return RuntimeOverheads(
        engine_version=profile.version,
        activation_peak_bytes=max(sampler, forward),
        cuda_graph_bytes=graphs,
        cuda_graph_in_budget=profile.cuda_graph_in_budget,
        non_torch_bytes=non_torch_bytes(query.tp, query.pp),
        memory_fraction_kind="total",
        default_memory_fraction=profile.default_gpu_memory_utilization,
        kv_block_size_tokens=profile.kv_block_size_tokens,
        assumptions=assumptions,
        memory_fraction_note=(
            f"vLLM {profile.version} requests fraction × total memory at start-up and refuses to start unless that "
            "much is free once its CUDA context, NCCL and cuBLAS buffers exist (request_memory, "
            "vllm/v1/worker/utils.py): memory other processes hold is not subtracted from the request, it must fit "
            "in the rest, so the plan lowers the fraction to leave room for it"),
    )
