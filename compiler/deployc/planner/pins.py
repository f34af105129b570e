"""Pinned decisions (``[plan]``): keep the spec's value, and say what deployc would have chosen and why.

Knob pins are applied where each knob is decided (:func:`pinned`, one call per site in
:mod:`deployc.planner.finish`), against the choice the planner makes at that site for the same
layout and the other pins. Layout, precision and backend pins restrict the search; their Decisions are explained
against a plan made without any pin (:func:`explain_pins`), computed only when pins exist.
A pinned plan that cannot be served fails with DPC307 and deployc's own choice as the fix.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable

from attrs import evolve

from deployc.diagnostics import Diagnostic, PlanError
from deployc.planner.decisions import Decision, Scalar
from deployc.planner.evaluate import Evaluated
from deployc.planner.knobs import ContextChoice
from deployc.planner.parallel import LayoutCheck
from deployc.planner.plan import Plan
from deployc.planner.types import Layout, PoolPlan
from deployc.spec.model import PlanSection
from deployc.units import GIB

LAYOUT_KEYS = ("tp", "pp", "dp", "ep")
PIN_KEYS = (*LAYOUT_KEYS, "quantization", "kv_cache_dtype", "max_num_seqs", "max_num_batched_tokens",
            "memory_fraction", "max_model_len", "backend")
# What each engine's memory fraction is a fraction of (the kinds of RuntimeOverheads.memory_fraction_kind).
FRACTION_OF = {"total": "the GPU's total memory", "weights_and_kv": "total memory, for weights and the KV pool",
               "free_after_load": "the memory free after loading, for the KV cache"}
# Which pinned keys explain which planner decision (the decision ids of finish.py and planner.py).
STRUCTURAL_DECISIONS = {"parallelism": LAYOUT_KEYS, "quantization": ("quantization",),
                        "kv_cache_dtype": ("kv_cache_dtype",), "backend": ("backend",)}


def pin_items(pins: PlanSection) -> dict[str, Scalar]:
    """The pinned keys and their values, in the order the spec language lists them."""
    values = {key: getattr(pins, key) for key in PIN_KEYS}
    return {key: value for key, value in values.items() if value is not None}


def toml_value(value: Scalar) -> str:
    """A value as it is written in the spec: strings in double quotes, numbers plain."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def pins_text(items: dict[str, Scalar]) -> str:
    """``[plan].tp = 2, [plan].pp = 1``."""
    return ", ".join(f"[plan].{key} = {toml_value(value)}" for key, value in items.items())


def _because(own: Scalar, pinned_value: Scalar, reason: str) -> str:
    if own == pinned_value:
        return f"deployc would choose the same: {reason}"
    return f"deployc would choose {own}: {reason}"


def pinned(decision: Decision, pinned_value: Scalar | None, key: str, *, would_choose: Scalar | None = None,
           ) -> Decision:
    """The decision with the spec's pinned value, its reason saying what deployc would choose and why.

    ``decision`` is what the planner chose at this site; ``would_choose`` overrides its value when the
    decision was computed with the pin already applied (the memory fraction). Unpinned: unchanged.
    """
    if pinned_value is None:
        return decision
    own = decision.value if would_choose is None else would_choose
    reason = f"pinned by the spec ({pins_text({key: pinned_value})}); {_because(own, pinned_value, decision.reason)}"
    return evolve(decision, value=pinned_value, reason=reason)


def pin_context(context: ContextChoice, pinned_value: int | None) -> ContextChoice:
    """The pinned max model length (the layout search already kept only layouts whose KV cache holds it)."""
    if pinned_value is None:
        return context
    return ContextChoice(max_model_len=pinned_value, decision=pinned(context.decision, pinned_value, "max_model_len"),
                         capped=False)


def pinned_layouts(pins: PlanSection, checks: Iterable[LayoutCheck], check: Callable[[Layout], LayoutCheck],
                   is_moe: bool) -> list[LayoutCheck]:
    """The enumerated layouts the layout pins allow; a fully pinned layout is checked even when not enumerated."""
    given = {k: v for k, v in pin_items(pins).items() if k in LAYOUT_KEYS}
    matching = [c for c in checks if all(getattr(c.layout, k) == v for k, v in given.items())]
    if matching or pins.tp is None or pins.pp is None or pins.dp is None:
        return matching
    # tp × pp × dp not dividing the GPUs (some left idle) is never enumerated: check it as pinned.
    eps = [pins.ep] if pins.ep is not None else [1, pins.tp * pins.dp] if is_moe and pins.tp * pins.dp > 1 else [1]
    return [check(Layout(tp=pins.tp, pp=pins.pp, dp=pins.dp, ep=ep)) for ep in eps]


def fraction_overcommit(closest: Evaluated, pinned_fraction: float | None, backend: str, gpu_name: str,
                        spec_file: str) -> Diagnostic | None:
    """DPC307 when a pinned memory fraction leaves the GPU over-committed (what the engine needs outside it)."""
    m = closest.memory
    over = -(m.per_gpu.free_bytes + m.per_gpu.cuda_graph_bytes)
    if pinned_fraction is None or over <= 0:
        return None
    return Diagnostic(
        rule="DPC307", file=spec_file, key_path="plan.memory_fraction", value=f"{m.memory_fraction:g}",
        message=f"memory_fraction {m.memory_fraction:g} over-commits each {gpu_name} by {over / GIB:.2f} GiB with "
                f"{closest.evaluation.layout.label()}: {backend} {m.engine_version} reads it as a share of "
                f"{FRACTION_OF[m.memory_fraction_kind]}, and what it keeps outside that share (activations, the CUDA "
                "context, other processes) no longer fits, even without CUDA graphs",
        hint=f"memory_fraction ≤ {closest.own_memory_fraction:g} (what deployc sets for this layout)")


