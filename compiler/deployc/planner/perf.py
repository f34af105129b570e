"""Performance model: prefill and decode step times from a roofline plus measured collectives.

Pure functions of plain numbers (bytes, FLOP, bytes/s, seconds). One engine step on one
pipeline stage costs ``max(bytes read / (HBM bandwidth × efficiency), FLOP / (peak × efficiency))``
plus its TP all-reduces, EP all-to-alls and a fixed launch overhead; a token crosses every
stage. The efficiencies are fitted on public measurements (``planner/data/calibration.json``,
read once); every formula and assumption is in ``docs/performance-model.md``.
"""

from __future__ import annotations

import math

from attrs import evolve, frozen

from deployc.catalog import GPU, Link, ModelArch, param_counts
from deployc.contract.backend import PpLayerSplit
from deployc.planner import calibration as _cal
from deployc.planner import collectives
from deployc.planner.calibration import Calibration, Efficiency, efficiency, fitted_for, gpu_family
from deployc.planner.collectives import CollectiveModel
from deployc.planner.decisions import Quantity
from deployc.planner.formats import WEIGHT_FORMATS, linear_bytes
from deployc.planner.parallel import pp_layer_split
from deployc.planner.types import Bound, Layout, Performance

__all__ = ["Calibration", "Efficiency", "PerfInputs", "StageCost", "efficiency", "fitted_for", "gpu_family"]

# Weight formats that keep BF16/FP16 math and only read fewer bytes (dequantised in the kernel).
WEIGHT_ONLY_FORMATS = frozenset({"awq", "gptq", "int4", "gguf"})

# GEMM launches per decoder layer in a decode step, read in vLLM 0.33.0's model code: the unit the
# fitted per-layer launch gap is spread over (layer_launch_ratio). A small GEMM has a fixed floor of
# several µs whatever its bytes: TensorRT-LLM measured ~8 µs for DeepSeek's router GEMM at batch ≤ 16
# through cuBLAS (github NVIDIA/TensorRT-LLM#13646), the order of the fitted 38 µs / 4 GEMMs.
GQA_ATTENTION_GEMMS = 2  # qkv_proj, o_proj (models/llama.py LlamaAttention.forward)
# fused_qkv_a_proj (q_a + kv_a), q_b_proj, the absorbed W_UK_T and W_UV batched matmuls, o_proj
# (models/deepseek_v2.py DeepseekV2MLAAttention; layers/attention/mla_attention.py decode: torch.bmm × 2)
MLA_ATTENTION_GEMMS = 5
DENSE_MLP_GEMMS = 2  # gate_up_proj, down_proj (LlamaMLP.forward)
MOE_GEMMS = 3  # router gate, then the fused-MoE grouped GEMMs w13 and w2 (layers/fused_moe)
SHARED_EXPERT_GEMMS = 2  # DeepSeek's shared experts: one more gate_up_proj + down_proj (DeepseekV2MLP)


@frozen(kw_only=True)
class PerfInputs:
    """Everything one performance estimate depends on (one replica; ``layout.dp`` replicas in total).

    ``kv_bytes_per_token_per_gpu`` counts every attention layer on the GPU (what one token of a
    short sequence adds); sliding-window layers are capped at their window here.
    ``concurrency`` is requests in flight per replica, already capped by the caller at what the
    KV cache and ``max_num_seqs`` allow. ``power_limit_fraction`` is the power cap over TDP.
    """

    model: ModelArch
    gpu: GPU
    layout: Layout
    intra_link: Link
    network: Link | None
    gpus_per_node: int
    weights_bytes_per_gpu: float
    kv_bytes_per_token_per_gpu: float
    weights_format: str
    activation_dtype_bytes: int = 2
    prompt_tokens: float
    output_tokens: float
    concurrency: float
    prefix_cached_tokens: float = 0.0
    cuda_graphs: bool = True
    power_limit_fraction: float = 1.0
    max_num_batched_tokens: int = 8192
    # From the weights breakdown when known (else estimated from the architecture):
    expert_weights_bytes_per_gpu: float | None = None  # routed experts (read only where tokens go)
    embedding_bytes_per_gpu: float | None = None  # input embedding (only the batch's rows are read)
    pp_split: PpLayerSplit = "extra_before_last"  # the backend's pipeline split (BackendInfo.pp_layer_split)


