"""The simulation's strides (many identical steps at once) against the step-by-step loop they stand for."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from pathlib import Path

import attrs
import pytest

from deployc.api import plan
from deployc.contract.backend import SchedulerPolicy
from deployc.planner.replay import serving_setup
from deployc.planner.serving import engine
from deployc.planner.serving.engine import EngineConfig, Traffic, run_replica
from deployc.planner.serving.simulate import _traffic
from deployc.planner.serving.stepcost import StepCostModel, _grid, _steps_on_point
from deployc.planner.workload import WorkloadShape
from deployc.plugins import default_registry
from deployc.spec.model import TokenDistribution

VLLM = SchedulerPolicy(resume_from_cache=True)
SGLANG = SchedulerPolicy(batching="prefill_first", kv_admission="prompt_and_decaying_output",
                         preemption="fewest_output_recompute", max_prefill_tokens=16384)
TRTLLM = SchedulerPolicy(kv_admission="prompt_and_max_output", preemption="never")


class GridCost:
    """A step cost that grows with the batch, the chunk and both contexts, constant between grid points.

    It states its grid (``steady_steps``) as StepCostModel does, so the strides must break where it
    changes; a stride priced anywhere but at its own steps would show in the comparison.
    """

    def __call__(self, prefill: int, sequences: int, context: float, decodes: int, decode_context: float) -> float:
        return (0.01 + 0.0004 * decodes + 0.00002 * prefill + 0.000001 * _grid(context, 64) * sequences
                + 0.0002 * _grid(decode_context, 32) * (decodes > 0))

    def steady_steps(self, prefill: int, context: float, context_step: float, decodes: int,
                     decode_context: float) -> int:
        steps = _steps_on_point(decode_context, 1.0, 32) if decodes else 1 << 30
        if prefill:
            steps = min(steps, _steps_on_point(context, context_step, 64))
        return steps


def _shape(prompt: int, output: int) -> WorkloadShape:
    return WorkloadShape(name="main", share=1.0, prompt=TokenDistribution(mean=prompt, p99=prompt * 4),
                         output=TokenDistribution(mean=output, p99=output * 3), concurrency=None,
                         request_rate_per_s=None, shared_prefix_tokens=0)


def _both(cfg: EngineConfig, traffic: Traffic) -> tuple[engine.Trace, engine.Trace]:
    return run_replica(cfg, traffic, GridCost()), run_replica(cfg, traffic, GridCost(), bulk=False)


def _assert_equal(fast: engine.Trace, slow: engine.Trace) -> None:
    for field in attrs.fields(engine.Trace):
        a, b = getattr(fast, field.name), getattr(slow, field.name)
        if field.name == "itl_samples":
            # The same gaps and counts (a stall summed in one go may differ in the last bit).
            assert [count for _, count in a] == [count for _, count in b]
            assert [gap for gap, _ in a] == pytest.approx([gap for gap, _ in b], rel=1e-12)
        elif isinstance(a, tuple):
            assert len(a) == len(b)
            for x, y in zip(a, b, strict=True):
                assert (math.isnan(x) and math.isnan(y)) or x == pytest.approx(y, rel=1e-9, abs=1e-9)
        else:
            assert a == pytest.approx(b, rel=1e-9), field.name


CASES = [
    # policy, budget, KV tokens, clients (closed loop) or rate (open loop)
    (VLLM, 256, 400_000, 24, None),  # chunked prompts beside decodes, completions inside chunk strides
    (VLLM, 2048, 30_000, 40, None),  # a tight KV cache: preemptions and recompute
    (VLLM, 512, 400_000, 0, 6.0),  # Poisson arrivals cutting decode strides
    (SGLANG, 1024, 60_000, 32, None),  # prefill steps alone, the decaying reservation, retractions
    (TRTLLM, 8192, 80_000, 48, None),  # reservation to completion
]


@pytest.mark.parametrize(("policy", "budget", "kv", "clients", "rate"), CASES)
def test_strides_equal_the_step_by_step_loop(policy: SchedulerPolicy, budget: int, kv: int, clients: int,
                                             rate: float | None) -> None:
    cfg = EngineConfig(policy=policy, max_num_seqs=max(clients, 32), token_budget=budget, chunked_prefill=True,
                       kv_capacity_tokens=kv, kv_block_tokens=16, prefix_tokens=0)
    traffic = _traffic(_shape(900, 160), n=300, rate_per_s=rate, clients=clients)
    fast, slow = _both(cfg, traffic)
    _assert_equal(fast, slow)
    assert fast.end_s > 0


def test_sglang_decode_strides_end_where_the_decaying_reservation_admits_the_head() -> None:
    # Long outputs in a small cache, max_num_seqs above what the cache holds: requests wait on the KV rule and
    # the new-token ratio decays while they do; the stride must stop at the step the head first fits
    # (before a completion would end it: 14 of the 31 strides here end that way).
    cfg = EngineConfig(policy=SGLANG, max_num_seqs=64, token_budget=1024, chunked_prefill=True,
                       kv_capacity_tokens=40_000, kv_block_tokens=16, prefix_tokens=0)
    traffic = _traffic(_shape(300, 900), n=300, rate_per_s=None, clients=32)
    fast, slow = _both(cfg, traffic)
    _assert_equal(fast, slow)


def _sample_step_cost() -> StepCostModel:
    planned, _ = plan(Path(__file__).resolve().parents[3] / "samples" / "llama70b-a100-nvlink.toml")
    setup = serving_setup(planned, planned.primary, default_registry().models()[planned.backend.name])
    assert setup.perf is not None
    return StepCostModel(setup.perf)


def test_the_step_cost_model_prices_a_stride_as_its_steps() -> None:
    # StepCostModel.stride (the hot path) books the prices __call__ and steady_steps give step by step.
    model = _sample_step_cost()
    for take, context, decodes, decode_context in ((224, 300.0, 31, 900.5), (0, 0.0, 17, 1000.25), (96, 0.0, 0, 0.0),
                                                   (2048, 7000.0, 9, 16300.0),  # across the 8k and 16k grids
                                                   (256, 1000.0, 9, 20000.0)):  # each on its own spacing
        itl: defaultdict[float, int] = defaultdict(int)
        growth = take + decodes
        total, steps, area, peak = model.stride(take, context, decodes, decode_context, 40, 1000.0, 5.0, 0.0, itl)
        expected = [model(take, 1 if take else 0, context + take * k, decodes, decode_context + k) for k in range(40)]
        assert steps == 40
        assert total == pytest.approx(sum(expected), rel=1e-12)
        # ∫ KV dt: each step holds the cache as it was before it, at its own price
        assert area == pytest.approx(5.0 + sum((1000 + growth * k) * p for k, p in enumerate(expected)), rel=1e-12)
        assert peak == 1000 + growth * 39
        assert itl == ({price: decodes * n for price, n in Counter(expected).items()} if decodes else {})
        assert len(set(expected)) < 40  # prices hold between grid points


def test_a_stride_stops_at_the_step_an_arrival_ends_and_a_last_chunk_joins_before_one() -> None:
    model = _sample_step_cost()
    price = model(0, 0, 0.0, 8, 100.0)
    itl: defaultdict[float, int] = defaultdict(int)
    total, steps = model.stride(0, 0.0, 8, 100.0, 50, 0.0, 0.0, 0.0, itl, 10.0, 10.0 + 2.5 * price)[:2]
    assert (steps, total) == (3, pytest.approx(3 * price))  # the arrival lands inside the third step
    chunk = model(224, 1, 0.0, 8, 100.0)
    joined = model.stride(224, 0.0, 8, 100.0, 1, 0.0, 0.0, 0.0, defaultdict(int), 0.0, math.inf, 100, 1.5 * chunk)
    late = model.stride(224, 0.0, 8, 100.0, 1, 0.0, 0.0, 0.0, defaultdict(int), 0.0, math.inf, 100, 0.5 * chunk)
    assert joined[1] == 2 and late[1] == 1


@pytest.mark.parametrize(("policy", "budget", "kv", "clients", "rate"), CASES)
def test_the_step_cost_models_strides_equal_the_step_by_step_loop(policy: SchedulerPolicy, budget: int, kv: int,
                                                                   clients: int, rate: float | None) -> None:
    # The same traffic with the planner's own step cost: StepCostModel.stride against one __call__ per step.
    model = _sample_step_cost()
    cfg = EngineConfig(policy=policy, max_num_seqs=max(clients, 32), token_budget=budget, chunked_prefill=True,
                       kv_capacity_tokens=kv, kv_block_tokens=16, prefix_tokens=0)
    traffic = _traffic(_shape(900, 160), n=300, rate_per_s=rate, clients=clients)
    _assert_equal(run_replica(cfg, traffic, model), run_replica(cfg, traffic, model, bulk=False))
