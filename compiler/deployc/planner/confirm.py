"""The chosen layout simulated in full (the figures a plan reports), and confirmed there.

Layouts are ranked on ``RANKING_REQUESTS`` per replica; the winner is then simulated with
``SIMULATED_REQUESTS``, at the memory its emitted knobs leave. A winner that served the ranking's
sample but misses in full (a p99 that 400 requests did not reach) gives way to the next layouts that
served the ranking, and to its own replica on every GPU, in turn: the first that serves in full
takes its place, and the decision says why.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from attrs import evolve

from deployc.planner import knobs as rules
from deployc.planner.decisions import Alternative
from deployc.planner.evaluate import Evaluated, evaluate_layout, memory_at_budget, planned_max_num_seqs
from deployc.planner.load import LoadKnobs, Served, at_final_memory, load_knobs, tune_budget
from deployc.planner.load import serve as serve_knobs
from deployc.planner.loadrank import more_replicas
from deployc.planner.parallel import LayoutEvaluation
from deployc.planner.serving.simulate import RANKING_REQUESTS, SIMULATED_REQUESTS
from deployc.planner.serving.verdict import miss_ratio

if TYPE_CHECKING:
    from deployc.planner.models import BackendModels
    from deployc.planner.search import Search

MAX_CONFIRMED = 3  # layouts tried in full after a winner that misses there (each costs a 2,000-request simulation)
NEAR_MISS = 1.25  # a ranked layout missing its targets by less than this may serve in full at a tuned token budget
Full = tuple[Evaluated, LoadKnobs, Served]


def _at_emitted_budget(search: Search, chosen: Evaluated, budget: int, models: BackendModels | None,
                       max_model_len: int | None = None) -> Evaluated:
    """The chosen layout's memory plan redone at the emitted token budget (and ``max_model_len``), when they
    differ from the planning ones.

    The engine profiles (vLLM) or reserves for (SGLang) the budget it is given, not the planning one, and
    checks that one sequence of the emitted max_model_len fits; the re-evaluation is kept when the workload
    still fits.
    """
    c = search.candidate
    length = c.max_model_len_wanted if max_model_len is None else max_model_len
    if models is None or (budget == c.max_num_batched_tokens and length == c.max_model_len_wanted):
        return chosen
    again = evaluate_layout(evolve(c, max_num_batched_tokens=budget, emitted_max_model_len=length),
                            chosen.evaluation.layout, models)
    return again if again.evaluation.fits else chosen


def _context_at(search: Search, chosen: Evaluated, knobs: LoadKnobs) -> LoadKnobs:
    """A max_model_len capped by the KV cache, capped again at the cache the emitted budget leaves."""
    if not knobs.context.capped:
        return knobs
    c, memory = search.candidate, chosen.memory
    spec = c.target.spec
    context = rules.max_model_len(c.shape, spec.model.max_context_tokens, c.target.model.max_position_embeddings,
                                  memory.kv_capacity_tokens, memory.kv_block_size_tokens)
    return evolve(knobs, context=context)


def simulated_in_full(search: Search, models: BackendModels | None = None) -> tuple[Evaluated, LoadKnobs, Served]:
    """The chosen layout at its tuned token budget and that budget's knobs, simulated with
    ``SIMULATED_REQUESTS`` per replica: the figures a plan reports."""
    chosen = search.chosen()
    if chosen is None:
        raise ValueError("simulated_in_full needs a search whose best layout fits")
    c, layout = search.candidate, chosen.evaluation.layout
    ranked = search.served[layout].knobs if layout in search.served else load_knobs(c, chosen)
    at = memory_at_budget(c, layout, models) if models is not None else None
    knobs = tune_budget(c, chosen, ranked, requests=RANKING_REQUESTS, refine=True, at_budget=at)[0]
    budget = int(knobs.token_budget.value)
    chosen = _at_emitted_budget(search, chosen, budget, models)
    knobs = _context_at(search, chosen, knobs)
    chosen = _at_emitted_budget(search, chosen, budget, models, knobs.context.max_model_len)
    knobs = at_final_memory(c, chosen, knobs)
    seqs = int(knobs.max_num_seqs.value)
    if models is not None and seqs != planned_max_num_seqs(c, layout):
        # The engine captures its CUDA graphs for the emitted max_num_seqs: the memory is planned for it (once; the
        # knobs' figures are then this memory's, their values kept).
        emitted = evolve(c, max_num_batched_tokens=budget, emitted_max_model_len=knobs.context.max_model_len,
                         emitted_max_num_seqs=seqs)
        again = evaluate_layout(emitted, layout, models)
        if again.evaluation.fits:
            chosen, knobs = again, at_final_memory(c, again, knobs, keep_values=True)
    return chosen, knobs, serve_knobs(c, chosen, knobs, requests=SIMULATED_REQUESTS)


def confirmed(search: Search, models: BackendModels | None = None) -> tuple[Search, Full]:
    """The search and its winner simulated in full; when the winner served the ranking but misses in full,
    the first of the next ranked layouts that served the ranking (and the winner's replica on every GPU) that
    serves in full becomes the winner."""
    full = simulated_in_full(search, models)
    best = search.result.best
    if best is None or full[2].verdict.serves or not _served_ranking(search, best):
        return search, full
    total = search.candidate.gpus_per_node * search.candidate.nodes
    fitting = [e for e in search.result.ranked if e.fits and e.performance is not None]
    tries = [e for e in search.result.ranked[1:] if _near(search, e)]
    tries += [e for e in more_replicas([best], fitting, total) if e not in tries]
    why = (f"ranked first with {RANKING_REQUESTS} requests per replica, but with {SIMULATED_REQUESTS:,} "
           f"{full[2].verdict.summary(full[2].result)}")
    for e in tries[:MAX_CONFIRMED]:
        moved = _promoted(search, e, Alternative(best.layout.label(), why))
        again = simulated_in_full(moved, models)
        if again[2].verdict.serves:
            return moved, again
    return search, full


def _served_ranking(search: Search, e: LayoutEvaluation) -> bool:
    served = search.served.get(e.layout)
    return served is not None and served.verdict.serves


def _near(search: Search, e: LayoutEvaluation) -> bool:
    """Served the ranking, or missed it by less than ``NEAR_MISS``."""
    served = search.served.get(e.layout)
    return served is not None and miss_ratio(served.result, served.verdict) < NEAR_MISS


def _promoted(search: Search, e: LayoutEvaluation, demoted: Alternative) -> Search:
    """The search with ``e`` as its winner and the former winner first among the losers, with why."""
    r = search.result
    ranked = (e, *(x for x in r.ranked if x is not e))
    losers = (demoted, *(a for a in r.losers if a.value != e.layout.label()))
    return evolve(search, result=evolve(r, best=e, ranked=ranked, losers=losers), displaced=r.best.layout if r.best
                  else None)