@frozen(kw_only=True)
class StageCost:
    """One engine step on one pipeline stage (one TP group), by term, in seconds."""

    memory_s: float
    compute_s: float
    allreduce_s: float
    alltoall_s: float
    overhead_s: float
    weights_read_bytes: float
    kv_read_bytes: float
    allreduce_count: int
    allreduce_each_s: float

    @property
    def total_s(self) -> float:
        """Reads and math overlap; collectives and launch overhead do not."""
        return max(self.memory_s, self.compute_s) + self.allreduce_s + self.alltoall_s + self.overhead_s


def calibration() -> Calibration:
    """The fitted factors, read once (``planner/calibration.py``; the bench swaps them there)."""
    return _cal.calibration()


def compute_precision(weights_format: str, gpu: GPU, activation_dtype_bytes: int) -> tuple[str, str]:
    """The tensor-core precision the matmuls run in, and why.

    FP8 weights on GPUs with native FP8 run FP8 math; NVFP4 on FP4-native GPUs runs FP4; MXFP4 on
    FP4-native GPUs is assumed W4A8 (FP8 math). Weight-only formats (AWQ, GPTQ, FP8-Marlin on
    Ampere, MXFP4 on Hopper) dequantise to BF16/FP16 and only read fewer bytes.
    """
    dense = "bf16" if activation_dtype_bytes == 2 and gpu.dense_tflops.get("bf16") else "fp16"
    fmt = weights_format.lower()
    if fmt == "fp8" and gpu.fp8_native:
        return "fp8", "FP8 weights and activations on native FP8 tensor cores"
    if fmt == "nvfp4" and gpu.fp4_native:
        return "fp4", "NVFP4 on native FP4 tensor cores"
    if fmt == "mxfp4" and gpu.fp4_native:
        return "fp8", "MXFP4 experts assumed to run W4A8 (FP8 math) on FP4-capable tensor cores"
    if fmt == "int8" and gpu.dense_tflops.get("int8"):
        return "int8", "INT8 weights and activations (W8A8)"
    if fmt in ("bf16", "fp16"):
        return dense, f"{dense.upper()} weights and math"
    return dense, f"{fmt} weights are dequantised in the kernel: {dense.upper()} math, fewer bytes read"


def peak_flops(gpu: GPU, precision: str) -> float:
    """Dense tensor FLOP/s (catalog; GeForce figures are the FP32-accumulate rates, catalog pitfall 2)."""
    tflops = gpu.dense_tflops.get(precision) or gpu.dense_tflops.get("fp16") or gpu.dense_tflops.get("bf16")
    if not tflops:
        raise ValueError(f"{gpu.name} has no dense {precision} rate in the catalog")
    return float(tflops) * 1e12


def _stage_fraction(inputs: PerfInputs) -> float:
    """Share of the decoder layers on the most loaded pipeline stage (the backend's split)."""
    return max(pp_layer_split(inputs.model.num_layers, inputs.layout.pp, inputs.pp_split)) / inputs.model.num_layers


def effective_context(model: ModelArch, context_tokens: float) -> float:
    """Context tokens an average layer attends to: sliding-window layers stop at their window."""
    window = model.sliding_window or context_tokens
    return (
        model.num_full_layers * context_tokens + model.num_sliding_layers * min(context_tokens, window)
    ) / model.num_layers


def _embedding_bytes_per_gpu(inputs: PerfInputs) -> float:
    """The input embedding table: held but only the batch's rows are read per step (catalog pitfall 11).

    Counted only without PP (with PP the heaviest stage is taken to be the one with the LM head) and
    when the LM head is a separate matrix (a tied table is read whole by the LM head).
    """
    m = inputs.model
    if m.tie_word_embeddings or inputs.layout.pp > 1:
        return 0.0
    if inputs.embedding_bytes_per_gpu is not None:
        return inputs.embedding_bytes_per_gpu
    return m.vocab_size * m.hidden_size * 2 / inputs.layout.tp


def _routed_expert_fraction(model: ModelArch) -> float:
    """Routed-expert parameters over non-embedding parameters (0 for dense models)."""
    if not model.is_moe or not model.moe_intermediate_size:
        return 0.0
    experts = model.num_moe_layers * model.num_experts * 3 * model.hidden_size * model.moe_intermediate_size
    total = param_counts(model).total
    embeddings = model.vocab_size * model.hidden_size * (1 if model.tie_word_embeddings else 2)
    return min(experts / max(total - embeddings, 1), 1.0)


