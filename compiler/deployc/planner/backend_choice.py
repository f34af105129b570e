"""Choosing the inference engine when ``operations.backend = "auto"``.

The articles' decision framework (seed 003), made explicit and ordered:
1. vendor and lock-in: TensorRT-LLM runs on NVIDIA only and is refused when lock-in is not acceptable;
2. how often the model changes: TensorRT-LLM's engine flow compiles an engine per model and configuration
   (10-30 minutes each, tied to a GPU architecture), so frequent changes rule it out; its PyTorch flow
   (the default since 1.0) loads the checkpoint with no build, so there a change only ranks it lower;
3. many models on one fleet: vLLM (no engine per model);
4. agent or prefix-heavy traffic: SGLang (RadixAttention shares partial prefixes across branches);
5. a stable single model at high volume: TensorRT-LLM ("the finishing move");
6. otherwise vLLM (fast iteration, widest model support).
Each backend then vetoes what it cannot run (capability hook); the planner moves to the next.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from attrs import field, frozen

from deployc.planner.decisions import Alternative, Decision, Quantity
from deployc.spec.model import Spec

# A workload counts as high volume at this many requests in flight or per second (stated in the reason).
HIGH_VOLUME_CONCURRENCY = 64
HIGH_VOLUME_RATE_PER_S = 20.0
# Prefix-heavy: at least this share of the mean prompt is a shared prefix.
PREFIX_HEAVY_SHARE = 0.5
STABLE_CHANGE_RATES = ("quarterly", "rarely")


@frozen
class BackendRanking:
    """Backends in the order the rules prefer them, each with the reason for its place."""

    order: tuple[str, ...]
    reasons: dict[str, str]
    rule_reason: str
    preferred: str
    notes: dict[str, str] = field(factory=dict)  # why a candidate is ranked where it is, beyond the rule


def _prefix_share(spec: Spec) -> float:
    return min(spec.workload.shared_prefix_tokens / spec.workload.prompt_tokens.mean, 1.0)


def _high_volume(spec: Spec) -> bool:
    w = spec.workload
    return (w.concurrency or 0) >= HIGH_VOLUME_CONCURRENCY or (w.request_rate_per_s or 0) >= HIGH_VOLUME_RATE_PER_S


def _trtllm_engine_flow(spec: Spec) -> bool:
    """Whether the spec pins TensorRT-LLM's engine flow (the only one with a compile step per model change)."""
    table = spec.backends.get("trtllm") or {}
    return table.get("flow") == "engine"


def rank_backends(spec: Spec, installed: Sequence[str], gpu_vendor: str,
                  gpu_vendors: Mapping[str, Sequence[str]] | None = None) -> BackendRanking:
    """Order the installed backends by the decision framework.

    ``gpu_vendors`` maps a backend to the GPU vendors its engine runs on (``BackendInfo.gpu_vendors``): a
    backend whose list lacks the target GPU's vendor is excluded.
    """
    ops = spec.operations
    excluded: dict[str, str] = {name: f"{name} runs on {', '.join(vendors)} GPUs only ({gpu_vendor} given)"
                                for name, vendors in (gpu_vendors or {}).items()
                                if gpu_vendor.lower() not in (v.lower() for v in vendors)}
    stable = ops.model_change in STABLE_CHANGE_RATES
    if gpu_vendor != "NVIDIA":  # the built-in's own reason, beside what its BackendInfo says
        excluded["trtllm"] = (f"TensorRT-LLM runs only on NVIDIA GPUs ({gpu_vendor} given); vllm and sglang have ROCm "
                              "builds for AMD Instinct GPUs")
    elif not ops.nvidia_lock_in_ok:
        excluded["trtllm"] = "NVIDIA lock-in is not acceptable (operations.nvidia_lock_in_ok = false)"
    elif _trtllm_engine_flow(spec) and not stable:
        excluded["trtllm"] = (f"the model changes {ops.model_change}; each TensorRT-LLM engine build takes "
                              "10-30 minutes per configuration and is tied to one GPU architecture")
    elif _trtllm_engine_flow(spec) and ops.models == "multi":
        excluded["trtllm"] = "several models share the fleet; TensorRT-LLM needs an engine per model"
    prefix = _prefix_share(spec)
    if spec.workload.kind == "agent" or prefix >= PREFIX_HEAVY_SHARE:
        first, why = "sglang", (f"{spec.workload.kind} traffic with {prefix:.0%} of the prompt shared: SGLang's "
                                "radix cache reuses partial prefixes across branches and turns")
    elif "trtllm" not in excluded and ops.models == "single" and stable and _high_volume(spec):
        first, why = "trtllm", (f"a stable single model (changes {ops.model_change}) at high volume: TensorRT-LLM's "
                                "kernels give the highest throughput, and its warm-up (or engine build) is paid rarely")
    else:
        first, why = "vllm", "no compile step, fast model iteration, widest model and hardware support"
    # With no compile step (PyTorch flow) a frequently changing or multi-model fleet keeps TensorRT-LLM as a
    # candidate, ranked last: each change still costs its warm-up (autotuning, CUDA graph capture), and new
    # architectures reach it later than vLLM.
    preference = [first] + [b for b in ("vllm", "sglang", "trtllm") if b != first]
    notes: dict[str, str] = {}
    if "trtllm" not in excluded and not stable:
        notes["trtllm"] = (f"ranked last: the model changes {ops.model_change}; the PyTorch flow needs no engine "
                           "build, but each change still costs its warm-up (autotuning, CUDA graph capture)")
    order = [b for b in preference if b in installed and b not in excluded]
    order += sorted(b for b in installed if b not in preference and b not in excluded)
    reasons = {b: excluded[b] for b in excluded if b in installed}
    return BackendRanking(order=tuple(order), reasons=reasons, rule_reason=why, preferred=first, notes=notes)


def backend_decision(spec: Spec, chosen: str, ranking: BackendRanking, vetoes: dict[str, str]) -> Decision:
    """The backend decision with every installed alternative and why it lost."""
    if spec.operations.backend != "auto":
        return Decision(id="backend", value=chosen, rule="DPC105",
                        reason=f"set in the spec (operations.backend = {spec.operations.backend!r})")
    rejected = [Alternative(b, reason) for b, reason in sorted({**ranking.reasons, **vetoes}.items())]
    rejected += [Alternative(b, ranking.notes.get(b) or f"ranked below {chosen}: {ranking.rule_reason}")
                 for b in ranking.order if b != chosen and b not in vetoes]
    numbers = (Quantity("shared prefix share of the prompt", round(_prefix_share(spec) * 100, 1), "%"),)
    if chosen == ranking.preferred:
        reason = ranking.rule_reason
    elif ranking.preferred not in ranking.order:
        reason = (f"{ranking.preferred} would be preferred ({ranking.rule_reason}) but is not installed; {chosen} "
                  "is next in order")
        rejected.insert(0, Alternative(ranking.preferred, "not installed"))
    else:
        reason = f"{ranking.preferred} is preferred ({ranking.rule_reason}) but cannot serve this plan; next in order"
    return Decision(id="backend", value=chosen, rule="DPC401", reason=reason, numbers=numbers,
                    rejected=tuple(rejected))
