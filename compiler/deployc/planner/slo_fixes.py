"""Ranked fixes for a pool that fits but does not serve its traffic at the SLO: each one re-simulated.

Cheapest first: FP8 KV cache, FP8 weights, more GPUs of the same type (doubling, up to
``MAX_GPUS_TRIED``, across nodes only where a network is given), then the load the current GPUs
do serve (halving the users or the rate). Every outcome is the best layout of a new search, with
its simulated figures: a fix that does not reach the SLO says by how much it still misses.

Each fix is first screened (a quick search: fewer layouts, ``QUICK_REQUESTS`` per replica); one whose
screen serves or misses by less than ``CONFIRM_MARGIN`` is searched again in full and its winner
simulated as a plan simulates it (``SIMULATED_REQUESTS``), and that verdict is the one given: the
figures a user sees after applying the fix. A 200-request p99 is about the second-worst request: a screen alone once
said "serves (TTFT p99 9,719 ms)" of a load whose full simulation gives 12,067 ms against 10,000.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from attrs import evolve

from deployc.planner.confirm import simulated_in_full
from deployc.planner.kvload import searched_for_load
from deployc.planner.models import BackendModels
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
    less than the margin, the full search's winner simulated as the plan would."""
    screened = searched_for_load(evolve(candidate, quick=True), models, searcher)
    served = best_served(screened)
    if served is None or miss_ratio(served.result, served.verdict) >= CONFIRM_MARGIN:
        return screened, served
    full = searched_for_load(evolve(candidate, quick=False), models, searcher)
    if full.chosen() is None:
        return full, None
    return full, simulated_in_full(full, models)[2]


def _outcome(search: Search, served: Served | None, now: tuple[int, float] = NO_PLAN,
             ) -> tuple[bool, str, bool, tuple[int, float]]:
    """Whether the fix serves, what it gives, whether it helps (it serves, or misses less badly than ``now``, the
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
    return False, f"still {verdict.summary(r)} ({text})", rank < now, rank


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

    ``now``: how badly the plan misses (``miss_rank``). A fix that misses as badly or worse is no fix
    (FP8 weights that queue longer, more GPUs laid out worse): it is left out of the list; one that turns
    an overloaded pool into one that keeps up but misses a latency target helps.
    """
    c = search.candidate
    tried: list[tuple[bool, tuple[int, float], int, str]] = []

    def attempt(rank: int, label: str, candidate: Candidate) -> bool:
        serves, text, helps, missed = _outcome(*confirmed(candidate, models, searcher), now)
        if helps:
            tried.append((not serves, missed, rank, f"{label}: {text}"))
        return serves

    supported = models.capability
    if c.kv_dtype != "fp8" and supported(c.target, c.weights.weights_format, "fp8").supported:
        attempt(0, 'kv_cache_dtype = "fp8"', evolve(c, kv_dtype="fp8"))
    if c.weights.weights_format in ("bf16", "fp16") and supported(c.target, "fp8", c.kv_dtype).supported:
        attempt(1, 'quantization = "fp8"', evolve(c, weights=WeightChoice(
            weights_format="fp8", quantization_flag="fp8", from_checkpoint=False)))
    for per_node, nodes in _more_gpus(c):
        label = f"{per_node * nodes} × {c.target.gpu.name}" + (f" ({nodes} nodes)" if nodes > 1 else "")
        if attempt(2, label, evolve(c, gpus_per_node=per_node, nodes=nodes)):
            break
    shape = c.shape
    for halving in range(1, MAX_LOAD_HALVINGS + 1):
        factor = 0.5 ** halving
        if shape.concurrency is not None:
            users = max(int(shape.concurrency * factor), 1)
            smaller, label = evolve(shape, concurrency=float(users)), f"{users:g} concurrent users"
        else:
            rate = (shape.request_rate_per_s or 0.0) * factor
            smaller, label = evolve(shape, request_rate_per_s=rate), f"{rate:.3g} requests/s"
        if attempt(3, f"a load of {label} on these GPUs", evolve(c, shape=smaller)):
            break
        if shape.concurrency is not None and smaller.concurrency == 1:
            break
    ordered = sorted(tried)
    return [text for *_, text in ordered[:4]]
