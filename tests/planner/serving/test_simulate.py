"""The serving simulation against answers that can be worked out by hand."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from deployc.contract.backend import SchedulerPolicy
from deployc.planner.serving.engine import EngineConfig, run_replica
from deployc.planner.serving.simulate import (
    CAPACITY_REQUESTS,
    ServingSetup,
    _traffic,
    saturation_capacity,
    scheduler_as_run,
    simulate_pool,
)
from deployc.planner.serving.verdict import judge
from deployc.planner.workload import WorkloadShape
from deployc.spec.model import SloSection, TokenDistribution

STEP_S = 0.02
# No per-request overhead outside the steps: the closed forms below count steps only.
VLLM = SchedulerPolicy(request_overhead_ms=0.0)
SGLANG = SchedulerPolicy(batching="prefill_first", kv_admission="prompt_and_decaying_output",
                         preemption="fewest_output_recompute", max_prefill_tokens=16384, request_overhead_ms=0.0)
TRTLLM = SchedulerPolicy(kv_admission="prompt_and_max_output", preemption="never", request_overhead_ms=0.0)


def constant_step(*_args: float) -> float:
    """Every engine step takes 20 ms, whatever it carries."""
    return STEP_S


def linear_step(fixed_s: float, per_decode_s: float) -> Callable[[int, int, float, int, float], float]:
    """A step that costs a fixed part, a share per decoding sequence and 20 µs per prompt token."""
    def cost(prefill: int, _sequences: int, _context: float, decodes: int, _decode_context: float) -> float:
        return fixed_s + per_decode_s * decodes + 0.00002 * prefill
    return cost


def shape(prompt: int, output: int, *, concurrency: float | None = None, rate: float | None = None,
          p99_factor: float | None = None) -> WorkloadShape:
    def dist(mean: int) -> TokenDistribution:
        if p99_factor is None:
            return TokenDistribution(mean=mean, p99=mean, max=mean)
        return TokenDistribution(mean=mean, p99=int(mean * p99_factor), max=int(mean * p99_factor * 1.5))
    return WorkloadShape(name="main", share=1.0, prompt=dist(prompt), output=dist(output), concurrency=concurrency,
                         request_rate_per_s=rate, shared_prefix_tokens=0)


def setup(*, seqs: int, budget: int = 8192, kv: int = 10_000_000, policy: SchedulerPolicy = VLLM,
          replicas: int = 1, prefix: int = 0) -> ServingSetup:
    return ServingSetup(perf=None, engine=EngineConfig(policy=policy, max_num_seqs=seqs, token_budget=budget,
                                                       chunked_prefill=True, kv_capacity_tokens=kv, kv_block_tokens=16,
                                                       prefix_tokens=prefix), replicas=replicas)


def test_fixed_lengths_and_step_cost_equal_the_closed_form() -> None:
    # 8 clients, 100-token prompts (all fit one step), 50 outputs: a request is admitted and prefilled in the
    # step after it is sent (first token after one step), then decodes 49 steps: e2e = 50 steps.
    result = simulate_pool(setup(seqs=8), shape(100, 50, concurrency=8), requests=400, cost=constant_step)
    assert result.ttft_ms.p50 == pytest.approx(STEP_S * 1e3)
    assert result.ttft_ms.p99 == pytest.approx(STEP_S * 1e3)
    assert result.itl_ms.p99 == pytest.approx(STEP_S * 1e3)
    assert result.tpot_ms.mean == pytest.approx(STEP_S * 1e3)
    assert result.e2e_ms.mean == pytest.approx(50 * STEP_S * 1e3)
    assert result.queue_wait_ms.p99 == pytest.approx(0.0)
    # 8 sequences × one token per 20 ms step.
    assert result.output_tokens_per_s == pytest.approx(8 / STEP_S, rel=0.01)
    assert result.requests_per_s == pytest.approx(8 / (50 * STEP_S), rel=0.01)


def test_clients_beyond_max_num_seqs_wait_for_a_slot() -> None:
    # 16 clients, 8 slots: every request waits for one full request lifetime (50 steps) before it is admitted.
    result = simulate_pool(setup(seqs=8), shape(100, 50, concurrency=16), requests=800, cost=constant_step)
    assert result.queue_wait_ms.p50 == pytest.approx(50 * STEP_S * 1e3, rel=0.05)
    assert result.output_tokens_per_s == pytest.approx(8 / STEP_S, rel=0.02)


@pytest.mark.parametrize("policy", [VLLM, SGLANG, TRTLLM], ids=["vllm", "sglang", "trtllm"])
def test_littles_law_holds_on_simulated_output(policy: SchedulerPolicy) -> None:
    # Closed loop: N clients = completion rate × mean time in the system (no think time).
    clients = 24
    result = simulate_pool(setup(seqs=16, budget=2048, kv=60_000, policy=policy),
                           shape(1500, 300, concurrency=clients, p99_factor=3.0), requests=1500,
                           cost=linear_step(0.008, 0.0004))
    assert result.requests_per_s * result.e2e_ms.mean / 1e3 == pytest.approx(clients, rel=0.05)


def test_an_open_loop_rate_above_capacity_is_overloaded_by_the_right_factor() -> None:
    # Capacity: 8 slots, each request holds one for exactly 50 steps of 20 ms: 8 / 1 s = 8 requests/s.
    result = simulate_pool(setup(seqs=8), shape(100, 50, rate=16.0), requests=1500, cost=constant_step)
    assert result.capacity_requests_per_s == pytest.approx(8.0, rel=0.03)
    assert result.overloaded
    assert result.overload_factor == pytest.approx(2.0, rel=0.03)
    assert result.output_tokens_per_s == pytest.approx(8 * 50, rel=0.03)


@pytest.mark.parametrize(("rate", "measured_over"),
                         [(2.0, CAPACITY_REQUESTS), (7.5, 2000), (9.5, 2000), (20.0, CAPACITY_REQUESTS)])
def test_capacity_is_measured_over_every_request_where_the_verdict_rests_on_it(rate: float, measured_over: int) -> None:
    """Lengths vary (p99 3× the mean): the capacity run's rate depends on how many requests it spans. Far from the
    offered rate 400 do; within 0.8-1.25× of it, all 2,000 (the verdict, served or overloaded, rests on it)."""
    pool, work = setup(seqs=8), shape(100, 50, rate=rate, p99_factor=3.0)
    result = simulate_pool(pool, work, requests=2000, cost=linear_step(0.01, 0.001))
    expected = saturation_capacity(pool, work, measured_over, linear_step(0.01, 0.001))[0]
    assert result.capacity_requests_per_s == expected
    other = saturation_capacity(pool, work, 2000 + CAPACITY_REQUESTS - measured_over, linear_step(0.01, 0.001))[0]
    assert other != expected  # the two samples differ: the test can tell which one was used


def test_an_open_loop_rate_under_capacity_keeps_up_and_serves_the_offered_rate() -> None:
    result = simulate_pool(setup(seqs=8), shape(100, 50, rate=4.0), requests=2000, cost=constant_step)
    assert not result.overloaded
    assert result.requests_per_s == pytest.approx(4.0, rel=0.08)
    assert result.ttft_ms.p50 < 3 * STEP_S * 1e3


def test_replicas_split_the_load_and_add_their_throughput() -> None:
    one = simulate_pool(setup(seqs=8), shape(100, 50, concurrency=8), requests=400, cost=constant_step)
    two = simulate_pool(setup(seqs=8, replicas=2), shape(100, 50, concurrency=16), requests=400, cost=constant_step)
    assert two.output_tokens_per_s == pytest.approx(2 * one.output_tokens_per_s, rel=0.01)
    assert two.clients_per_replica == 8


def test_a_full_kv_cache_preempts_under_vllm_and_never_under_tensorrt_llm() -> None:
    # 12 sequences of up to ~2,000 tokens in a 12,000-token cache: vLLM admits on the prompt and preempts later;
    # TensorRT-LLM reserves prompt + max_tokens at admission and never runs out.
    load = shape(400, 600, concurrency=12, p99_factor=2.0)
    vllm = simulate_pool(setup(seqs=12, kv=12_000), load, requests=600, cost=constant_step)
    trt = simulate_pool(setup(seqs=12, kv=12_000, policy=TRTLLM), load, requests=600, cost=constant_step)
    assert vllm.preemptions > 0
    assert trt.preemptions == 0
    assert trt.mean_running_per_replica < vllm.mean_running_per_replica


def test_sglang_prefill_steps_stall_the_decodes() -> None:
    # A prefill step runs alone under SGLang's default: the decodes' gap around it is two steps, not one.
    load = shape(100, 50, concurrency=8)
    mixed = simulate_pool(setup(seqs=8), load, requests=400, cost=constant_step)
    alone = simulate_pool(setup(seqs=8, policy=SGLANG), load, requests=400, cost=constant_step)
    assert mixed.itl_ms.p99 == pytest.approx(STEP_S * 1e3)
    assert alone.itl_ms.p99 == pytest.approx(2 * STEP_S * 1e3)


def test_a_shared_prefix_is_computed_once() -> None:
    prompts: list[int] = []

    def counting(prefill: int, *_rest: float) -> float:
        prompts.append(prefill)
        return STEP_S

    simulate_pool(setup(seqs=8, prefix=992), shape(1000, 20, concurrency=8), requests=200, cost=counting)
    computed = sum(prompts)
    # First request computes 1,000 tokens; each of the other 199 only its 8 unshared ones (992 = 62 blocks).
    assert computed == pytest.approx(1000 * 8 + 8 * 192, rel=0.02)


def test_the_same_inputs_give_the_same_result() -> None:
    load = shape(1500, 300, rate=3.0, p99_factor=3.0)
    a = simulate_pool(setup(seqs=16, budget=2048, kv=60_000), load, requests=500,
                      cost=linear_step(0.01, 0.0003))
    b = simulate_pool(setup(seqs=16, budget=2048, kv=60_000), load, requests=500,
                      cost=linear_step(0.01, 0.0003))
    assert a == b
    assert not math.isnan(a.ttft_ms.p99)


def test_the_request_overhead_is_added_to_ttft_and_end_to_end_latency() -> None:
    load = shape(100, 50, concurrency=8)
    bare = simulate_pool(setup(seqs=8), load, requests=400, cost=constant_step)
    slow = simulate_pool(setup(seqs=8, policy=SchedulerPolicy(request_overhead_ms=40.0)), load, requests=400,
                         cost=constant_step)
    assert slow.ttft_ms.p50 == pytest.approx(bare.ttft_ms.p50 + 40.0)
    assert slow.e2e_ms.mean == pytest.approx(bare.e2e_ms.mean + 40.0)
    assert slow.itl_ms == bare.itl_ms


@pytest.mark.parametrize("policy", [VLLM, SGLANG], ids=["vllm", "sglang"])
def test_admissions_in_one_step_share_the_free_kv_cache(policy: SchedulerPolicy) -> None:
    # 1,000 free tokens, ten 300-token prompts at once: each fits alone, three fit together (the engines
    # allocate each admitted chunk before trying the next request), so no more than three ever run.
    result = simulate_pool(setup(seqs=10, kv=1_000, policy=policy), shape(300, 2, concurrency=10), requests=40,
                           cost=constant_step)
    assert result.peak_running_per_replica == 3
    assert result.preemptions == 0


def test_a_preempted_vllm_request_resumes_from_its_cached_blocks() -> None:
    # A tight cache preempts; with vLLM's freed blocks kept in the prefix cache (evicted last) a resumed
    # request recomputes only what was reused meanwhile, so fewer prompt tokens are computed again.
    computed: dict[bool, int] = {}
    for resume in (False, True):
        tokens = 0

        def counting(prefill: int, *_rest: float) -> float:
            nonlocal tokens
            tokens += prefill
            return STEP_S

        cfg = EngineConfig(policy=SchedulerPolicy(resume_from_cache=resume), max_num_seqs=12, token_budget=512,
                           chunked_prefill=True, kv_capacity_tokens=12_000, kv_block_tokens=16, prefix_tokens=0)
        traffic = _traffic(shape(400, 600, concurrency=12, p99_factor=2.0), n=300, rate_per_s=None, clients=12)
        trace = run_replica(cfg, traffic, counting, bulk=False)  # every step priced: every token counted
        assert trace.preemptions > 0
        computed[resume] = tokens
    assert computed[True] < computed[False]
    assert computed[True] >= sum(_traffic(shape(400, 600, concurrency=12, p99_factor=2.0), n=300, rate_per_s=None,
                                          clients=12).prompt_tokens)


def test_without_prefix_caching_a_preempted_request_recomputes_everything() -> None:
    # vLLM looks up cached blocks only with prefix caching on (kv_cache_manager.get_computed_blocks): off, the
    # resume policy must not apply, and the pool serves as under a policy that never resumes.
    load = shape(400, 600, concurrency=12, p99_factor=2.0)
    resuming = SchedulerPolicy(resume_from_cache=True, request_overhead_ms=0.0)
    assert scheduler_as_run(resuming, prefix_caching=True) == resuming
    off_policy = scheduler_as_run(resuming, prefix_caching=False)
    assert off_policy.resume_from_cache is False

    def pool(policy: SchedulerPolicy) -> ServingSetup:
        return ServingSetup(perf=None, engine=EngineConfig(policy=policy, max_num_seqs=12, token_budget=512,
                                                           chunked_prefill=True, kv_capacity_tokens=12_000,
                                                           kv_block_tokens=16, prefix_tokens=0), replicas=1)

    off = simulate_pool(pool(off_policy), load, requests=300, cost=linear_step(0.01, 0.0002))
    on = simulate_pool(pool(resuming), load, requests=300, cost=linear_step(0.01, 0.0002))
    assert off.preemptions > 0
    assert on != off


def test_requests_longer_than_max_model_len_are_refused_and_not_measured() -> None:
    # vLLM's and SGLang's servers refuse prompt + max_tokens above max_model_len; a closed-loop client gets the
    # error at once and sends its next request. The refused ones are not served: the verdict cannot be "serves".
    load = shape(3000, 200, concurrency=4, p99_factor=2.0)
    traffic = _traffic(load, n=400, rate_per_s=None, clients=4)
    limit = 4096
    too_long = sum(p + m > limit for p, m in zip(traffic.prompt_tokens, traffic.max_new_tokens, strict=True))
    assert 0 < too_long < 400
    cfg = EngineConfig(policy=VLLM, max_num_seqs=4, token_budget=8192, chunked_prefill=True,
                       kv_capacity_tokens=10_000_000, kv_block_tokens=16, prefix_tokens=0, max_model_len=limit)
    trace = run_replica(cfg, traffic, constant_step)
    assert trace.rejected == trace.rejected_over_context == too_long
    refused = [i for i, f in enumerate(trace.finish_s) if math.isnan(f)]
    assert all(traffic.prompt_tokens[i] + traffic.max_new_tokens[i] > limit for i in refused)
    result = simulate_pool(ServingSetup(perf=None, engine=cfg, replicas=1), load, requests=400, cost=constant_step)
    assert result.rejected_over_context == too_long
    verdict = judge(result, SloSection())
    assert verdict.status == "misses_slo"
    assert verdict.summary(result) == (f"misses the SLO: the engine refuses {too_long:,} of 400 simulated requests "
                                       f"({too_long:,} longer than max_model_len (prompt + max_tokens))")
