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
    network_nics: int | None = None  # RDMA ports per node (hardware.ib_hcas); None: one NIC per GPU


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
        network_nics=inputs.network_nics,
    )


_LAST_PRICER: list[tuple[PerfInputs, Calibration, StagePricer]] = []


def _pricer(inputs: PerfInputs) -> StagePricer:
    """The pricer of these inputs: the last one again when the same inputs are priced under the same calibration
    (an estimate prices its decode step, its prompt chunks and its hand-offs from one PerfInputs)."""
    cal = calibration()
    if _LAST_PRICER and _LAST_PRICER[0][0] is inputs and _LAST_PRICER[0][1] is cal:
        return _LAST_PRICER[0][2]
    pricer = StagePricer(inputs)
    _LAST_PRICER[:] = [(inputs, cal, pricer)]
    return pricer


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
    return _pricer(inputs).stage(new_tokens, context_before, decode_batch, decode_context, sequences)


class StagePricer:
    """The step formulas for one :class:`PerfInputs`, with every term that does not change from step to step
    (efficiencies, peaks, the stage's share of layers, collective models) worked out once.

    The simulation prices thousands of steps of one engine; :func:`stage_cost`, :func:`prefill_time_s` and
    :func:`decode_step_time_s` are these formulas too, so a step costs the same wherever it is priced.
    """

    def __init__(self, inputs: PerfInputs) -> None:
        m, lay = inputs.model, inputs.layout
        self.inputs, self.model = inputs, m
        eff = efficiency(inputs.gpu)
        compute_scale, memory_scale = _power_scales(inputs)
        self.frac = frac = _stage_fraction(inputs)
        precision, _ = compute_precision(inputs.weights_format, inputs.gpu, inputs.activation_dtype_bytes)
        cal = calibration()
        self.tp, self.pp, self.ep = lay.tp, lay.pp, lay.ep
        self.active = param_counts(m).active
        self.routed = routed_active_params(m)
        # attention_flops and effective_context, term by term.
        per_pair = 2 * m.num_attention_heads * (m.q_head_dim + (m.v_head_dim or m.head_dim))
        self.attention_per_pair = m.num_layers * per_pair
        self.full_layers, self.sliding_layers, self.window = m.num_full_layers, m.num_sliding_layers, m.sliding_window
        self.num_layers = m.num_layers
        peak = peak_flops(inputs.gpu, precision)
        self.prefill_flops_s = peak * eff.prefill_compute * compute_scale
        self.decode_flops_s = peak * eff.decode_compute * compute_scale
        self.expert_flops_s = peak_flops(inputs.gpu, _dense_precision(inputs)) * cal.moe_compute * compute_scale
        self.bytes_s = inputs.gpu.mem_bandwidth_bytes_per_s * eff.decode_bandwidth * memory_scale
        self.kv_bytes = inputs.kv_bytes_per_token_per_gpu
        self.moe = m.is_moe
        held = inputs.weights_bytes_per_gpu - _embedding_bytes_per_gpu(inputs)
        self.weights_held = held
        self.experts, self.scales_read, self.scales_held = 0.0, 0.0, 0.0
        if m.is_moe:  # _weights_read, term by term
            experts = inputs.expert_weights_bytes_per_gpu
            if experts is None:
                experts = held * _routed_expert_fraction(m)
            else:
                self.scales_read, self.scales_held = _expert_scale_bytes(inputs, experts)
            self.experts = experts
            self.ep_token_factor = lay.dp if lay.ep > 1 else 1
        self.layers = layers = m.num_layers * frac
        self.moe_layers = moe_layers = m.num_moe_layers * frac if m.is_moe else 0.0
        self.allreduce_count = 0 if lay.tp == 1 else round(2 * layers - (moe_layers if lay.ep > 1 else 0))
        self.hidden, self.act_bytes = m.hidden_size, inputs.activation_dtype_bytes
        self.top_k = max(m.experts_per_token, 1)
        self.allreduce = allreduce_model_for(inputs, lay.tp) if self.allreduce_count else None
        self.alltoall = _alltoall_model(inputs) if lay.ep > 1 else None
        per_layer = cal.layer_overhead_s if inputs.cuda_graphs else cal.eager_layer_overhead_s
        per_layer *= layer_launch_ratio(m)  # fitted on dense GQA layers; MLA and MoE layers launch more GEMMs
        self.overhead_s = layers * per_layer
        self.step_overhead_s = _cal.step_overhead_s(inputs.gpu)
        self.handoff = _handoff_models(inputs) if lay.pp > 1 else None

    def effective_context(self, context_tokens: float) -> float:
        """:func:`effective_context` of the model."""
        window = self.window or context_tokens
        return (self.full_layers * context_tokens + self.sliding_layers * min(context_tokens, window)) / self.num_layers

    def attention_flops(self, new_tokens: float, context_before: float) -> float:
        """QKᵀ and AV: 2 × layers × heads × (q head dim + v head dim) per (query, key) pair — 4 × layers ×
    heads × head_dim for standard attention; causal within the new tokens (each sees half on average)."""
        return self.attention_per_pair * (new_tokens * self.effective_context(context_before + new_tokens / 2))

    def _terms(self, new_tokens: float, context_before: float, decode_batch: float, decode_context: float,
               sequences: float) -> tuple[float, float, float, float, float, float, float]:
        """memory, compute, all-reduce, all-to-all seconds, all-reduce each, weight and KV bytes read."""
        tokens = new_tokens + decode_batch
        per_seq = new_tokens / max(sequences, 1.0)
        flops = (
            (
                2 * self.active * tokens
                + sequences * self.attention_flops(per_seq, context_before)
                + decode_batch * self.attention_flops(1, decode_context)
            )
            * self.frac
            / self.tp
        )
        expert = 2 * self.routed * tokens * self.frac / self.tp
        compute_s = (flops - expert) / (self.prefill_flops_s if new_tokens > 0 else self.decode_flops_s) + (
            expert / self.expert_flops_s)
        kv_tokens = (
            decode_batch * self.effective_context(decode_context)
            + new_tokens
            + (sequences * self.effective_context(context_before) if new_tokens > 0 else 0.0)
        )
        weights = self.weights_held
        if self.moe:
            touched = experts_touched_fraction(self.model, tokens * self.ep_token_factor)
            weights = weights - self.experts - self.scales_held + (self.experts + self.scales_read) * touched
        kv = kv_tokens * self.kv_bytes
        memory_s = (weights + kv) / self.bytes_s
        message = tokens * self.hidden * self.act_bytes
        each = collectives.allreduce_time_s(self.allreduce, self.tp, message) if self.allreduce is not None else 0.0
        alltoall = 0.0
        if self.alltoall is not None:
            a2a_bytes = tokens * self.top_k * self.hidden * self.act_bytes
            alltoall = 2 * self.moe_layers * collectives.alltoall_time_s(self.alltoall, self.ep, a2a_bytes)
        return memory_s, compute_s, self.allreduce_count * each, alltoall, each, weights, kv

    def stage(self, new_tokens: float, context_before: float, decode_batch: float, decode_context: float,
              sequences: float = 1.0) -> StageCost:
        """One step on one stage, by term (:func:`stage_cost`)."""
        memory_s, compute_s, allreduce_s, alltoall_s, each, weights, kv = self._terms(
            new_tokens, context_before, decode_batch, decode_context, sequences)
        return StageCost(memory_s=memory_s, compute_s=compute_s, allreduce_s=allreduce_s, alltoall_s=alltoall_s,
                         overhead_s=self.overhead_s, weights_read_bytes=weights, kv_read_bytes=kv,
                         allreduce_count=self.allreduce_count, allreduce_each_s=each)

    def handoff_s(self, tokens: float) -> float:
        """:func:`handoff_time_s`."""
        if self.handoff is None:  # one stage: nothing to hand off
            return 0.0
        message = 2 * tokens * self.hidden * self.act_bytes
        intra, net, crossings = self.handoff
        total = (self.pp - 1 - crossings) * collectives.p2p_time_s(intra, message)
        if net is not None:
            total += crossings * collectives.p2p_time_s(net, message)
        return total

    def prefill_s(self, tokens: int, context_before: float, decode_batch: float, decode_context: float,
                  sequences: int) -> float:
        """:func:`prefill_time_s`'s time alone."""
        memory_s, compute_s, allreduce_s, alltoall_s, _, _, _ = self._terms(
            tokens, context_before, decode_batch, decode_context, sequences)
        total_s = max(memory_s, compute_s) + allreduce_s + alltoall_s + self.overhead_s
        return self.pp * total_s + self.handoff_s(tokens + decode_batch) + self.step_overhead_s

    def decode_s(self, batch: float, context_tokens: float) -> float:
        """:func:`decode_step_time_s`'s time alone."""
        pp = self.pp
        micro = max(min(float(pp), math.ceil(batch)), 1.0)
        per_micro = max(batch, 1.0) / micro
        memory_s, compute_s, allreduce_s, alltoall_s, _, _, _ = self._terms(0, 0, per_micro, context_tokens, 1.0)
        overhead = pp * self.overhead_s + self.step_overhead_s
        comm = pp * (allreduce_s + alltoall_s) + self.handoff_s(per_micro)
        return max(pp * memory_s, pp * compute_s) + comm + overhead


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
    return _pricer(inputs).handoff_s(tokens)