def experts_touched_fraction(model: ModelArch, tokens: float) -> float:
    """Expected share of routed experts a step of ``tokens`` tokens activates: 1 − (1 − k/E)^tokens."""
    if not model.is_moe:
        return 1.0
    k = max(model.experts_per_token, 1)
    untouched: float = (1.0 - k / model.num_experts) ** max(tokens, 0.0)
    return 1.0 - untouched


def routed_active_params(model: ModelArch) -> float:
    """Routed-expert parameters one token runs through: MoE layers × top-k × one expert (0 if dense)."""
    if not model.is_moe:
        return 0.0
    return float(model.num_moe_layers * max(model.experts_per_token, 1) * param_counts(model).per_expert)


def _dense_precision(inputs: PerfInputs) -> str:
    """The 16-bit tensor rate routed-expert GEMMs are counted at, whatever the weight format: the
    FP8 (DeepSeek-R1, Qwen3-235B-FP8) and MXFP4 (gpt-oss) grouped GEMMs of the MoE rows in
    calibration.json show no speed-up over BF16 ones (docs/performance-model.md §9)."""
    return "bf16" if inputs.activation_dtype_bytes == 2 and inputs.gpu.dense_tflops.get("bf16") else "fp16"


def _expert_scale_bytes(inputs: PerfInputs, experts: float) -> tuple[float, float]:
    """(scale bytes the experts' kernels read, scale bytes the experts hold): one copy of each routed
    expert's per-group/channel scales, and ``resident_scale_copies`` of them.

    The weights breakdown counts scales apart from the expert elements, all copies included; a decode
    step reads only the touched experts' scales, and only the copy the kernel uses (MXFP4 in vLLM:
    ``Mxfp4MoEMethod.process_weights_after_loading`` swizzles the scales for the Triton kernel and keeps
    the checkpoint's, unread, beside them — formats.py ``_MXFP4_SRC``).
    """
    fmt = next((f for f in WEIGHT_FORMATS if f.name == inputs.weights_format.lower()), None)
    m = inputs.model
    if fmt is None or fmt.scale_strategy in ("none", "tensor") or not m.moe_intermediate_size:
        return 0.0, 0.0
    weight, scales = linear_bytes(evolve(fmt, resident_scale_copies=1, tensor_scale_bytes=0),
                                  m.moe_intermediate_size, m.hidden_size)
    one_copy = experts * scales / weight if weight else 0.0
    return one_copy, one_copy * fmt.resident_scale_copies


def _weights_read(inputs: PerfInputs, tokens: float) -> float:
    """Weight bytes one GPU reads in a step of ``tokens`` tokens (MoE: only the touched experts and
    their scales; a second resident copy of the scales is not read)."""
    held = inputs.weights_bytes_per_gpu - _embedding_bytes_per_gpu(inputs)
    if not inputs.model.is_moe:
        return held
    experts = inputs.expert_weights_bytes_per_gpu
    if experts is None:
        experts = held * _routed_expert_fraction(inputs.model)
        scales_read, scales_held = 0.0, 0.0  # estimated from the parameter counts: scales not split out
    else:
        scales_read, scales_held = _expert_scale_bytes(inputs, experts)
    ep_tokens = tokens * (inputs.layout.dp if inputs.layout.ep > 1 else 1)
    touched = experts_touched_fraction(inputs.model, ep_tokens)
    return held - experts - scales_held + (experts + scales_read) * touched


def _attention_flops(model: ModelArch, new_tokens: float, context_before: float) -> float:
    """QKᵀ and AV: 2 × layers × heads × (q head dim + v head dim) per (query, key) pair — 4 × layers ×
    heads × head_dim for standard attention; causal within the new tokens (each sees half on average)."""
    pairs = new_tokens * effective_context(model, context_before + new_tokens / 2)
    per_pair = 2 * model.num_attention_heads * (model.q_head_dim + (model.v_head_dim or model.head_dim))
    return model.num_layers * per_pair * pairs


def _power_scales(inputs: PerfInputs) -> tuple[float, float]:
    """(compute, memory) speed under a power cap: clocks scale compute; HBM bandwidth loses half as much."""
    f = min(max(inputs.power_limit_fraction, 0.05), 1.0)
    return f, 1.0 - 0.5 * (1.0 - f)


