"""Ranking layouts by how they serve the load: the analytic estimate filters, the simulation decides.

The analytic steady state (``perf.estimate_performance``) orders every valid layout cheaply; the
best ``SIMULATED_LAYOUTS`` of those that fit, the best one using every GPU and the one whose KV
caches hold the most requests (the analytic estimate does not see queues) are simulated with
their own knobs and ranked on simulated figures: layouts that serve the SLO first, then the goal —
latency: the worst simulated/target ratio of the
targets given (else p99 end-to-end latency); throughput: output tokens/s; cost: output tokens/s per GPU (the
price per GPU-hour is the same for every layout of one GPU type, so $ per token follows it) —
near-ties (3 significant digits) going to fewer GPUs. Layouts that serve nothing are ordered by how
far they miss.
"""

from __future__ import annotations

import math

from attrs import evolve

from deployc.planner.decisions import Alternative
from deployc.planner.evaluate import Candidate, Evaluated, memory_at_budget
from deployc.planner.load import RANKING_BUDGETS, Served, load_knobs, screening_active, tune_budget
from deployc.planner.models import BackendModels
from deployc.planner.parallel import LayoutEvaluation, SearchResult, rounded_score
from deployc.planner.serving.simulate import QUICK_REQUESTS, RANKING_REQUESTS
from deployc.planner.serving.verdict import miss_ratio
from deployc.planner.types import Layout

SIMULATED_LAYOUTS = 2
STATUS_ORDER = {"serves": 0, "misses_slo": 1, "overloaded": 2}


# Layouts that all miss rank by how far they miss in steps of a tenth of the target, then by the goal: a 1.215×
# and a 1.222× miss are the same miss, and 129 output tokens/s must not lose to 10 on the difference.
MISS_STEP = 0.1


def miss_step(served: Served) -> float:
    """How far the layout misses, in steps of ``MISS_STEP`` (infinite when the engine refuses requests)."""
    ratio = miss_ratio(served.result, served.verdict)
    return ratio if math.isinf(ratio) else float(round(ratio / MISS_STEP))


def latency_score(served: Served) -> float:
    """The latency goal's score: the worst simulated/target ratio over the targets given, else p99 end-to-end (ms).

    Without targets, end-to-end latency is what a user waits for a whole answer: queueing, prefill
    and every token, so a layout that decodes fast but queues most users does not win.
    """
    checks = served.verdict.checks
    if checks:
        return max(c.simulated_ms / c.target_ms for c in checks)
    return served.result.e2e_ms.p99


def _goal_score(served: Served, goal: str, gpus: int) -> tuple[float, ...]:
    r = served.result
    if goal == "latency":
        return (rounded_score(latency_score(served)), rounded_score(r.e2e_ms.p99))
    if goal == "throughput":
        return (-rounded_score(r.output_tokens_per_s), rounded_score(r.ttft_ms.p99))
    return (-rounded_score(r.output_tokens_per_s / gpus), rounded_score(r.ttft_ms.p99))


def _key(e: LayoutEvaluation, served: Served, goal: str) -> tuple[object, ...]:
    ties = (e.layout.gpus_used, e.layout.tp, e.layout.pp, e.layout.ep)
    status = STATUS_ORDER[served.verdict.status]
    if status:
        return (status, (miss_step(served),), _goal_score(served, goal, e.layout.gpus_used), ties)
    return (status, _goal_score(served, goal, e.layout.gpus_used), ties)


def loss_sentence(loser: Served, best: Served, loser_layout: Layout, best_layout: Layout, goal: str) -> str:
    """Why a simulated layout ranks below the winner, in simulated numbers."""
    name = best_layout.label()
    lv, lr, br = loser.verdict, loser.result, best.result
    if lv.status == "overloaded":
        return f"cannot keep up: {lv.overload_factor:.2f}× over its capacity of {lr.capacity_requests_per_s:.2f} req/s"
    if best.verdict.serves and not lv.serves:
        return f"misses the SLO ({'; '.join(c.sentence() for c in lv.misses())}) which {name} meets"
    if not lv.serves and miss_step(loser) > miss_step(best):
        return f"misses the SLO by more than {name}: {lv.summary(lr).removeprefix('misses the SLO: ')}"
    both = (f"misses the SLO about as much as {name} ({lv.summary(lr).removeprefix('misses the SLO: ')}), and "
            if not lv.serves and not best.verdict.serves else "")
    if goal == "latency":
        return (f"{both}simulated TTFT p99 {lr.ttft_ms.p99:,.0f} ms, ITL p99 {lr.itl_ms.p99:.1f} ms, end-to-end p99 "
                f"{lr.e2e_ms.p99:,.0f} ms vs {br.ttft_ms.p99:,.0f} ms, {br.itl_ms.p99:.1f} ms, {br.e2e_ms.p99:,.0f} ms "
                f"for {name}")
    if goal == "throughput":
        return (f"{both}simulated {lr.output_tokens_per_s:,.0f} output tokens/s vs {br.output_tokens_per_s:,.0f} "
                f"for {name} (TTFT p99 {lr.ttft_ms.p99:,.0f} vs {br.ttft_ms.p99:,.0f} ms)")
    return (f"{both}simulated {lr.output_tokens_per_s / loser_layout.gpus_used:,.0f} output tokens/s per GPU vs "
            f"{br.output_tokens_per_s / best_layout.gpus_used:,.0f} for {name}")


