"""Parallel layouts: which (TP, PP, DP, EP) are valid for a model on the GPUs given, and which one wins.

Pure functions. :func:`enumerate_layouts` lists every layout with the reasons an engine would
refuse it; :func:`rank_layouts` orders evaluated layouts (memory verdict and performance
computed by the caller) by fit, then the SLO, then the goal, and says in numbers why each
loser lost.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Literal

from attrs import frozen

from deployc.catalog import GPU, Link, ModelArch
from deployc.contract.backend import PpLayerSplit
from deployc.planner.decisions import Alternative, Quantity, format_number
from deployc.planner.types import Layout, Performance
from deployc.planner.weights import pp_stage_layers
from deployc.units import GIB

Goal = Literal["latency", "throughput", "cost"]
# An NVLink bridge joins two cards (catalog §2: "PCIe-card NVLink bridges ... per pair").
BRIDGE_DOMAIN_GPUS = 2
# Scores closer than this relative difference are a tie, broken by fewer GPUs, then smaller TP.
TIE_SIGNIFICANT_DIGITS = 3


@frozen(kw_only=True)
class LayoutCheck:
    """A layout and whether an engine would accept it; ``reasons`` say why not."""

    layout: Layout
    valid: bool
    reasons: tuple[str, ...] = ()
    refused_by: str | None = None  # the backend whose emitter cannot deploy it (deployc_layout_support)


@frozen(kw_only=True)
class LayoutEvaluation:
    """One valid layout with its memory verdict and predicted performance."""

    layout: Layout
    fits: bool
    shortfall_bytes: int
    kv_capacity_tokens: int
    max_concurrency: float
    performance: Performance | None
    meets_slo: bool
    slo_misses: tuple[str, ...] = ()


@frozen(kw_only=True)
class SearchResult:
    """The winning layout, all evaluated layouts best first, the invalid ones, and why each loser lost."""

    best: LayoutEvaluation | None
    ranked: tuple[LayoutEvaluation, ...]
    rejected: tuple[LayoutCheck, ...]
    losers: tuple[Alternative, ...]


def pp_layer_split(num_layers: int, pp: int, rule: PpLayerSplit = "extra_before_last") -> tuple[int, ...]:
    """Decoder layers per pipeline stage, exactly as the backend's engine assigns them (``rule``).

    ``extra_before_last`` is vLLM's ``get_pp_indices`` (``vllm/distributed/utils.py``, 0.33.0): every
    stage gets ``num_layers // pp``; the remainder goes one layer each to the stages before the last,
    starting from the second-to-last and moving towards the first (``partitions[-i] += 1 for i in
    2 .. remainder + 1``), the last stage being spared because it also runs the final norm and the LM
    head: 80 layers on 3 stages are (27, 27, 26).  The other rules: :func:`~deployc.planner.weights.pp_stage_layers`.
    """
    return pp_stage_layers(num_layers, pp, rule)  # one rule, kept with the weights that follow it


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _head_reasons(model: ModelArch, tp: int) -> list[str]:
    reasons = []
    heads, kv = model.num_attention_heads, model.num_kv_heads
    if heads % tp:
        reasons.append(f"{heads} attention heads are not divisible by TP{tp}")
    # vLLM QKVParallelLinear: kv >= tp splits the KV heads (kv % tp == 0); kv < tp replicates
    # each KV head on tp / kv ranks (tp % kv == 0).
    if kv >= tp and kv % tp:
        reasons.append(f"{kv} KV heads are not divisible by TP{tp}")
    elif kv < tp and tp % kv:
        reasons.append(
            f"TP{tp} is not a multiple of the {kv} KV heads (vLLM replicates KV heads only "
            "when TP is a multiple of them)"
        )
    return reasons


def _block_reasons(model: ModelArch, tp: int, ep: int, block: int | None) -> list[str]:
    if not block or tp == 1:
        return []
    reasons = []
    if "dense" in model.mlp_kinds and (model.intermediate_size // tp) % block:
        reasons.append(
            f"FP8 block quantisation: intermediate_size {model.intermediate_size} / TP{tp} = "
            f"{model.intermediate_size / tp:g} is not a multiple of the {block}-wide block"
        )
    moe_inter = model.moe_intermediate_size
    if model.is_moe and ep == 1 and moe_inter and (moe_inter // tp) % block:
        reasons.append(
            f"FP8 block quantisation: moe_intermediate_size {moe_inter} / TP{tp} = "
            f"{moe_inter / tp:g} is not a multiple of the {block}-wide block"
        )
    return reasons


def _topology_reasons(layout: Layout, gpus_per_node: int, nodes: int, intra_link: Link, gpu: GPU | None) -> list[str]:
    tp = layout.tp
    reasons = []
    if tp > gpus_per_node:
        reasons.append(
            f"TP{tp} would span {math.ceil(tp / gpus_per_node)} nodes: its 2 all-reduces per layer "
            f"would cross the network; keep TP within the {gpus_per_node} GPUs of a node"
        )
    elif nodes > 1 and gpus_per_node % tp:
        reasons.append(f"TP{tp} groups would straddle nodes of {gpus_per_node} GPUs")
    domain = gpu.nvlink.domain_gpus if gpu is not None and gpu.nvlink is not None else BRIDGE_DOMAIN_GPUS
    if intra_link.id == "nvlink-bridge" and tp > domain:
        reasons.append(
            f"an NVLink bridge joins {domain} GPUs; TP{tp} would run its all-reduces over PCIe "
            "between the bridged groups"
        )
    return reasons


def _expert_reasons(model: ModelArch, layout: Layout) -> list[str]:
    if layout.ep == 1:
        return []
    if not model.is_moe:
        return [f"EP{layout.ep} needs a mixture-of-experts model"]
    reasons = []
    if layout.ep != layout.tp * layout.dp:
        reasons.append(f"EP must equal TP × DP = {layout.tp * layout.dp} (vLLM --enable-expert-parallel)")
    experts = model.num_experts
    if experts % layout.ep:
        reasons.append(f"{experts} experts are not divisible by EP{layout.ep}")
    return reasons


def split_reasons(model: ModelArch, *, tp: int, pp: int, ep: int, weights_block_size: int | None) -> list[str]:
    """Why the model itself cannot be split this way (heads, FP8 blocks, layers), as :func:`check_layout` says."""
    reasons = _head_reasons(model, tp) + _block_reasons(model, tp, ep, weights_block_size)
    if model.num_layers < pp:
        reasons.append(f"{model.num_layers} layers are fewer than the {pp} pipeline stages")
    return reasons


def topology_reasons(layout: Layout, *, gpus_per_node: int, nodes: int, intra_link: Link, gpu: GPU | None,
                     ) -> list[str]:
    """Why the GPUs and links cannot hold this layout's TP groups, as :func:`check_layout` says."""
    return _topology_reasons(layout, gpus_per_node, nodes, intra_link, gpu)