def _handoff_models(inputs: PerfInputs) -> tuple[CollectiveModel, CollectiveModel | None, int]:
    """The sends between stages: the link inside a node, the network's when the replica crosses nodes, and
    how many of the PP − 1 hand-offs cross (a replica over ``gpus_per_node`` spans several nodes)."""
    replica = inputs.layout.tp * inputs.layout.pp
    crossings = max(math.ceil(replica / inputs.gpus_per_node) - 1, 0) if replica > inputs.gpus_per_node else 0
    intra = collectives.allreduce_model(inputs.gpu, inputs.intra_link, 2, cuda_graphs=inputs.cuda_graphs)
    net = None
    if crossings:
        net = collectives.allreduce_model(
            inputs.gpu,
            inputs.intra_link,
            2,
            cuda_graphs=inputs.cuda_graphs,
            network=inputs.network,
            crosses_nodes=True,
            gpus_per_node=inputs.gpus_per_node,
            network_nics=inputs.network_nics,
        )
    return intra, net, crossings


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
    pricer = _pricer(inputs)
    stage = pricer.stage(tokens, context_before, decode_batch, decode_context, sequences)
    pp = inputs.layout.pp
    handoff = pricer.handoff_s(tokens + decode_batch)
    total = pp * stage.total_s + handoff + pricer.step_overhead_s
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
    pricer = _pricer(inputs)
    stage = pricer.stage(0, 0, per_micro, context_tokens)
    handoff = pricer.handoff_s(per_micro)
    overhead = pp * stage.overhead_s + pricer.step_overhead_s
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
