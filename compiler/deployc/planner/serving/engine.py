"""One engine replica's scheduler, step by step: continuous batching under a token budget and a KV cache.

A discrete-event model of what ``../shared/design/SERVING-SIM.md`` read in the pinned engines'
schedulers, parameterised by the backend's :class:`~deployc.contract.backend.SchedulerPolicy`:

- every step runs the decodes (one token per running request) and, under the token budget, prompt
  chunks: the one partially prefilled request first, then FCFS admissions (``mixed``); or a prefill
  step alone whenever one can form, the decodes waiting (``prefill_first``);
- admission stops at the first request that does not fit (head-of-line blocking): ``max_num_seqs``,
  the budget (without chunked prefill a prompt must fit whole), and the KV rule of the policy;
- decode grows the KV cache by one token per request per step; when it runs out, requests are
  preempted and later recomputed (``newest_recompute``, ``fewest_output_recompute``), or the policy
  reserved enough at admission never to run out (``never``);
- a shared prefix is computed once and then hit by every later request (whole KV blocks), and held
  once in the cache.

KV is counted in tokens with half a block of padding per request (blocks fill one token at a time).
Stretches of identical steps (the same decodes, the same prompt chunk, the same price) are advanced
in one stride up to the next event: a completion, an admissible arrival, the KV cache filling, the
partial prompt's last chunk, or the step's price changing on the step-cost grid (``steady_steps``).
Every step of a stride is therefore the step the step-by-step loop would run (``run_replica(...,
bulk=False)`` is that loop, kept as the reference the tests compare with): the same result, at a
cost proportional to events rather than tokens.
"""

from __future__ import annotations

import gc

from deployc.planner.serving.replica import Replica
from deployc.planner.serving.traffic import EngineConfig, Run, SteadySteps, StepCost, Trace, Traffic

__all__ = ["EngineConfig", "Run", "SteadySteps", "StepCost", "Trace", "Traffic", "run_replica"]


def run_replica(cfg: EngineConfig, traffic: Traffic, cost: StepCost, *, max_iterations: int = 20_000_000,
                bulk: bool = True) -> Trace:
    """Serve ``traffic`` on one replica until every request finished; deterministic for the same inputs.

    ``bulk=False`` runs every engine step on its own (the reference the strides must equal).
    """
    # The run makes many small tuples and no reference cycles: the cycle collector would only walk the
    # caller's whole heap (the plan, the catalogs) again and again, so it is paused for the run.
    collecting = gc.isenabled()
    gc.disable()
    try:
        replica = Replica(cfg, traffic, cost, len(traffic.prompt_tokens), bulk=bulk)
        replica.start()
        for _ in range(max_iterations):
            if not replica.step():
                break
        return replica.trace()
    finally:
        if collecting:
            gc.enable()