def rank_by_serving(c: Candidate, evaluated: tuple[Evaluated, ...], analytic: SearchResult,
                    backend: BackendModels | None = None) -> tuple[SearchResult, dict[Layout, Served]]:
    """Simulate the analytic front-runners and re-rank them on simulated figures (``backend``: each budget tuned
    with the memory it leaves, :func:`~deployc.planner.evaluate.memory_at_budget`)."""
    by_eval = {id(e.evaluation): e for e in evaluated}
    fitting = [e for e in analytic.ranked if e.fits and e.performance is not None]
    picked = fitting[:1 if c.quick else SIMULATED_LAYOUTS]
    total = c.gpus_per_node * c.nodes
    every_gpu = [e for e in fitting if e.layout.gpus_used == total]
    # The analytic estimate ignores queueing: also simulate the layout that holds the most requests at once.
    roomiest = sorted(fitting, key=lambda e: -e.max_concurrency * e.layout.dp)
    for extra in (every_gpu[:1], roomiest[:1]):
        picked += [e for e in extra if e not in picked]
    if not picked:
        return analytic, {}
    requests = QUICK_REQUESTS if c.quick else RANKING_REQUESTS
    # A quick plan and a screen compare layouts at the step rule's budget; the winner is tuned over the usual ones
    # (bench/size_screen.py: screens ranked so agree with full plans as before, and cost ~7% less of a search).
    budgets = () if c.quick or screening_active() else RANKING_BUDGETS
    def tuned(e: LayoutEvaluation) -> Served:
        at = memory_at_budget(c, e.layout, backend) if backend is not None else None
        return tune_budget(c, by_eval[id(e)], load_knobs(c, by_eval[id(e)]), requests=requests, budgets=budgets,
                           at_budget=at)[1]

    served = {e.layout: tuned(e) for e in picked}
    goal = c.target.spec.slo.goal
    ordered = sorted(picked, key=lambda e: _key(e, served[e.layout], goal))
    if not served[ordered[0].layout].verdict.serves:
        # Nothing simulated serves: the analytic front-runners of the cost and throughput goals are small replicas
        # (queues unseen), and the every-GPU layout is one replica shape. The same replicas, as many as the GPUs
        # hold, share the load: simulate them too (their TTFT queues less) before calling the GPUs too few.
        more = more_replicas(picked, fitting, total)
        served |= {e.layout: tuned(e) for e in more}
        picked += more
        ordered = sorted(picked, key=lambda e: _key(e, served[e.layout], goal))
    marked = [evolve(e, meets_slo=served[e.layout].verdict.serves,
                     slo_misses=tuple(m.sentence() for m in served[e.layout].verdict.misses())) for e in ordered]
    best = marked[0]
    best_served = served[best.layout]
    losers = [Alternative(e.layout.label(), loss_sentence(served[e.layout], best_served, e.layout, best.layout, goal))
              for e in marked[1:]]
    analytic_losers = {str(a.value): a.reason for a in analytic.losers}
    rest = [e for e in analytic.ranked if e not in picked]
    losers += [Alternative(e.layout.label(), _unsimulated(e, analytic_losers.get(e.layout.label()))) for e in rest]
    return SearchResult(best=best, ranked=(*marked, *rest), rejected=analytic.rejected, losers=tuple(losers)), served


def more_replicas(picked: list[LayoutEvaluation], fitting: list[LayoutEvaluation],
                   total: int, flat: int = 2) -> list[LayoutEvaluation]:
    """For each simulated layout that leaves GPUs unused, the fitting layout of the same replica (TP, PP, EP)
    with the most replicas, when it is not simulated already; and the best ``flat`` every-GPU layouts without
    pipeline stages (the analytic estimate rates PP above what the simulation of its micro-batches gives:
    the new-user trial found TP4×DP2 and TP8 serving 1.5-1.7× the requests of the TP2×PP2×DP2 it ranked first).
    Screens and quick plans too: a screen without them once called 8 × A100 (TP4×DP2, ITL p99 7.5× the target)
    a far miss, where the full plan's TP8 serves, and a quick plan's 4 × H100 fix missed where TP4 serves."""
    out = [f for f in fitting if f.layout.gpus_used == total and f.layout.pp == 1 and f not in picked][:flat]
    for e in picked:
        if e.layout.gpus_used >= total:
            continue
        same = [f for f in fitting if (f.layout.tp, f.layout.pp, f.layout.ep) == (e.layout.tp, e.layout.pp, e.layout.ep)
                and f.layout.dp > e.layout.dp]
        widest = max(same, key=lambda f: f.layout.dp, default=None)
        if widest is not None and widest not in picked and widest not in out:
            out.append(widest)
    return out


def _unsimulated(e: LayoutEvaluation, analytic_reason: str | None) -> str:
    """Why a layout the simulation never saw lost: it does not fit, or the analytic estimate ranked it lower."""
    if not e.fits or analytic_reason is None:
        return analytic_reason or "ranked below the simulated layouts"
    return f"not simulated: the analytic estimate ranks it below the simulated layouts ({analytic_reason})"
