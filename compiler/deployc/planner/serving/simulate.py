"""A pool served by its replicas: traffic in, latency percentiles, throughput and capacity out.

Replicas are identical and serve independent shares of the traffic: one replica is simulated with
its share (closed loop: ⌈clients / replicas⌉ clients, the busiest replica; open loop: rate /
replicas, Poisson, which is what random routing gives — the engines' least-loaded routing does at
least as well) and the totals are that replica's figures × replicas. Under an open-loop rate the
replica's capacity is measured too (a saturated closed loop with ``max_num_seqs`` clients), so an
arrival rate above it is reported as overload by its factor rather than as a queue that happens to
stop growing when the simulated requests run out.
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Sequence
from itertools import compress, repeat
from operator import add, sub
from typing import TypeVar

from attrs import evolve, frozen

from deployc.contract.backend import SchedulerPolicy
from deployc.planner.perf import PerfInputs
from deployc.planner.serving.engine import EngineConfig, StepCost, Trace, Traffic, run_replica
from deployc.planner.serving.lengths import LengthModel, fit_lengths
from deployc.planner.serving.metrics import summarise_ms, weighted_ms
from deployc.planner.serving.result import Mode, ServingResult
from deployc.planner.serving.stepcost import StepCostModel
from deployc.planner.workload import WorkloadShape

SIMULATED_REQUESTS = 2000  # per replica, for a final plan (issue budget: < 50 ms per layout)
RANKING_REQUESTS = 400  # per replica, while comparing layouts and knobs
QUICK_REQUESTS = 200  # per replica, in what-if searches (ranked fixes)
# Per replica in a sizing screen (``planner.load.screening``): enough to tell a miss by the sizing margin. Measured by
# bench/size_screen.py (every single-class sample × 4 GPU types up to 16 GPUs, 151 deployments screened and planned
# in full): with 200 the largest screen miss ratio of a deployment that serves in full was 1.08, with 100 it is 1.11,
# under the 1.3 margin; the search simulates ~17% fewer requests.
SCREEN_REQUESTS = 100
WARMUP_SHARE = 0.1  # open loop: the first 10% of arrivals fill an empty engine and are not measured
CLOSED_LOOP_ROUNDS = 5  # closed loop: at least 5 requests per client, so a steady state exists
# A screen's closed loop (``deployc size``): 2 requests per client after the first, so one round is measured
# between the start-up burst and the drain. Enough to tell a miss by the sizing margin; the search plans in full
# whatever it decides on (bench/size_screen.py measures the screens against full plans).
SCREEN_ROUNDS = 2
MAX_CLOSED_LOOP_REQUESTS = 20_000
# The capacity run (a saturated closed loop) of an open loop: its rate is measured over this many requests
# (~2.5% statistical error for the samples' length spreads, against ~1.1% with 2,000), and again over all of them
# when the offered rate is within CLOSE_TO_CAPACITY of it, where the verdict (served or overloaded) rests on it.
CAPACITY_REQUESTS = 400
CLOSE_TO_CAPACITY = (0.8, 1.25)
_T = TypeVar("_T")
SEED = 20261206  # fixed: the same spec gives the same draws, byte for byte

@frozen(kw_only=True)
class ServingSetup:
    """One pool's engine as deployed: step costs, each replica's engine (scheduler, knobs, KV cache), the replicas."""

    perf: PerfInputs | None  # None only with an explicit step-cost function (tests, calibration)
    engine: EngineConfig
    replicas: int


def scheduler_as_run(policy: SchedulerPolicy, *, prefix_caching: bool) -> SchedulerPolicy:
    """The backend's scheduler as the plan runs it: with prefix caching off, a preempted request's freed blocks
    are not kept for reuse and it recomputes all of it (vLLM's get_computed_blocks skips the lookup), whatever
    the policy's ``resume_from_cache`` says."""
    return policy if prefix_caching else evolve(policy, resume_from_cache=False)


def _lengths(model: LengthModel, rng: random.Random, n: int) -> tuple[int, ...]:
    return tuple(model.draw(rng) for _ in range(n))


@functools.lru_cache(maxsize=64)
def _traffic(shape: WorkloadShape, *, n: int, rate_per_s: float | None, clients: int) -> Traffic:
    """The requests (memoised: a plan simulates the same traffic on many layouts; Traffic is immutable)."""
    prompts, outputs = fit_lengths(shape.prompt), fit_lengths(shape.output)
    # Pseudo-random draws of a simulation, not secrets: a fixed seed keeps them reproducible.
    prompt_tokens = _lengths(prompts, random.Random(SEED), n)  # noqa: S311
    output_tokens = _lengths(outputs, random.Random(SEED + 1), n)  # noqa: S311
    arrivals = None
    if rate_per_s is not None:
        rng, t, times = random.Random(SEED + 2), 0.0, []  # noqa: S311
        for _ in range(n):
            t += -math.log(1.0 - rng.random()) / rate_per_s
            times.append(t)
        arrivals = tuple(times)
    max_new = (outputs.max_tokens,) * n  # clients send max_tokens = the spec's longest output
    return Traffic(prompt_tokens=prompt_tokens, output_tokens=output_tokens, max_new_tokens=max_new,
                   arrivals_s=arrivals, clients=clients)


def _measured(trace: Trace, first: int, last: int) -> Sequence[int]:
    """The requests from ``first`` to ``last`` that completed (a range when all did, as they usually do)."""
    finite = list(map(math.isfinite, trace.finish_s[first:last]))
    return range(first, last) if all(finite) else list(compress(range(first, last), finite))


def _picked(values: Sequence[_T], measured: Sequence[int]) -> Sequence[_T]:
    """``values`` of the measured requests (a slice when they are a range)."""
    if isinstance(measured, range):
        return values[measured.start:measured.stop]
    return list(map(values.__getitem__, measured))


def _window_rate(trace: Trace, traffic: Traffic, start: float, end: float) -> tuple[float, float, float]:
    """Completions per second, output and total tokens per second, of requests finishing in [start, end)."""
    span = end - start
    if span <= 0:
        span = max(trace.end_s, 1e-9)
        start, end = 0.0, trace.end_s
    done = [i for i, f in enumerate(trace.finish_s) if start <= f < end]  # finite: start and end are
    out = sum(map(traffic.output_tokens.__getitem__, done))
    total = out + sum(map(traffic.prompt_tokens.__getitem__, done))
    return len(done) / span, out / span, total / span


def _closed_requests(clients: int, requests: int, rounds: int) -> int:
    return min(max(requests, rounds * clients + clients), MAX_CLOSED_LOOP_REQUESTS)


def _cost(setup: ServingSetup, cost: StepCost | None) -> StepCost:
    if cost is not None:
        return cost
    if setup.perf is None:
        raise ValueError("a serving setup without performance inputs needs a step-cost function")
    return StepCostModel(setup.perf)


def saturation_capacity(setup: ServingSetup, shape: WorkloadShape, requests: int,
                        cost: StepCost | None = None, rounds: int = CLOSED_LOOP_ROUNDS) -> tuple[float, float, float]:
    """Requests, output tokens and total tokens per second one replica completes when its queue never empties."""
    clients = max(setup.engine.max_num_seqs, 1)
    clients = min(clients + max(clients // 4, 1), MAX_CLOSED_LOOP_REQUESTS // (rounds + 1))
    n = _closed_requests(clients, requests, rounds)
    traffic = _traffic(shape, n=n, rate_per_s=None, clients=clients)
    trace = run_replica(setup.engine, traffic, _cost(setup, cost))
    start = trace.arrival_s[min(clients, n - 1)]
    end = trace.arrival_s[n - 1]
    return _window_rate(trace, traffic, start, end)


def simulate_pool(setup: ServingSetup, shape: WorkloadShape, *, requests: int = SIMULATED_REQUESTS,
                  cost: StepCost | None = None, rounds: int = CLOSED_LOOP_ROUNDS) -> ServingResult:
    """Simulate the pool under its workload: closed loop for ``concurrency``, Poisson for ``request_rate_per_s``.

    ``cost`` may carry step costs memoised by an earlier simulation of the same engine setup. A closed loop
    (and the saturation run measuring an open loop's capacity) sends at least ``rounds`` requests per client
    after the first.
    """
    cost = _cost(setup, cost)
    replicas = max(setup.replicas, 1)
    rate = shape.request_rate_per_s
    if shape.concurrency is not None or rate is None:
        clients = max(math.ceil((shape.concurrency or 1) / replicas), 1)
        n = _closed_requests(clients, requests, rounds)
        traffic = _traffic(shape, n=n, rate_per_s=None, clients=clients)
        trace = run_replica(setup.engine, traffic, cost)
        first, last = min(clients, n - 1), max(n - clients, min(clients, n - 1) + 1)
        window = (trace.arrival_s[first], trace.arrival_s[min(last, n - 1)])
        mode: Mode = "closed"
        offered, capacity = None, None
    else:
        per_replica = rate / replicas
        n = requests
        traffic = _traffic(shape, n=n, rate_per_s=per_replica, clients=0)
        trace = run_replica(setup.engine, traffic, cost)
        first, last = int(n * WARMUP_SHARE), n
        window = (trace.arrival_s[first], trace.arrival_s[n - 1])
        mode, clients = "open", 0
        offered = rate
        saturated = saturation_capacity(setup, shape, min(requests, CAPACITY_REQUESTS), cost, rounds)
        if requests > CAPACITY_REQUESTS and CLOSE_TO_CAPACITY[0] <= rate / (saturated[0] * replicas or 1e-12) <= (
                CLOSE_TO_CAPACITY[1]):
            saturated = saturation_capacity(setup, shape, requests, cost, rounds)  # the verdict rests on it
        capacity = saturated[0] * replicas
    result = _result(setup, shape, trace, traffic, mode=mode, clients=clients if mode == "closed" else None,
                     measured=_measured(trace, first, last), window=window, offered=offered, capacity=capacity)
    if result.overloaded:
        # Overloaded, the pool runs flat out: it completes at its capacity, whatever the window happened to see.
        result = evolve(result, requests_per_s=saturated[0] * replicas, output_tokens_per_s=saturated[1] * replicas,
                        total_tokens_per_s=saturated[2] * replicas)
    return result


def _result(setup: ServingSetup, shape: WorkloadShape, trace: Trace, traffic: Traffic, *, mode: Mode,
            clients: int | None, measured: Sequence[int], window: tuple[float, float], offered: float | None,
            capacity: float | None) -> ServingResult:
    replicas = max(setup.replicas, 1)
    # Outside the scheduler's steps (HTTP, tokenisation, output processing): before the first token reaches the client.
    overhead_s = setup.engine.policy.request_overhead_ms / 1e3
    # Each request's figures, element-wise over the measured requests (map: 2,000 per simulation, in C).
    arrival, admitted, first, finish = (_picked(values, measured) for values in (
        trace.arrival_s, trace.admitted_s, trace.first_token_s, trace.finish_s))
    output_tokens = _picked(traffic.output_tokens, measured)
    ttft = list(map(add, map(sub, first, arrival), repeat(overhead_s)))
    e2e = list(map(add, map(sub, finish, arrival), repeat(overhead_s)))
    wait = list(map(sub, admitted, arrival))
    tpot = [(end - start) / (tokens - 1) for end, start, tokens in zip(finish, first, output_tokens, strict=True)
            if tokens > 1]
    rps, out_tps, total_tps = _window_rate(trace, traffic, *window)
    elapsed = max(trace.end_s, 1e-9)
    capacity_tokens = max(setup.engine.kv_capacity_tokens, 1)
    prompts, outputs = fit_lengths(shape.prompt), fit_lengths(shape.output)
    return ServingResult(
        mode=mode, replicas=replicas, clients_per_replica=clients, offered_requests_per_s=offered,
        capacity_requests_per_s=capacity, requests_simulated=len(traffic.prompt_tokens),
        requests_measured=len(measured), ttft_ms=summarise_ms(ttft), itl_ms=weighted_ms(trace.itl_samples),
        tpot_ms=summarise_ms(tpot), e2e_ms=summarise_ms(e2e), queue_wait_ms=summarise_ms(wait),
        output_tokens_per_s=out_tps * replicas, total_tokens_per_s=total_tps * replicas,
        requests_per_s=rps * replicas, mean_running_per_replica=trace.running_seconds / elapsed,
        peak_running_per_replica=trace.running_peak,
        kv_utilisation_mean=min(trace.kv_token_seconds / elapsed / capacity_tokens, 1.0),
        kv_utilisation_peak=min(trace.kv_peak_tokens / capacity_tokens, 1.0),
        preemptions=trace.preemptions, rejected_requests=trace.rejected,
        rejected_over_context=trace.rejected_over_context,
        prompt_lengths=prompts.describe(), output_lengths=outputs.describe(),
        assumptions=_assumptions(setup, mode, clients, replicas),
    )


def _assumptions(setup: ServingSetup, mode: Mode, clients: int | None, replicas: int) -> tuple[str, ...]:
    lines = [
        f"Scheduler: {setup.engine.policy.source}.",
        "Arrivals: " + (f"closed loop, {clients} clients per replica each sending its next request when the last "
                        "one ends (vllm bench serve --max-concurrency)" if mode == "closed" else
                        "Poisson (open loop) at the spec's rate") + "; clients send max_tokens = the longest output.",
        f"Seed {SEED}: the same spec draws the same requests. Warm-up and drain-out requests are not measured.",
        f"Each request spends {setup.engine.policy.request_overhead_ms:g} ms outside the engine's steps (HTTP, "
        "tokenisation, output processing), added to its TTFT and end-to-end latency.",
    ]
    if replicas > 1:
        lines.append(f"{replicas} replicas serve equal shares; one is simulated and the totals are × {replicas} "
                     "(the busiest share when the clients do not divide evenly).")
    if setup.engine.prefix_tokens:
        lines.append(f"A shared prefix of {setup.engine.prefix_tokens:,} tokens is computed once, kept once in the KV "
                     "cache, and hit by every later request.")
    return tuple(lines)


def simulate_benchmark(setup: ServingSetup, shape: WorkloadShape, *, num_requests: int, concurrency: int,
                       cost: StepCost | None = None) -> ServingResult:
    """``vllm bench serve --num-prompts N --max-concurrency C`` against the pool: every request measured.

    Unlike :func:`simulate_pool` (steady state), a benchmark counts its ramp-up and drain-out, and its
    throughput is all output over the whole run; C = N is a burst (every request sent at once).
    """
    replicas = max(setup.replicas, 1)
    clients = max(math.ceil(concurrency / replicas), 1)
    n = max(math.ceil(num_requests / replicas), 1)
    # Benchmark clients ask each request for its own length: vllm bench serve sends max_tokens = the
    # request's expected output length (ShareGPT: its reference completion; random: output_len), AIPerf
    # sends --output-tokens-mean with stddev 0. Reservation-based schedulers (TensorRT-LLM, SGLang)
    # reserve that, not the longest output of the whole set.
    traffic = _traffic(shape, n=n, rate_per_s=None, clients=clients)
    traffic = evolve(traffic, max_new_tokens=traffic.output_tokens)
    trace = run_replica(setup.engine, traffic, _cost(setup, cost))
    return _result(setup, shape, trace, traffic, mode="closed", clients=clients, measured=_measured(trace, 0, n),
                   window=(0.0, trace.end_s + 1e-9), offered=None, capacity=None)
