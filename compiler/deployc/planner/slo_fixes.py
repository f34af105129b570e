"""Ranked fixes for a pool that fits but does not serve its traffic at the SLO: each one re-simulated.

Cheapest first: dropping a ``[plan]`` pin that binds (``pin_fixes``), FP8 KV cache, FP8 weights, more GPUs of
the same type (doubling, up to ``MAX_GPUS_TRIED``, across nodes only where a network is given), then the load the
current GPUs do serve (halving the users or the rate). Every outcome is the best layout of a new search, with
its simulated figures: a fix that does not reach the SLO says by how much it still misses.

Each fix is first screened (a quick search: fewer layouts, ``QUICK_REQUESTS`` per replica); one whose
screen serves or misses by less than ``CONFIRM_MARGIN`` is searched again in full and its winner
simulated and confirmed as a plan does (``SIMULATED_REQUESTS``), and that verdict is the one given: the
figures a user sees after applying the fix. A 200-request p99 is about the second-worst request: a screen alone once
said "serves (TTFT p99 9,719 ms)" of a load whose full simulation gives 12,067 ms against 10,000.

A fix that serves is always listed; one that still misses only when it misses clearly less than the plan
(``clearly_better``: a better kind of miss, or a worst simulated/target ratio at least a tenth lower), and a
lighter load is not tried when no layout on these GPUs decodes even one request within the per-token target.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from attrs import evolve

from deployc.planner.confirm import confirmed as confirmed_in_full
from deployc.planner.evaluate import PLANNING_TOKEN_BUDGET, perf_inputs
from deployc.planner.kvload import clearly_better, searched_for_load
from deployc.planner.load import itl_target, single_step_ms
from deployc.planner.models import BackendModels
from deployc.planner.pin_fixes import unpinned_candidates
from deployc.planner.precision import WeightChoice
from deployc.planner.serving.verdict import miss_rank, miss_ratio

if TYPE_CHECKING:
    from deployc.planner.evaluate import Candidate
    from deployc.planner.fixes import Searcher
    from deployc.planner.load import Served
    from deployc.planner.search import Search

MAX_GPUS_TRIED = 32
MAX_LOAD_HALVINGS = 4
CONFIRM_MARGIN = 1.5  # as `deployc size`'s screen margin: closer than this to serving, the full search decides
NO_PLAN = (4, math.inf)  # a miss_rank worse than any plan's: every fix that fits helps


def best_served(search: Search) -> Served | None:
    """The winning layout's simulation, if it fits."""
    best = search.result.best
    if best is None or not best.fits:
        return None
    return search.served.get(best.layout)


def confirmed(candidate: Candidate, models: BackendModels, searcher: Searcher) -> tuple[Search, Served | None]:
    """The fix's search and its winner's simulation: the screen's, or, when the screen serves or misses by
    less than the margin, the full search's winner simulated and confirmed as the plan does (a winner that misses
    in full gives way to the next that serves, e.g. its replica on every GPU): the plan of the fixed spec."""
    screened = searched_for_load(evolve(candidate, quick=True), models, searcher)
    served = best_served(screened)
    if served is None or miss_ratio(served.result, served.verdict) >= CONFIRM_MARGIN:
        return screened, served
    full = searched_for_load(evolve(candidate, quick=False), models, searcher)
    if full.chosen() is None:
        return full, None
    # As finish_pool confirms a plan's winner: simulated_in_full alone kept the 8 × L4 fix at TP2×DP2 (the 4-GPU
    # fix's layout and figures, a miss) where planning 8 × L4 promotes TP2×DP4, which serves.
    moved, (_, _, served_in_full) = confirmed_in_full(full, models)
    return moved, served_in_full


def _outcome(search: Search, served: Served | None, now: tuple[int, float] = NO_PLAN,
             ) -> tuple[bool, str, bool, tuple[int, float]]:
    """Whether the fix serves, what it gives, whether it helps (it serves, or misses clearly less than ``now``, the
    current plan's ``miss_rank``), and its own ``miss_rank``."""
    best = search.result.best
    if served is None or best is None:
        return False, "does not fit", False, NO_PLAN
    r, verdict = served.result, served.verdict
    text = (f"{best.layout.label()}: TTFT p99 {r.ttft_ms.p99:,.0f} ms, ITL p99 {r.itl_ms.p99:.1f} ms, "
            f"{r.output_tokens_per_s:,.0f} output tokens/s")
    rank = miss_rank(r, verdict)
    if verdict.serves:
        return True, f"serves ({text})", True, rank
    return False, f"still {verdict.summary(r)} ({text})", helps(rank, now), rank


def helps(rank: tuple[int, float], now: tuple[int, float]) -> bool:
    """Whether a fix that still misses (``miss_rank`` ``rank``) is worth listing against the plan's ``now``: it
    misses clearly less (``kvload.clearly_better``; ITL p99 117 -> 116 ms is no fix). Refused requests have no
    ratio to compare: a fix that still refuses some is no fix."""
    if rank[0] == now[0] and math.isinf(now[1]):
        return False
    return clearly_better(rank, now)