def check_layout(
    model: ModelArch,
    layout: Layout,
    *,
    gpus_per_node: int,
    nodes: int,
    intra_link: Link,
    weights_block_size: int | None,
    gpu: GPU | None = None,
) -> LayoutCheck:
    """Every reason an engine (vLLM's rules) would refuse this layout; valid when there is none."""
    reasons = _head_reasons(model, layout.tp)
    reasons += _block_reasons(model, layout.tp, layout.ep, weights_block_size)
    if model.num_layers < layout.pp:
        reasons.append(f"{model.num_layers} layers are fewer than the {layout.pp} pipeline stages")
    reasons += _topology_reasons(layout, gpus_per_node, nodes, intra_link, gpu)
    reasons += _expert_reasons(model, layout)
    return LayoutCheck(layout=layout, valid=not reasons, reasons=tuple(reasons))


def enumerate_layouts(
    model: ModelArch, *, gpus_per_node: int, nodes: int, gpu: GPU, intra_link: Link, weights_block_size: int | None
) -> list[LayoutCheck]:
    """Every (TP, PP, DP, EP) whose GPU count divides the GPUs given, checked.

    Layouts using fewer GPUs than given are DP subsets: ``gpus_used`` divides the total, so the
    rest could run more replicas. MoE models get each layout with and without expert
    parallelism (EP = TP × DP, as vLLM's ``--enable-expert-parallel``). ``gpu`` gives the size of
    an NVLink-bridge domain (2 cards, 4 for H200 NVL).
    """
    total = gpus_per_node * nodes
    checks = []
    for used in _divisors(total):
        for tp in _divisors(used):
            for pp in _divisors(used // tp):
                dp = used // (tp * pp)
                eps = [1, tp * dp] if model.is_moe and tp * dp > 1 else [1]
                for ep in eps:
                    layout = Layout(tp=tp, pp=pp, dp=dp, ep=ep)
                    checks.append(
                        check_layout(
                            model,
                            layout,
                            gpus_per_node=gpus_per_node,
                            nodes=nodes,
                            intra_link=intra_link,
                            weights_block_size=weights_block_size,
                            gpu=gpu,
                        )
                    )
    return checks


def check_slo(
    performance: Performance | None, *, ttft_target_ms: float | None, itl_target_ms: float | None
) -> tuple[bool, tuple[str, ...]]:
    """Whether predicted TTFT and ITL meet the targets, and each miss in numbers."""
    if performance is None:
        return False, ("no performance estimate (the layout does not fit)",)
    misses = []
    if ttft_target_ms is not None and performance.ttft_ms > ttft_target_ms:
        misses.append(f"TTFT {performance.ttft_ms:.0f} ms > target {ttft_target_ms:g} ms")
    if itl_target_ms is not None and performance.itl_ms > itl_target_ms:
        misses.append(f"ITL {performance.itl_ms:.1f} ms > target {itl_target_ms:g} ms")
    return not misses, tuple(misses)


def rounded_score(value: float) -> float:
    """The score to compare: ``TIE_SIGNIFICANT_DIGITS`` significant digits, so near-equal scores tie."""
    if value == 0 or not math.isfinite(value):
        return value
    return round(value, TIE_SIGNIFICANT_DIGITS - 1 - math.floor(math.log10(abs(value))))


def _goal_score(perf: Performance, goal: Goal) -> tuple[float, ...]:
    if goal == "latency":
        return (rounded_score(perf.itl_ms), rounded_score(perf.ttft_ms))
    if goal == "throughput":
        return (-rounded_score(perf.tokens_per_s),)
    return (-rounded_score(perf.tokens_per_s_per_gpu),)


def _sort_key(e: LayoutEvaluation, goal: Goal, slo: tuple[bool, tuple[str, ...]]) -> tuple[object, ...]:
    ties = (e.layout.gpus_used, e.layout.tp, e.layout.pp, e.layout.ep)
    if not e.fits or e.performance is None:
        return (1, 0, (float(e.shortfall_bytes),), ties)
    return (0, 0 if slo[0] else 1, _goal_score(e.performance, goal), ties)


def rank_layouts(
    evaluations: Iterable[LayoutEvaluation],
    *,
    goal: Goal,
    ttft_target_ms: float | None,
    itl_target_ms: float | None,
    rejected: Sequence[LayoutCheck] = (),
) -> SearchResult:
    """Order layouts: fitting ones first, then those meeting the SLO, then by the goal.

    Goals: ``latency`` lowest ITL then TTFT; ``throughput`` most tokens/s in total;
    ``cost`` most tokens/s per GPU used. Scores equal to 3 significant digits tie and go to
    fewer GPUs, then smaller TP. The SLO is judged here from each performance and the
    targets given (:func:`check_slo`); the evaluations are returned as given (same objects).
    """
    items = list(evaluations)
    slos = {id(e): check_slo(e.performance, ttft_target_ms=ttft_target_ms, itl_target_ms=itl_target_ms) for e in items}
    ranked = tuple(sorted(items, key=lambda e: _sort_key(e, goal, slos[id(e)])))
    best = ranked[0] if ranked else None
    losers = tuple(
        Alternative(e.layout.label(), loss_reason(e, best, goal, slos[id(e)], slos[id(best)]))
        for e in ranked[1:]
        if best is not None
    )
    invalid = tuple(c for c in rejected if not c.valid)
    return SearchResult(best=best, ranked=ranked, rejected=invalid, losers=losers)


def loss_reason(
    loser: LayoutEvaluation,
    best: LayoutEvaluation,
    goal: Goal,
    loser_slo: tuple[bool, tuple[str, ...]],
    best_slo: tuple[bool, tuple[str, ...]],
) -> str:
    """Why ``loser`` ranks below ``best``, in numbers."""
    name = best.layout.label()
    if not loser.fits or loser.performance is None:
        short = loser.shortfall_bytes / GIB
        return f"does not fit: {short:.1f} GiB short per GPU for the longest sequence"
    lp, bp = loser.performance, best.performance
    if bp is None:
        return "ranked after the winner"
    if best_slo[0] and not loser_slo[0]:
        return f"misses the SLO ({'; '.join(loser_slo[1])}) which {name} meets"
    metric = _metric_sentence(lp, bp, goal, name)
    if _goal_score(lp, goal) == _goal_score(bp, goal):
        return f"{metric}: a tie, and {name} uses {_fewer(loser.layout, best.layout)}"
    cause = _biggest_gap(lp.step_breakdown, bp.step_breakdown)
    return f"{metric}{'; ' + cause if cause else ''}"


def _metric_sentence(lp: Performance, bp: Performance, goal: Goal, name: str) -> str:
    if goal == "latency":
        return f"ITL {lp.itl_ms:.1f} ms vs {bp.itl_ms:.1f} ms for {name} (TTFT {lp.ttft_ms:.0f} vs {bp.ttft_ms:.0f} ms)"
    if goal == "throughput":
        return f"{format_number(round(lp.tokens_per_s))} tokens/s vs {format_number(round(bp.tokens_per_s))} for {name}"
    return f"{lp.tokens_per_s_per_gpu:.0f} tokens/s per GPU vs {bp.tokens_per_s_per_gpu:.0f} for {name}"


def _fewer(loser: Layout, best: Layout) -> str:
    if best.gpus_used < loser.gpus_used:
        return f"fewer GPUs ({best.gpus_used} vs {loser.gpus_used})"
    if best.tp < loser.tp:
        return f"a smaller TP ({best.tp} vs {loser.tp})"
    return "an equal or simpler layout"


def _biggest_gap(loser: Sequence[Quantity], best: Sequence[Quantity]) -> str:
    """The per-step time term (unit ``ms``) where the loser spends the most more than the winner."""
    best_ms = {q.label: q.value for q in best if q.unit == "ms"}
    gaps = [(q.value - best_ms.get(q.label, 0.0), q) for q in loser if q.unit == "ms" and q.label.startswith("step:")]
    if not gaps:
        return ""
    gap, q = max(gaps, key=lambda item: item[0])
    if gap <= 0:
        return ""
    label = q.label.removeprefix("step: ")
    return f"{label} {q.value:.2f} ms per step vs {best_ms.get(q.label, 0.0):.2f} ms"
