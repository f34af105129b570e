"""Dropping a ``[plan]`` pin, as a fix for a pinned plan that misses its SLO.

A pin restricts the search (the layout, the precision) or overrides a knob (max_num_seqs, the token budget,
the memory fraction, max_model_len). When the pinned plan misses, the spec without that one pin (the others
kept) is searched as any fix is, and offered as ``remove [plan].max_num_seqs = 8 (deployc would choose 128)``
when deployc's own choice differs from the pin: 128 users behind 8 pinned slots queued for 31 s (TTFT p99
31,278 ms against 3,000 on one H100) while the fixes offered were more GPUs and fewer users, never the pin
(new-user trial). The layout keys are one pin (one choice: TP × PP × DP × EP); the backend pin is not dropped
here (the fixes are planned on the pinned backend's own models).
"""

from __future__ import annotations

from collections.abc import Iterator

from attrs import evolve, frozen

from deployc.planner.decisions import Scalar
from deployc.planner.evaluate import PLANNING_TOKEN_BUDGET, Candidate
from deployc.planner.load import Served
from deployc.planner.models import BackendModels
from deployc.planner.pins import LAYOUT_KEYS, pin_items, pins_text, toml_value
from deployc.planner.precision import kv_dtype_candidates, weight_candidates
from deployc.planner.search import Search

# The pins a fix may drop, each group at once (the layout keys describe one layout).
PIN_GROUPS: tuple[tuple[str, ...], ...] = (
    LAYOUT_KEYS, ("max_num_seqs",), ("max_num_batched_tokens",), ("kv_cache_dtype",), ("quantization",),
    ("memory_fraction",), ("max_model_len",))


@frozen(kw_only=True)
class Unpinned:
    """The plan's candidate with one pin group dropped from the spec."""

    pins: dict[str, Scalar]  # the pins dropped, as the spec gives them
    candidate: Candidate

    def label(self, own: str) -> str:
        """``remove [plan].max_num_seqs = 8 (deployc would choose 128)``."""
        return f"remove {pins_text(self.pins)} (deployc would choose {own})"

    def would_choose(self, search: Search, served: Served | None) -> str | None:
        """What deployc chooses for the dropped pins in the fix's search, as the spec would write it; None when it
        chooses the pinned values (the pin does not bind: dropping it changes nothing) or nothing fits."""
        chosen = search.chosen()
        if chosen is None or served is None:
            return None
        layout, knobs, c = chosen.evaluation.layout, served.knobs, search.candidate
        own: dict[str, Scalar] = {
            "tp": layout.tp, "pp": layout.pp, "dp": layout.dp, "ep": layout.ep,
            "max_num_seqs": int(knobs.max_num_seqs.value), "max_num_batched_tokens": int(knobs.token_budget.value),
            "kv_cache_dtype": c.kv_dtype, "quantization": c.weights.weights_format,
            "memory_fraction": chosen.memory.memory_fraction, "max_model_len": knobs.context.max_model_len}
        if all(own[key] == value for key, value in self.pins.items()):
            return None
        if set(self.pins) <= set(LAYOUT_KEYS):
            return layout.label()
        return ", ".join(toml_value(own[key]) if len(self.pins) == 1 else f"{key} = {toml_value(own[key])}"
                         for key in self.pins)


def unpinned_candidates(c: Candidate, models: BackendModels) -> Iterator[Unpinned]:
    """For each pin group the spec gives, the candidate planned without it: the spec's other pins kept, the
    precision (when a precision pin is dropped) the first the planner's order gives that the backend runs."""
    spec = c.target.spec
    given = pin_items(spec.plan)
    for group in PIN_GROUPS:
        dropped = {key: given[key] for key in group if key in given}
        if not dropped:
            continue
        free = evolve(spec, plan=evolve(spec.plan, **dict.fromkeys(dropped)))
        candidate = evolve(c, target=evolve(c.target, spec=free))
        if "max_num_batched_tokens" in dropped:
            candidate = evolve(candidate, max_num_batched_tokens=PLANNING_TOKEN_BUDGET, budget_cap=None)
        if {"kv_cache_dtype", "quantization"} & set(dropped):
            precise = _first_precision(candidate, models)
            if precise is None:
                continue
            candidate = precise
        yield Unpinned(pins=dropped, candidate=candidate)


def _first_precision(c: Candidate, models: BackendModels) -> Candidate | None:
    """The candidate at the first weights format and KV dtype the spec allows that the backend runs (as
    ``planner.search_pool`` tries them; the FP8 KV cache for the load is decided after the search)."""
    target = c.target
    for weights in weight_candidates(target.spec, target.model, target.gpu, c.dtype):
        for kv_dtype in kv_dtype_candidates(target.spec, c.dtype, target.gpu):
            verdict = models.capability(target, weights.weights_format, kv_dtype)
            if verdict.supported:
                return evolve(c, weights=weights, kv_dtype=kv_dtype, kernel=verdict.kernel, flow=verdict.flow,
                              kv_reason=None)
    return None