def one_request_misses(search: Search) -> bool:
    """Whether no fitting layout on these GPUs decodes even one request within the per-token target (ITL, else
    TPOT): then no lighter load meets it, and the load fixes are not tried. The decode step of one sequence at the
    mean context, as the max_num_seqs rule prices it (load.py)."""
    c = search.candidate
    target_ms, _ = itl_target(c.target.spec.slo)
    fitting = [e for e in search.evaluated if e.evaluation.fits]
    if target_ms is None or not fitting:
        return False
    context = c.shape.prompt.mean + c.shape.output.mean / 2
    fastest_ms = min(single_step_ms(perf_inputs(c, e.evaluation.layout, e.weights, e.memory.kv_bytes_per_token, 1),
                                    context) for e in fitting)
    return fastest_ms > target_ms


def _more_gpus(c: Candidate) -> list[tuple[int, int]]:
    sizes, per_node, nodes = [], c.gpus_per_node, c.nodes
    can_span = c.target.network is not None
    while per_node * nodes < MAX_GPUS_TRIED:
        if per_node < 8:
            per_node *= 2
        elif can_span:
            nodes *= 2
        else:
            break
        sizes.append((per_node, nodes))
    return sizes


def slo_fixes(search: Search, models: BackendModels, searcher: Searcher, now: tuple[int, float] = NO_PLAN,
              ) -> list[str]:
    """Each applicable fix with its simulated outcome; the ones that serve come first, cheapest first, then the
    ones that miss, closest to serving first.

    ``now``: how badly the plan misses (``miss_rank``). A fix that misses about as badly or worse is no fix
    (FP8 weights that queue longer, more GPUs laid out worse, ITL p99 117 -> 116 ms): it is left out of the list
    (``helps``); one that turns an overloaded pool into one that keeps up but misses a latency target helps.
    """
    # A plan that fits only with smaller steps carries their cap (budget_cap): a fix starts from the spec's budget,
    # as planning the fixed spec does (``searcher`` falls back to smaller steps only where nothing fits). SGLang's BF16
    # Llama-3.1-8B fits one L4 only at 2,048: its FP8-weights fix kept that cap and said "serves (TTFT p99 541 ms)",
    # where planning FP8 weights (which fit 8,192-token steps) misses TTFT p99 by seconds.
    c = evolve(search.candidate, budget_cap=None, max_num_batched_tokens=(
        search.candidate.target.spec.plan.max_num_batched_tokens or PLANNING_TOKEN_BUDGET))
    tried: list[tuple[bool, tuple[int, float], int, str]] = []

    def record(rank: int, label: str, fixed: Search, served: Served | None) -> bool:
        serves, text, helped, missed = _outcome(fixed, served, now)
        if helped:
            tried.append((not serves, missed, rank, f"{label}: {text}"))
        return serves

    def attempt(rank: int, label: str, candidate: Candidate) -> bool:
        return record(rank, label, *confirmed(candidate, models, searcher))

    # The precisions the dropped pins were planned at: a pinned quantization = "bf16" dropped is FP8 weights on an
    # L4, the same plan as the FP8-weights fix, offered once (as the pin dropped).
    covered: set[tuple[str, str]] = set()
    for unpinned in unpinned_candidates(c, models):
        fixed, served = confirmed(unpinned.candidate, models, searcher)
        own = unpinned.would_choose(fixed, served)
        if own is not None:  # the pin binds: without it deployc chooses otherwise
            record(0, unpinned.label(own), fixed, served)
            covered |= {(x.weights.weights_format, x.kv_dtype) for x in (unpinned.candidate, fixed.candidate)}
    supported = models.capability
    if (c.kv_dtype != "fp8" and supported(c.target, c.weights.weights_format, "fp8").supported
            and (c.weights.weights_format, "fp8") not in covered):
        attempt(1, 'kv_cache_dtype = "fp8"', evolve(c, kv_dtype="fp8"))
    if (c.weights.weights_format in ("bf16", "fp16") and supported(c.target, "fp8", c.kv_dtype).supported
            and ("fp8", c.kv_dtype) not in covered):
        attempt(2, 'quantization = "fp8"', evolve(c, weights=WeightChoice(
            weights_format="fp8", quantization_flag="fp8", from_checkpoint=False)))
    for per_node, nodes in _more_gpus(c):
        label = f"{per_node * nodes} × {c.target.gpu.name}" + (f" ({nodes} nodes)" if nodes > 1 else "")
        if attempt(3, label, evolve(c, gpus_per_node=per_node, nodes=nodes)):
            break
    shape = c.shape
    halvings = 0 if one_request_misses(search) else MAX_LOAD_HALVINGS
    for halving in range(1, halvings + 1):
        factor = 0.5 ** halving
        if shape.concurrency is not None:
            users = max(int(shape.concurrency * factor), 1)
            smaller, label = evolve(shape, concurrency=float(users)), f"{users:g} concurrent users"
        else:
            rate = (shape.request_rate_per_s or 0.0) * factor
            smaller, label = evolve(shape, request_rate_per_s=rate), f"{rate:.3g} requests/s"
        if attempt(4, f"a load of {label} on these GPUs", evolve(c, shape=smaller)):
            break
        if shape.concurrency is not None and smaller.concurrency == 1:
            break
    ordered = sorted(tried)
    return [text for *_, text in ordered[:4]]
