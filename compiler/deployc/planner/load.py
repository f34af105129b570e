"""The knobs that decide how a layout serves its load, and that layout served under the simulation.

``max_num_seqs``: the requests one replica must hold at once — the clients it serves (closed loop)
or the in-flight count a Poisson stream reaches at its 99th percentile (open loop: Little's law
L = λ × latency, plus 2.33 √L, the Poisson p99) — within what the KV cache holds and the largest
batch whose decode step meets the ITL target. ``max_num_batched_tokens``: the largest per-step
budget whose steps, carrying a full prompt chunk beside the decodes and priced by the simulation's
step costs, stay within the ITL target (at the percentile it names); without one, the goal's
default. Then the pool is simulated with exactly these knobs.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

from attrs import evolve, frozen

from deployc.planner import knobs as rules
from deployc.planner.decisions import Alternative, Decision
from deployc.planner.evaluate import Candidate, Evaluated, MemoryAtBudget, perf_inputs
from deployc.planner.perf import PerfInputs, decode_step_time_s, estimate_performance
from deployc.planner.pins import pin_context, pinned
from deployc.planner.serving.engine import EngineConfig
from deployc.planner.serving.result import ServingResult
from deployc.planner.serving.simulate import (
    CLOSED_LOOP_ROUNDS,
    SCREEN_REQUESTS,
    SCREEN_ROUNDS,
    ServingSetup,
    scheduler_as_run,
    simulate_pool,
)
from deployc.planner.serving.stepcost import StepCostModel
from deployc.planner.serving.verdict import ServingVerdict, judge, miss_rank, miss_ratio
from deployc.planner.types import Performance
from deployc.spec.model import SloSection

# A winner whose best budget misses by less than this has the budgets between simulated too: a budget moves TTFT
# against ITL by tens of percent (the trial's L40S case: 1.32× and 1.84× misses at 256 and 2,048, 1,024 serves).
REFINE_BELOW = 2.0
SIMULATED_BUDGETS = (2048, 8192)  # vLLM 0.33's server defaults (A100 and smaller; H100/H200), SERVING-SIM.md
RANKING_BUDGETS = (2048,)  # while comparing layouts; the winner is tuned over SIMULATED_BUDGETS
POISSON_P99_Z = 2.326  # in-flight requests of a Poisson stream reach L + z√L at their 99th percentile
# Open loop: arrivals are not capped by clients, and a request that finds every slot busy waits a whole request
# for one (its TTFT tail). Slots cost little more than CUDA-graph memory, so deployc keeps the engine's room for bursts:
# vLLM 0.33's default max_num_seqs on A100 and smaller GPUs (engine/arg_utils.py get_batch_defaults,
# SERVING-SIM.md), the smallest of the pinned engines' defaults, lowered only where the KV cache or the ITL
# target needs it. (L + z√L alone queued 1% of arrivals for seconds: the new-user trial, session 6.)
OPEN_LOOP_SLOTS = 256


@frozen(kw_only=True)
class LoadKnobs:
    """The load knobs of one layout, their inputs to the step-cost model, and the analytic estimate."""

    context: rules.ContextChoice
    max_num_seqs: Decision
    token_budget: Decision
    prefix_caching: Decision
    inputs: PerfInputs
    performance: Performance
    budget_rule: Decision  # the step rule's budget, before any simulation tuned it (and unpinned)
    cost: StepCostModel  # memoised step costs, shared by every simulation of these knobs
    roomy: bool = False  # an open loop's max_num_seqs offers OPEN_LOOP_SLOTS (the simulation chose it)
    itl_bound: bool = True  # max_num_seqs within the ITL target's batch (False: the simulation chose more, _roomier)
    # What the simulation said of the other max_num_seqs (an open loop's): a sentence and the alternative.
    seqs_trial: tuple[str, tuple[Alternative, ...]] = ("", ())
    trial_requests: int = 0  # requests per replica the seqs_trial simulated


@frozen(kw_only=True)
class Served:
    """A layout simulated with its knobs, and the verdict."""

    knobs: LoadKnobs
    result: ServingResult
    verdict: ServingVerdict


def itl_target(slo: SloSection) -> tuple[float | None, str]:
    """The per-token target the knobs must meet, and its percentile (p99 when both are given).

    An ITL target, else a TPOT target (a request's mean gap cannot meet it if the steps do not).
    """
    targets = slo.itl_ms or slo.tpot_ms
    if targets is None:
        return None, ""
    name = "ITL" if slo.itl_ms is not None else "TPOT"
    tail = targets.tail()
    if tail is None:
        return None, ""
    percentile, target_ms = tail
    return target_ms, f"{name} {percentile}"


def _itl_batch_limit(base: PerfInputs, kv_limit: float, target_ms: float | None, context: float) -> int | None:
    """The largest batch whose plain decode step stays under the ITL target (binary search); 1 when none does."""
    if target_ms is None:
        return None
    lo, hi = 1, max(int(kv_limit), 1)
    if single_step_ms(base, context) > target_ms:
        return 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if decode_step_time_s(base, mid, context)[0] * 1e3 <= target_ms:
            lo = mid
        else:
            hi = mid - 1
    return lo


def single_step_ms(base: PerfInputs, context: float) -> float:
    """One sequence's decode step at ``context`` tokens, in ms (the fastest a per-token target can be met)."""
    return decode_step_time_s(base, 1, context)[0] * 1e3


def demand_per_replica(c: Candidate, chosen: Evaluated) -> tuple[float, str]:
    """Requests one replica must hold at once, and why."""
    shape, dp = c.shape, chosen.evaluation.layout.dp
    if shape.concurrency is not None:
        clients = math.ceil(shape.concurrency / dp)
        return float(clients), f"{clients} clients per replica ({shape.concurrency:g} over {dp} replicas)"
    mean = chosen.concurrency_per_replica
    burst = mean + POISSON_P99_Z * math.sqrt(mean)
    return burst, (f"{mean:.1f} requests in flight per replica on average (Little's law), {burst:.1f} at the "
                   "99th percentile of Poisson arrivals")


def open_loop_slots(c: Candidate) -> int | None:
    """An open loop's room for bursts (``OPEN_LOOP_SLOTS``); None for a closed loop (its clients cap it)."""
    if c.shape.concurrency is not None:
        return None
    return OPEN_LOOP_SLOTS


def load_knobs(c: Candidate, chosen: Evaluated, *, roomy: bool = False, itl_bound: bool = True) -> LoadKnobs:
    """max_model_len, max_num_seqs, the token budget and prefix caching for one layout (``roomy``: an open
    loop's max_num_seqs offers ``OPEN_LOOP_SLOTS``; ``itl_bound=False``: not capped at the ITL target's batch)."""
    spec, shape = c.target.spec, c.shape
    memory, layout = chosen.memory, chosen.evaluation.layout
    context, seqs = _context_choice(c, chosen), _seqs_decision(c, chosen, roomy=roomy, itl_bound=itl_bound)
    mean_context = shape.prompt.mean + shape.output.mean / 2
    target_ms, percentile = itl_target(spec.slo)
    batch = float(seqs.value)
    load = min(max(chosen.concurrency_per_replica, 1.0), batch)
    inputs = perf_inputs(c, layout, chosen.weights, memory.kv_bytes_per_token, load)
    # The step rule prices its steps with the simulation's own step costs (the model these knobs simulate with:
    # step_costs keys it without the budget), so the ms it quotes are what the simulation charges for those steps
    # (priced as a decode step plus a whole prefill pass, they read ~1.7× the simulation's: the new-user trial).
    caching = rules.reuses_prefix(shape, spec.workload.kind, memory.kv_block_size_tokens)
    price = step_costs(inputs if caching else evolve(inputs, prefix_cached_tokens=0.0))
    step = rules.BudgetStep(decodes=int(seqs.value), decode_context=mean_context, prompt_tokens=shape.prompt.mean,
                            cached_tokens=shape.prefix_hit_tokens if caching else 0.0,
                            mixed=c.scheduler.batching == "mixed")
    rule = rules.token_budget(spec.slo.goal, target_ms, percentile, step, price)
    budget = _within_memory(pinned(rule, spec.plan.max_num_batched_tokens, "max_num_batched_tokens"), c)
    if spec.plan.max_num_batched_tokens is None:
        rule = budget
    inputs = evolve(inputs, max_num_batched_tokens=int(budget.value))
    performance = estimate_performance(inputs)
    no_prefix = estimate_performance(evolve(inputs, prefix_cached_tokens=0.0))
    prefix = rules.prefix_caching(shape, spec.workload.kind, memory.kv_block_size_tokens, no_prefix.ttft_ms,
                                  performance.ttft_ms)
    if not prefix.value:
        inputs, performance = evolve(inputs, prefix_cached_tokens=0.0), no_prefix
    return LoadKnobs(context=context, max_num_seqs=seqs, token_budget=budget, prefix_caching=prefix, inputs=inputs,
                     performance=performance, budget_rule=rule, cost=step_costs(inputs), roomy=roomy,
                     itl_bound=itl_bound)


def _context_choice(c: Candidate, chosen: Evaluated) -> rules.ContextChoice:
    """max_model_len for the layout's KV cache."""
    spec, memory = c.target.spec, chosen.memory
    return pin_context(rules.max_model_len(c.shape, spec.model.max_context_tokens,
                                           c.target.model.max_position_embeddings, memory.kv_capacity_tokens,
                                           memory.kv_block_size_tokens), spec.plan.max_model_len)


def _seqs_decision(c: Candidate, chosen: Evaluated, *, roomy: bool = False, itl_bound: bool = True) -> Decision:
    """max_num_seqs: the load's demand within what the layout's KV cache holds and the ITL target allows
    (``itl_bound=False``: the KV cache alone bounds it, see :func:`_roomier`)."""
    spec, memory = c.target.spec, chosen.memory
    mean_context = c.shape.prompt.mean + c.shape.output.mean / 2
    target_ms, label = itl_target(spec.slo)  # label: "ITL p99" (or "TPOT p99" when only that is given)
    base = perf_inputs(c, chosen.evaluation.layout, chosen.weights, memory.kv_bytes_per_token, 1)
    demand, why = demand_per_replica(c, chosen)
    single_ms = single_step_ms(base, mean_context)
    kv_limit = memory.max_concurrency_at_typical_request
    itl_limit = _itl_batch_limit(base, kv_limit, target_ms, mean_context)
    name = label.split(" ")[0] or "ITL"
    decision = rules.max_num_seqs(demand, why, kv_limit, itl_limit if itl_bound else None,
                                  single_ms if itl_bound and target_ms is not None and single_ms > target_ms else None,
                                  slots=open_loop_slots(c) if roomy else None, target=name)
    meets = itl_limit is not None and target_ms is not None and single_ms <= target_ms  # some batch meets it
    if not itl_bound and meets and int(decision.value) > (itl_limit or 0):  # the simulation's choice, above it
        decision = evolve(decision, reason=f"{decision.reason}; not capped at the largest batch whose decode step "
                                           f"meets the {name} target ({itl_limit:,})")
    return pinned(decision, spec.plan.max_num_seqs, "max_num_seqs")


def at_final_memory(c: Candidate, chosen: Evaluated, knobs: LoadKnobs, *, keep_values: bool = False) -> LoadKnobs:
    """The knobs whose figures come from the memory plan (max_model_len, max_num_seqs), decided again at the
    memory the engine gets (the emitted budget and context), so their numbers are the plan's; a new
    max_num_seqs is kept only within the token budget (every running request decodes in one step) and unless
    ``keep_values`` (the memory was planned for the current one); when the simulation chose the current one
    against another (an open loop's slots, :func:`_roomier`), that choice is simulated again at this memory."""
    context, seqs = _context_choice(c, chosen), _seqs_decision(c, chosen, roomy=knobs.roomy, itl_bound=knobs.itl_bound)
    if context.max_model_len != knobs.context.max_model_len:
        context = knobs.context  # planned at this length already (the memory was evaluated at it)
    if seqs.value == knobs.max_num_seqs.value or keep_values or int(seqs.value) > int(knobs.token_budget.value):
        return evolve(knobs, context=context, max_num_seqs=_with_trial(seqs, knobs) if seqs.value ==
                      knobs.max_num_seqs.value else knobs.max_num_seqs)
    if knobs.seqs_trial[0]:
        # The simulation chose the value against another at the planning budget's memory, and here the value moved
        # (the KV cache holds a few requests more or fewer): both are simulated again at this memory, so the figures
        # the decision quotes are its value's (a kept 219 quoted 214's figures, "vs ... with 214": new-user trial).
        return evolve(_slots_again(c, chosen, knobs), context=context)
    again = with_budget(load_knobs(c, chosen, roomy=knobs.roomy, itl_bound=knobs.itl_bound), knobs.token_budget)
    return evolve(again, context=context, budget_rule=knobs.budget_rule,
                  max_num_seqs=_with_trial(again.max_num_seqs, knobs), seqs_trial=knobs.seqs_trial)


def _slots_again(c: Candidate, chosen: Evaluated, knobs: LoadKnobs) -> LoadKnobs:
    """The open loop's slots simulated again against the load's demand at this memory (``knobs`` chose them at
    another): the knobs at this memory with the token budget kept, and the sentence of the new trial."""
    n = knobs.trial_requests
    base = with_budget(load_knobs(c, chosen), knobs.token_budget)
    tried, _ = _roomier(c, chosen, base, serve(c, chosen, base, requests=n), requests=n)
    # The analytic estimate at the kept batch (the trial's knobs carry the base's).
    again = with_budget(load_knobs(c, chosen, roomy=tried.roomy, itl_bound=tried.itl_bound), knobs.token_budget)
    return evolve(again, budget_rule=knobs.budget_rule, max_num_seqs=tried.max_num_seqs,
                  seqs_trial=tried.seqs_trial, trial_requests=tried.trial_requests)


def _with_trial(seqs: Decision, knobs: LoadKnobs) -> Decision:
    """The max_num_seqs decision with what the simulation said of the other value (when it was simulated)."""
    sentence, alternatives = knobs.seqs_trial
    if not sentence:
        return seqs
    return evolve(seqs, reason=f"{seqs.reason}. {sentence}", rejected=(*seqs.rejected, *alternatives))


def _within_memory(budget: Decision, c: Candidate) -> Decision:
    """The step rule's budget, capped where the memory was planned when it fits only with smaller steps."""
    cap = c.budget_cap
    if cap is None or int(budget.value) <= cap:
        return budget
    why = (f"capped at {cap:,} tokens: with larger steps the model does not fit (the activations and the engine's "
           f"reserve grow with the budget; the layouts were planned again at {cap:,}). The step rule: {budget.reason}")
    too_big = Alternative(budget.value, "does not fit in memory beside the weights and a p99 request's KV cache")
    return evolve(budget, value=cap, reason=why, rejected=(too_big, *budget.rejected))


def with_budget(knobs: LoadKnobs, budget: Decision) -> LoadKnobs:
    """The same knobs with another token budget.

    The memoised step costs carry over: a step is priced from what it carries, and the budget
    only decides what that is (``PerfInputs.max_num_batched_tokens`` feeds the analytic TTFT alone).
    """
    inputs = evolve(knobs.inputs, max_num_batched_tokens=int(budget.value))
    return evolve(knobs, token_budget=budget, inputs=inputs, performance=estimate_performance(inputs))


# Memos of pure functions, keyed by value: a pinned spec is planned twice (pinned and not, to explain the
# pins), sizing plans the same layouts under several variants, and the ranking, the budget tuning and the
# final plan ask for the same simulations. Bounded; ``clear_memo`` empties them (benchmarks time cold plans).
MEMO_SIZE = 512
K = TypeVar("K")
V = TypeVar("V")
_COSTS: dict[PerfInputs, StepCostModel] = {}
_SERVED: dict[tuple[object, ...], Served] = {}


def _remember(memo: dict[K, V], key: K, value: V) -> V:
    if len(memo) >= MEMO_SIZE:
        memo.pop(next(iter(memo)))  # the oldest: insertion order
    memo[key] = value
    return value


def step_costs(inputs: PerfInputs) -> StepCostModel:
    """The memoised step-cost model for these performance inputs (one per distinct inputs in the process).

    Keyed without the token budget: a step is priced from what it carries, and the budget only decides
    what that is (``PerfInputs.max_num_batched_tokens`` feeds the analytic TTFT alone).
    """
    key = evolve(inputs, max_num_batched_tokens=0)
    found = _COSTS.get(key)
    return found if found is not None else _remember(_COSTS, key, StepCostModel(inputs))


def clear_memo() -> None:
    """Forget every step cost and simulation memoised in this process."""
    _COSTS.clear()
    _SERVED.clear()


# Set by a caller that plans many what-ifs and confirms its decisions in full (``deployc size``): every
# simulation of a plan made inside ``screening()`` runs ``SCREEN_REQUESTS`` requests.
_SCREENING: ContextVar[bool] = ContextVar("deployc_screening", default=False)


def screening_active() -> bool:
    """Whether the plan being made is a screen (see :func:`screening`)."""
    return _SCREENING.get()


@contextmanager
def screening() -> Iterator[None]:
    """Plan as a screen within: every simulation runs ``SCREEN_REQUESTS`` requests per replica (closed loops:
    ``SCREEN_ROUNDS`` per client), and layouts are ranked at the step rule's token budget alone.

    The same layouts are simulated as in a full plan, and the winner tuned over the same budgets, on a
    smaller sample of the same traffic: the figures are a screen's, not a plan to emit, and the caller
    re-plans in full whatever its decisions rest on.
    """
    token = _SCREENING.set(True)
    try:
        yield
    finally:
        _SCREENING.reset(token)


def serving_setup(c: Candidate, chosen: Evaluated, knobs: LoadKnobs) -> ServingSetup:
    """The engine the simulation runs for this layout and these knobs."""
    memory = chosen.memory
    caching = bool(knobs.prefix_caching.value)
    engine = EngineConfig(
        policy=scheduler_as_run(c.scheduler, prefix_caching=caching), max_num_seqs=int(knobs.max_num_seqs.value),
        token_budget=int(knobs.token_budget.value), chunked_prefill=True,
        kv_capacity_tokens=memory.kv_capacity_tokens, kv_block_tokens=memory.kv_block_size_tokens,
        prefix_tokens=c.shape.prefix_hit_tokens if caching else 0, max_model_len=knobs.context.max_model_len)
    return ServingSetup(perf=knobs.inputs, engine=engine, replicas=chosen.evaluation.layout.dp)


def serve(c: Candidate, chosen: Evaluated, knobs: LoadKnobs, *, requests: int) -> Served:
    """Simulate the layout's pool with its knobs and judge it against the SLO (memoised by value).

    The simulation is a pure function of the engine setup, the workload and the request count, the
    verdict of that and the SLO: equal keys give byte-identical figures.
    """
    rounds = CLOSED_LOOP_ROUNDS
    if _SCREENING.get():
        requests, rounds = min(requests, SCREEN_REQUESTS), SCREEN_ROUNDS
    setup = serving_setup(c, chosen, knobs)
    key = (setup, c.shape, requests, rounds, c.target.spec.slo)
    found = _SERVED.get(key)
    if found is not None:
        return evolve(found, knobs=knobs)
    result = simulate_pool(setup, c.shape, requests=requests, cost=knobs.cost, rounds=rounds)
    return _remember(_SERVED, key, Served(knobs=knobs, result=result, verdict=judge(result, c.target.spec.slo)))


def _budget_score(served: Served, goal: str) -> tuple[float, ...]:
    r = served.result
    if not served.verdict.serves:
        # By how badly it misses (miss_rank): the offered/capacity ratio of a pool that keeps up is no miss (ranked on
        # it, a 2,048-token budget missing ITL p99 5.5× beat 256 at 1.9× for slightly more capacity, new-user trial).
        return (1.0, *miss_rank(served.result, served.verdict))
    if goal == "latency":
        checks = served.verdict.checks
        worst = max((c.simulated_ms / c.target_ms for c in checks), default=r.e2e_ms.p99)
        return (0.0, round(worst, 3), r.e2e_ms.p99)
    return (0.0, -round(r.output_tokens_per_s, 0), r.ttft_ms.p99)


def tune_budget(c: Candidate, chosen: Evaluated, knobs: LoadKnobs, *, requests: int,
                budgets: tuple[int, ...] = SIMULATED_BUDGETS, refine: bool = False,
                at_budget: MemoryAtBudget | None = None) -> tuple[LoadKnobs, Served]:
    """Simulate the rule's budget (and the next smaller, :func:`_below_rule`) beside the engine's usual ones; keep
    the one that serves best for the goal.

    The rule bounds the step that carries a full chunk, but whether that step reaches the ITL
    percentile depends on how many steps carry chunks, and a small budget delays first tokens:
    the simulation settles both.

    ``at_budget`` gives the layout's memory planned at another budget: each budget is then simulated with the KV
    cache it leaves (SGLang's reserve grows 1.5 MiB a token of its chunk: on one L4, 8B FP8 kept 0.95 GiB of KV
    at 8,192 tokens a step and 10 GiB at 2,048, and the tuning compared both at the first).
    """
    goal, plan = c.target.spec.slo.goal, c.target.spec.plan
    if plan.max_num_batched_tokens is not None:  # pinned by the spec: simulated as given
        if refine and budgets and not _SCREENING.get():
            # Explained against the budget deployc would tune here (the step rule's pick is only where it starts).
            free = evolve(c, target=evolve(c.target, spec=evolve(c.target.spec, plan=evolve(
                plan, max_num_batched_tokens=None))))
            own = tune_budget(free, chosen, with_budget(knobs, knobs.budget_rule), requests=requests,
                              budgets=budgets, refine=refine, at_budget=at_budget)[0].token_budget
            knobs = evolve(knobs, token_budget=pinned(own, plan.max_num_batched_tokens, "max_num_batched_tokens"))
        return _roomier(c, chosen, knobs, serve(c, chosen, knobs, requests=requests), requests=requests)
    floor, cap = int(knobs.max_num_seqs.value), c.budget_cap or max(budgets, default=0)
    knobs = with_budget(knobs, knobs.budget_rule) if knobs.token_budget is not knobs.budget_rule else knobs
    picked = int(knobs.token_budget.value)
    tried = (*budgets, *_below_rule(c, picked, floor, budgets))
    options = sorted({picked, *(b for b in tried if floor <= b <= cap)})
    layouts = _TrialMemory(c, chosen, at_budget)

    def trial(b: int) -> tuple[LoadKnobs, Served] | None:
        at = layouts.at(b)
        if at is None:
            return None
        cb, eb = at
        k = knobs if b == picked else with_budget(knobs, evolve(knobs.token_budget, value=b))
        if eb is not chosen:  # the knobs the memory decides (max_num_seqs within the KV cache), at this memory
            k = _knobs_at(cb, eb, k)
        return k, serve(cb, eb, k, requests=requests)

    trials = {b: t for b in options if (t := trial(b)) is not None}
    options = sorted(trials) or [picked]
    if not trials:
        trials = {picked: (knobs, serve(c, chosen, knobs, requests=requests))}
    best = min(options, key=lambda b: (_budget_score(trials[b][1], goal), b))
    if (refine and not _SCREENING.get() and len(options) > 1
            and not any(served.verdict.serves for _, served in trials.values())
            and miss_ratio(trials[best][1].result, trials[best][1].verdict) < REFINE_BELOW):
        # None serves: a smaller budget delays first tokens, a larger one stretches the steps; the best may lie
        # between the best and its neighbours: their geometric midpoints (powers of two) are simulated too (for
        # the winner's final knobs: the ranking compares layouts on the usual budgets).
        at = options.index(best)
        between = {1 << round(math.log2(math.sqrt(best * options[j]))) for j in (at - 1, at + 1)
                   if 0 <= j < len(options)}
        trials |= {b: t for b in sorted(between) if floor <= b <= cap and b not in trials
                   and (t := trial(b)) is not None}
        options = sorted(trials)
        best = min(options, key=lambda b: (_budget_score(trials[b][1], goal), b))
    cb, eb = layouts.at(best) or (c, chosen)
    if best == picked and len(options) == 1:
        return _roomier(cb, eb, *trials[best], requests=requests)
    kept, served = trials[best]
    r = served.result
    rejected = tuple(Alternative(b, _trial_loss(trials[b][1], served, best)) for b in options if b != best)
    why = (f"simulated ({requests:,} requests per replica) with {', '.join(f'{b:,}' for b in options)} tokens per "
           f"step, {best:,} "
           + ("serves best" if served.verdict.serves else "misses least") + f" for the {goal} goal (TTFT p99 "
           f"{r.ttft_ms.p99:,.0f} ms, ITL p99 {r.itl_ms.p99:.1f} ms, {r.output_tokens_per_s:,.0f} output tokens/s). "
           f"The step rule: {knobs.budget_rule.reason}")
    tuned = evolve(kept, token_budget=evolve(kept.token_budget, value=best, reason=why, rejected=rejected))
    return _roomier(cb, eb, tuned, evolve(served, knobs=tuned), requests=requests)


class _TrialMemory:
    """Each tuned budget's candidate and layout, its memory planned at that budget when ``at_budget`` is given
    (else the planning budget's for all); None where the workload does not fit at that budget."""

    def __init__(self, c: Candidate, chosen: Evaluated, at_budget: MemoryAtBudget | None) -> None:
        self.c, self.chosen, self.at_budget = c, chosen, at_budget
        self.found: dict[int, tuple[Candidate, Evaluated] | None] = {}

    def at(self, budget: int) -> tuple[Candidate, Evaluated] | None:
        if self.at_budget is None or budget == self.c.max_num_batched_tokens:
            return self.c, self.chosen
        if budget not in self.found:
            again = self.at_budget(budget)
            self.found[budget] = None if again is None else (evolve(self.c, max_num_batched_tokens=budget), again)
        return self.found[budget]


def _knobs_at(c: Candidate, chosen: Evaluated, knobs: LoadKnobs) -> LoadKnobs:
    """``knobs`` with max_model_len and max_num_seqs decided at this memory (a budget's own KV cache), within the
    token budget (every running request decodes in one step); the budget, the step rule and the rest kept. Slots
    the simulation chose at another memory are simulated again here (:func:`_slots_again`)."""
    fresh = load_knobs(c, chosen, roomy=knobs.roomy, itl_bound=knobs.itl_bound)
    if int(fresh.max_num_seqs.value) > int(knobs.token_budget.value) or fresh.max_num_seqs.value == (
            knobs.max_num_seqs.value):
        return evolve(knobs, context=fresh.context)
    if knobs.seqs_trial[0]:
        return evolve(_slots_again(c, chosen, knobs), context=fresh.context)
    return evolve(knobs, context=fresh.context, max_num_seqs=fresh.max_num_seqs)


def _below_rule(c: Candidate, picked: int, floor: int, budgets: tuple[int, ...]) -> tuple[int, ...]:
    """The step rule's next smaller budget, simulated beside it in a tuning over the usual budgets (not in a
    screen's, at the rule's alone).

    The rule keeps the largest budget whose full steps meet the ITL target: the most prompt a step, not
    the goal's best. A smaller budget trades TTFT for shorter steps, and in a closed loop shorter steps
    also send the clients' next requests sooner. (While the rule priced a step as a decode step plus a
    whole prefill pass, ~1.7× the simulation's, its budgets were a power of two smaller and the tuning
    saw these by accident: 405B on 8 × H100 served 741 output tokens/s at 256 tokens a step, 660 at the
    honest rule's 512; a 70B on 4 × H100 for the latency goal ranked TP2 above TP4, whose 256 it did
    not try.)
    """
    if not budgets or itl_target(c.target.spec.slo)[0] is None:
        return ()
    below = [b for b in rules.TOKEN_BUDGETS if floor <= b < picked]
    return (below[-1],) if below else ()


def _roomier(c: Candidate, chosen: Evaluated, knobs: LoadKnobs, served: Served, *,
             requests: int) -> tuple[LoadKnobs, Served]:
    """An open loop's max_num_seqs, settled by the simulation: the slots its Poisson bursts need (the knobs'),
    or ``OPEN_LOOP_SLOTS`` within the KV cache, the ITL target and the token budget; the better for the goal.

    More slots let a burst start at once (no request waits a whole request for a slot: the TTFT tail) but let
    more requests share each step (the steps, ITL and TPOT, grow): which matters more, the simulation tells.
    """
    slots = open_loop_slots(c)
    if slots is None or knobs.roomy or c.target.spec.plan.max_num_seqs is not None:
        return knobs, served
    roomy, itl_bound = _seqs_decision(c, chosen, roomy=True), True
    if not served.verdict.serves:
        # The ITL target's batch can cost more than it saves: capped at 20 sequences, an MoE on 2 × L40S completed
        # 1.6 req/s of the 10 offered (6.2× over), 7.9 with 187 (new-user trial). Missing anyway, the KV cache's
        # bound is simulated instead, and kept only if it misses less.
        free = _seqs_decision(c, chosen, roomy=True, itl_bound=False)
        if int(free.value) > int(roomy.value):
            roomy, itl_bound = free, False
    budget = int(knobs.token_budget.value)
    if int(roomy.value) > budget:  # every running request decodes in one step: the engines require it
        roomy = evolve(roomy, value=budget, reason=f"{roomy.reason}; at most the token budget ({budget:,}): every "
                                                   "running request decodes in one step")
    if int(roomy.value) <= int(knobs.max_num_seqs.value):
        return knobs, served
    trial = evolve(knobs, max_num_seqs=roomy, roomy=True, itl_bound=itl_bound)
    tried = serve(c, chosen, trial, requests=requests)
    goal = c.target.spec.slo.goal
    tried_score, served_score = _budget_score(tried, goal), _budget_score(served, goal)
    if tried_score < served_score:
        loser, winner, kept = served, tried, trial
    else:
        loser, winner, kept = tried, served, knobs
    other = knobs.max_num_seqs if kept is trial else roomy
    r = winner.result
    sentence = (f"Simulated ({requests:,} requests per replica) with {int(other.value):,} as well, this "
                f"{'serves' if winner.verdict.serves else 'misses least'} for the {goal} goal (TTFT p99 "
                f"{r.ttft_ms.p99:,.0f} ms, ITL p99 {r.itl_ms.p99:.1f} ms, TPOT p99 {r.tpot_ms.p99:.1f} ms)")
    tie = tried_score == served_score
    loss = (f"the same for the {goal} goal: the fewer slots are kept" if tie
            else _trial_loss(loser, winner, int(kept.max_num_seqs.value)))
    kept = evolve(kept, seqs_trial=(sentence, (Alternative(other.value, loss),)), trial_requests=requests)
    kept = evolve(kept, max_num_seqs=_with_trial(kept.max_num_seqs, kept))
    return kept, evolve(winner, knobs=kept)


def _trial_loss(loser: Served, best: Served, value: int) -> str:
    """Why a simulated alternative (a token budget, a max_num_seqs) lost to the kept ``value``."""
    lr, br = loser.result, best.result
    if best.verdict.serves and not loser.verdict.serves:
        misses = "; ".join(m.sentence() for m in loser.verdict.misses()) or "cannot keep up"
        return f"misses the SLO ({misses}) which {value:,} meets"
    return (f"simulated TTFT p99 {lr.ttft_ms.p99:,.0f} ms, ITL p99 {lr.itl_ms.p99:.1f} ms, "
            f"{lr.output_tokens_per_s:,.0f} output tokens/s vs {br.ttft_ms.p99:,.0f} ms, {br.itl_ms.p99:.1f} ms, "
            f"{br.output_tokens_per_s:,.0f} with {value:,}")