def allreduce_model_for(inputs: PerfInputs, gpus: int) -> CollectiveModel:
    """The TP all-reduce model: TP never crosses a node (parallel.py rejects it)."""
    return collectives.allreduce_model(inputs.gpu, inputs.intra_link, gpus, cuda_graphs=inputs.cuda_graphs)


def _alltoall_model(inputs: PerfInputs) -> CollectiveModel:
    crosses = inputs.layout.ep > inputs.gpus_per_node
    return collectives.allreduce_model(
        inputs.gpu,
        inputs.intra_link,
        inputs.layout.ep,
        cuda_graphs=inputs.cuda_graphs,
        network=inputs.network,
        crosses_nodes=crosses,
        gpus_per_node=inputs.gpus_per_node,
    )


def stage_cost(
    inputs: PerfInputs,
    *,
    new_tokens: float,
    context_before: float,
    decode_batch: float,
    decode_context: float,
    sequences: float = 1.0,
) -> StageCost:
    """One step on one stage: ``new_tokens`` prompt tokens of ``sequences`` prompts (each after
    ``context_before`` earlier tokens) plus ``decode_batch`` sequences decoding at ``decode_context``."""
    m, lay = inputs.model, inputs.layout
    eff = efficiency(inputs.gpu)
    compute_scale, memory_scale = _power_scales(inputs)
    frac = _stage_fraction(inputs)
    tokens = new_tokens + decode_batch
    precision, _ = compute_precision(inputs.weights_format, inputs.gpu, inputs.activation_dtype_bytes)
    per_seq = new_tokens / max(sequences, 1.0)
    flops = (
        (
            2 * param_counts(m).active * tokens
            + sequences * _attention_flops(m, per_seq, context_before)
            + decode_batch * _attention_flops(m, 1, decode_context)
        )
        * frac
        / lay.tp
    )
    compute_eff = eff.prefill_compute if new_tokens > 0 else eff.decode_compute
    expert = 2 * routed_active_params(m) * tokens * frac / lay.tp
    compute_s = (flops - expert) / (peak_flops(inputs.gpu, precision) * compute_eff * compute_scale) + expert / (
        peak_flops(inputs.gpu, _dense_precision(inputs)) * calibration().moe_compute * compute_scale
    )
    kv_tokens = (
        decode_batch * effective_context(m, decode_context)
        + new_tokens
        + (sequences * effective_context(m, context_before) if new_tokens > 0 else 0.0)
    )
    weights = _weights_read(inputs, tokens)
    kv = kv_tokens * inputs.kv_bytes_per_token_per_gpu
    memory_s = (weights + kv) / (inputs.gpu.mem_bandwidth_bytes_per_s * eff.decode_bandwidth * memory_scale)
    layers = m.num_layers * frac
    moe_layers = m.num_moe_layers * frac if m.is_moe else 0.0
    count = 0 if lay.tp == 1 else round(2 * layers - (moe_layers if lay.ep > 1 else 0))
    message = tokens * m.hidden_size * inputs.activation_dtype_bytes
    each = collectives.allreduce_time_s(allreduce_model_for(inputs, lay.tp), lay.tp, message) if count else 0.0
    alltoall = 0.0
    if lay.ep > 1:
        a2a_bytes = tokens * max(m.experts_per_token, 1) * m.hidden_size * inputs.activation_dtype_bytes
        alltoall = 2 * moe_layers * collectives.alltoall_time_s(_alltoall_model(inputs), lay.ep, a2a_bytes)
    cal = calibration()
    per_layer = cal.layer_overhead_s if inputs.cuda_graphs else cal.eager_layer_overhead_s
    per_layer *= layer_launch_ratio(m)  # fitted on dense GQA layers; MLA and MoE layers launch more GEMMs
    return StageCost(
        memory_s=memory_s,
        compute_s=compute_s,
        allreduce_s=count * each,
        alltoall_s=alltoall,
        overhead_s=layers * per_layer,
        weights_read_bytes=weights,
        kv_read_bytes=kv,
        allreduce_count=count,
        allreduce_each_s=each,
    )