def _own_values(pool: PoolPlan, backend: str) -> dict[str, Scalar]:
    k, layout = pool.knobs, pool.layout
    return {"tp": layout.tp, "pp": layout.pp, "dp": layout.dp, "ep": layout.ep, "quantization": k.weights_format,
            "kv_cache_dtype": k.kv_cache_dtype, "max_num_seqs": k.max_num_seqs,
            "max_num_batched_tokens": k.max_num_batched_tokens, "memory_fraction": k.memory_fraction,
            "max_model_len": k.max_model_len, "backend": backend}


def own_choice(unpinned: Plan, keys: Iterable[str]) -> str:
    """deployc's own values for the pinned keys, per pool: ``tp = 4, quantization = "fp8"``."""
    parts = []
    for pool in unpinned.pools:
        own = _own_values(pool, unpinned.backend.name)
        values = ", ".join(f"{key} = {toml_value(own[key])}" for key in keys)
        parts.append(f"pool {pool.name}: {values}" if len(unpinned.pools) > 1 else values)
    return "; ".join(parts)


def _structural(decision: Decision, items: dict[str, Scalar], unpinned: Plan | PlanError) -> Decision:
    base = decision.id.rsplit(".", 1)[-1]
    keys = STRUCTURAL_DECISIONS.get(base, ())
    given = {k: items[k] for k in keys if k in items}
    if not given:
        return decision
    if base == "backend" and decision.value != items["backend"]:
        return decision  # the command line's --backend overrides the spec's pin
    if isinstance(unpinned, PlanError):
        because = f"without the pins deployc finds no plan: {unpinned.diagnostics[0].message}"
    else:
        own = unpinned.decision(decision.id) or unpinned.decision(base)
        because = (_because(own.value, decision.value, own.reason) if own is not None else
                   "deployc makes no such decision without the pins")
    return evolve(decision, reason=f"pinned by the spec ({pins_text(given)}); {because}")


def _budget_problems(plan: Plan, items: dict[str, Scalar]) -> list[Diagnostic]:
    out = []
    for pool in plan.pools:
        k = pool.knobs
        if k.max_num_batched_tokens < k.max_num_seqs:
            key = "max_num_batched_tokens" if "max_num_batched_tokens" in items else "max_num_seqs"
            out.append(Diagnostic(
                rule="DPC307", file=plan.target.spec_file, key_path=f"plan.{key}", value=str(items[key]),
                message=f"pool {pool.name}: max_num_batched_tokens {k.max_num_batched_tokens:,} is below max_num_seqs "
                        f"{k.max_num_seqs:,}: each engine step needs a token per running sequence",
                hint=f"pin max_num_batched_tokens ≥ {k.max_num_seqs}, or max_num_seqs ≤ {k.max_num_batched_tokens}"))
    return out


def explain_pins(plan: Plan, unpinned: Plan | PlanError, same_engine: Plan | PlanError | None = None) -> Plan:
    """The pinned plan with each structural pin's Decision explained against deployc's own choice: the backend
    against the plan without pins, the others against ``same_engine`` (the plan with only the backend pinned,
    when it is), else the plan without pins."""
    items = pin_items(plan.target.spec.plan)
    problems = _budget_problems(plan, items)
    if problems:
        raise PlanError(problems)
    others = unpinned if same_engine is None else same_engine
    return evolve(plan, decisions=tuple(
        _structural(d, items, unpinned if d.id.rsplit(".", 1)[-1] == "backend" else others) for d in plan.decisions))


def pinned_failure(error: PlanError, pins: PlanSection, unpinned: Plan | PlanError, spec_file: str) -> PlanError:
    """DPC307: the pinned plan cannot be served; the fix is deployc's own choice for the pinned keys."""
    items = pin_items(pins)
    first = error.diagnostics[0]
    if first.rule == "DPC307":
        message, located = first.message, first
    else:
        message = f"the plan pinned by the spec cannot be served: {first.message}"
        located = Diagnostic(rule="DPC307", message="", key_path="plan", value=pins_text(items))
    if isinstance(unpinned, PlanError):
        hint = f"without the pins deployc finds no plan either: {unpinned.diagnostics[0].message}"
        hint += f"; {first.hint}" if first.hint else ""
    else:
        memory = unpinned.primary.memory
        hint = (f"deployc's own choice for the pinned keys: {own_choice(unpinned, items)} (fits with "
                f"{unpinned.primary.layout.label()}, KV capacity {memory.kv_capacity_tokens:,} tokens per replica)")
        if first.rule == "DPC307" and first.hint:
            hint = f"{first.hint}; {hint}"
    return PlanError([Diagnostic(rule="DPC307", message=message, file=spec_file, key_path=located.key_path,
                                 value=located.value, hint=hint), *error.diagnostics[1:]])