def layer_launch_ratio(model: ModelArch) -> float:
    """The model's mean GEMM launches per decoder layer over a dense GQA layer's (4): what the fitted
    per-layer launch gap ``t_layer`` scales by. ``t_layer`` is fitted on dense Llama layers only; a
    decode step of a few tokens runs each projection as a small kernel with its companions (norm,
    quantisation, activation), so a layer's fixed cost grows with its GEMM count, not its size."""
    attention = MLA_ATTENTION_GEMMS if model.uses_mla else GQA_ATTENTION_GEMMS
    moe_layers = model.num_moe_layers if model.is_moe else 0
    moe = MOE_GEMMS + (SHARED_EXPERT_GEMMS if model.num_shared_experts else 0)
    gemms = attention * model.num_layers + DENSE_MLP_GEMMS * (model.num_layers - moe_layers) + moe * moe_layers
    return gemms / ((GQA_ATTENTION_GEMMS + DENSE_MLP_GEMMS) * model.num_layers)


def handoff_time_s(inputs: PerfInputs, tokens: float) -> float:
    """All pipeline hand-offs of one step: (PP − 1) sends of tokens × hidden activations (+ residual)."""
    pp = inputs.layout.pp
    if pp == 1:
        return 0.0
    message = 2 * tokens * inputs.model.hidden_size * inputs.activation_dtype_bytes
    replica = inputs.layout.tp * pp
    crossings = max(math.ceil(replica / inputs.gpus_per_node) - 1, 0) if replica > inputs.gpus_per_node else 0
    intra = collectives.allreduce_model(inputs.gpu, inputs.intra_link, 2, cuda_graphs=inputs.cuda_graphs)
    total = (pp - 1 - crossings) * collectives.p2p_time_s(intra, message)
    if crossings:
        net = collectives.allreduce_model(
            inputs.gpu,
            inputs.intra_link,
            2,
            cuda_graphs=inputs.cuda_graphs,
            network=inputs.network,
            crosses_nodes=True,
            gpus_per_node=inputs.gpus_per_node,
        )
        total += crossings * collectives.p2p_time_s(net, message)
    return total


def prefill_time_s(
    inputs: PerfInputs,
    tokens: int,
    *,
    context_before: float = 0.0,
    decode_batch: float = 0.0,
    decode_context: float = 0.0,
    sequences: int = 1,
) -> tuple[float, tuple[Quantity, ...]]:
    """One forward pass of ``tokens`` prompt tokens (of ``sequences`` prompts) through every stage,
    optionally sharing the step with ``decode_batch`` decoding sequences, as chunked prefill does."""
    stage = stage_cost(
        inputs,
        new_tokens=tokens,
        context_before=context_before,
        decode_batch=decode_batch,
        decode_context=decode_context,
        sequences=sequences,
    )
    pp = inputs.layout.pp
    handoff = handoff_time_s(inputs, tokens + decode_batch)
    total = pp * stage.total_s + handoff + _cal.step_overhead_s(inputs.gpu)
    return total, (
        Quantity("prefill tokens", tokens, "tokens"),
        Quantity("prefill compute", pp * stage.compute_s * 1e3, "ms"),
        Quantity("prefill weights + KV read", pp * stage.memory_s * 1e3, "ms"),
        Quantity("prefill TP all-reduce", pp * stage.allreduce_s * 1e3, "ms"),
        Quantity("prefill PP hand-off", handoff * 1e3, "ms"),
        Quantity("prefill time", total * 1e3, "ms"),
    )


def decode_step_time_s(
    inputs: PerfInputs, batch: float, context_tokens: float
) -> tuple[float, Bound, tuple[Quantity, ...]]:
    """Time between two tokens of one sequence with ``batch`` sequences decoding (no prefill mixed in).

    With PP the batch runs as min(PP, batch) micro-batches, one per stage in flight (vLLM V1
    keeps PP batches in flight), so a token crosses every stage: ITL = PP × stage step + hand-offs.
    """
    pp = inputs.layout.pp
    micro = max(min(float(pp), math.ceil(batch)), 1.0)
    per_micro = max(batch, 1.0) / micro
    stage = stage_cost(inputs, new_tokens=0, context_before=0, decode_batch=per_micro, decode_context=context_tokens)
    handoff = handoff_time_s(inputs, per_micro)
    overhead = pp * stage.overhead_s + _cal.step_overhead_s(inputs.gpu)
    memory, compute = pp * stage.memory_s, pp * stage.compute_s
    comm = pp * (stage.allreduce_s + stage.alltoall_s) + handoff
    total = max(memory, compute) + comm + overhead
    terms: dict[Bound, float] = {
        "memory": memory if memory >= compute else 0.0,
        "compute": compute if compute > memory else 0.0,
        "communication": comm,
    }
    bound: Bound = max(terms, key=lambda k: terms[k])
    link = inputs.intra_link.id
    return (
        total,
        bound,
        (
            Quantity("step: memory", terms["memory"] * 1e3, "ms"),
            Quantity("step: compute", terms["compute"] * 1e3, "ms"),
            Quantity("step: TP all-reduce", pp * stage.allreduce_s * 1e3, "ms"),
            Quantity("step: EP all-to-all", pp * stage.alltoall_s * 1e3, "ms"),
            Quantity("step: PP hand-off", handoff * 1e3, "ms"),
            Quantity("step: launch overhead", overhead * 1e3, "ms"),
            Quantity("TP all-reduce count", pp * stage.allreduce_count, "per token"),
            Quantity("TP all-reduce each", stage.allreduce_each_s * 1e6, f"µs on {link}"),
            Quantity("weights read per step per GPU", stage.weights_read_bytes / 1e9, "GB"),
            Quantity("KV read per step per GPU", stage.kv_read_bytes / 1e9, "GB"),
            Quantity("micro-batches in flight", micro, ""),
        ),
    )


def _marginal_prefill_s(inputs: PerfInputs, new_tokens: float, batch: float) -> float:
    """Extra time a prompt adds to the decode steps it is chunked into: its math and collectives (the
    weights are read for the decodes anyway). With PP every stage does its share; the stages overlap
    when the batch fills one micro-batch per stage, so the cost is PP / micro-batches stage shares."""
    if new_tokens <= 0:
        return 0.0
    stage = stage_cost(
        inputs, new_tokens=new_tokens, context_before=inputs.prefix_cached_tokens, decode_batch=0, decode_context=0
    )
    pp = inputs.layout.pp
    micro = max(min(float(pp), math.ceil(batch)), 1.0)
    return (
        pp / micro * (stage.compute_s + stage.allreduce_s + stage.alltoall_s)
        + handoff_time_s(inputs, new_tokens) / micro
    )


def ttft_s(inputs: PerfInputs, batch: float, context_tokens: float) -> tuple[float, int]:
    """Time to first token for a request joining ``batch − 1`` decoding ones: its uncached prompt in
    chunks of (token budget − decodes), each chunk one step shared with the decodes. Queueing ignored."""
    cached = min(inputs.prefix_cached_tokens, inputs.prompt_tokens)
    new = max(inputs.prompt_tokens - cached, 1.0)
    others = max(batch - 1.0, 0.0)
    chunk = max(inputs.max_num_batched_tokens - others, 1.0)
    full = math.floor(new / chunk)
    rest = new - full * chunk
    total = 0.0
    if full:
        mid = cached + (full * chunk) / 2 - chunk / 2
        step, _ = prefill_time_s(
            inputs, int(chunk), context_before=mid, decode_batch=others, decode_context=context_tokens
        )
        total += full * step
    if rest > 0:
        step, _ = prefill_time_s(
            inputs,
            math.ceil(rest),
            context_before=cached + full * chunk,
            decode_batch=others,
            decode_context=context_tokens,
        )
        total += step
    return total, full + (1 if rest > 0 else 0)


def estimate_performance(inputs: PerfInputs) -> Performance:
    """TTFT, ITL and throughput at the steady batch (``concurrency`` per replica), with the terms.

    ITL = decode step + the share of other requests' prompts chunked into each step
    ((batch − 1) / output tokens arrivals per step). Tokens/s per replica = concurrency × output /
    (TTFT + (output − 1) × ITL), the closed-loop rate; total = × DP. The bound is the decode
    step's largest term (memory, compute or communication) and its share of that step.
    """
    batch = max(inputs.concurrency, 1.0)
    out = max(inputs.output_tokens, 1.0)
    context = inputs.prompt_tokens + out / 2
    decode_s, bound, terms = decode_step_time_s(inputs, batch, context)
    new_prompt = max(inputs.prompt_tokens - min(inputs.prefix_cached_tokens, inputs.prompt_tokens), 0.0)
    prefill_share = (batch - 1.0) / out * _marginal_prefill_s(inputs, new_prompt, batch)
    itl = decode_s + prefill_share
    ttft, chunks = ttft_s(inputs, batch, context)
    # Requests actually in flight (below one when replicas outnumber requests): the closed-loop rate.
    per_replica = max(inputs.concurrency, 0.0) * out / (ttft + (out - 1) * itl)
    total = per_replica * inputs.layout.dp
    ms = {q.label: q.value for q in terms if q.label.startswith("step: ")}
    comm_ms = ms["step: TP all-reduce"] + ms["step: EP all-to-all"] + ms["step: PP hand-off"]
    bound_ms = {"memory": ms["step: memory"], "compute": ms["step: compute"], "communication": comm_ms}
    return Performance(
        ttft_ms=ttft * 1e3,
        itl_ms=itl * 1e3,
        tokens_per_s=total,
        tokens_per_s_per_gpu=total / inputs.layout.gpus_used,
        bound=bound,
        bound_share=bound_ms[bound] / (decode_s * 1e3) if decode_s > 0 else 0.0,
        batch_size=batch,
        decode_step_ms=decode_s * 1e3,
        step_breakdown=(
            *terms,
            Quantity("step: chunked prefill of arriving prompts", prefill_share * 1e3, "ms"),
            Quantity("decode step", decode_s * 1e3, "ms"),
            Quantity("prefill chunks for one prompt", chunks, ""),
            Quantity("uncached prompt tokens", new_prompt, "tokens"),
            Quantity("tokens/s per replica", per_replica, "tokens/s"),
        ),
        assumptions=assumptions(inputs),
    )


def assumptions(inputs: PerfInputs) -> tuple[str, ...]:
    """Every assumption behind an estimate, as sentences."""
    eff = efficiency(inputs.gpu)
    family = gpu_family(inputs.gpu)
    fitted = fitted_for(inputs.gpu)
    _, why = compute_precision(inputs.weights_format, inputs.gpu, inputs.activation_dtype_bytes)
    lines = [
        "Queueing is ignored: TTFT is the prefill of a request joining the steady batch; bursts above the "
        "planned concurrency wait for a slot on top of it.",
        f"Compute precision: {why}.",
        f"Efficiencies ({'fitted for ' + fitted if fitted else 'no measurement for ' + family + ', all-row fit'}): "
        f"prefill {eff.prefill_compute:.0%} of peak, decode {eff.decode_bandwidth:.0%} of HBM bandwidth "
        f"[{eff.source}].",
        allreduce_model_for(inputs, max(inputs.layout.tp, 2)).assumption
        if inputs.layout.tp > 1
        else "No tensor parallelism: no all-reduces.",
        "Prompts of arriving requests are chunked into decode steps (chunked prefill); their math is spread "
        "over the steps of the running requests.",
    ]
    if inputs.model.is_moe:
        lines.append(
            f"Routed-expert GEMMs run at {calibration().moe_compute:.0%} of the 16-bit tensor peak whatever the "
            "weight format (grouped GEMMs of a few tokens per expert; fitted on public MoE measurements)."
        )
    ratio = layer_launch_ratio(inputs.model)
    if ratio != 1.0:
        lines.append(
            f"Each layer launches {4 * ratio:.1f} GEMMs on average (MLA and MoE blocks), not a dense layer's 4: "
            f"its fixed launch gap is {ratio:.2f}× the fitted per-layer gap."
        )
    if inputs.layout.pp > 1:
        lines.append(
            "With PP the batch runs as one micro-batch per stage; one request's prompt crosses the "
            "stages one after another (no pipelining inside a request)."
        )
    if inputs.prefix_cached_tokens:
        lines.append(
            f"{inputs.prefix_cached_tokens:,.0f} of {inputs.prompt_tokens:,.0f} prompt tokens are "
            "served from the prefix cache on average."
        )
    if inputs.power_limit_fraction < 1:
        lines.append(
            f"Power capped at {inputs.power_limit_fraction:.0%} of TDP: compute scales with the cap, "
            "memory bandwidth loses half as much (assumption, not calibrated)."
        )
    if not inputs.cuda_graphs:
        lines.append("Without CUDA graphs every layer pays kernel-launch gaps (eager mode).")
    return tuple(lines)
