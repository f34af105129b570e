"""The load knobs' simulated alternatives quote figures of the value the plan keeps, simulated where it is kept.

New-user trial: "a rejected alternative's figures can come from a different budget phase than the kept
value". The knobs are tuned on the memory planned at the planning token budget, then decided again on
the memory the emitted budget leaves: there an open loop's max_num_seqs moved from 214 to 219 slots (the
KV cache holds a few more requests), while its simulated alternative still read "vs ... with 214".
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from deployc import api
from deployc.planner import load
from deployc.planner.serving.simulate import RANKING_REQUESTS

CHAT_8B_ON_ONE_L40S = """version = 1
name = "phases"
[model]
id = "meta-llama/Llama-3.1-8B-Instruct"
[hardware]
gpu = "L40S"
[workload]
kind = "chat"
prompt_tokens = { mean = 1000, p99 = 4000 }
output_tokens = { mean = 200, p99 = 800 }
request_rate_per_s = 3
[slo]
ttft_ms = { p99 = 2000 }
itl_ms = { p99 = 70 }
goal = "cost"
"""
FIGURES = r"TTFT p99 ([\d,]+) ms, ITL p99 ([\d.]+) ms"


def test_max_num_seqs_quotes_figures_simulated_with_the_value_it_keeps(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    runs: list[tuple[int, int, int, int, Any]] = []
    simulate = load.simulate_pool

    def spy(setup: Any, shape: Any, *, requests: int, **kwargs: Any) -> Any:
        result = simulate(setup, shape, requests=requests, **kwargs)
        e = setup.engine
        runs.append((e.max_num_seqs, e.token_budget, e.kv_capacity_tokens, requests, result))
        return result

    monkeypatch.setattr(load, "simulate_pool", spy)
    api.clear_plan_cache()  # cold: every simulation runs (the memo would answer without the simulation)
    spec = tmp_path / "spec.toml"
    spec.write_text(CHAT_8B_ON_ONE_L40S)
    plan, _ = api.plan(spec)
    seqs, budget = plan.decision("max_num_seqs"), plan.decision("max_num_batched_tokens")
    assert seqs is not None and budget is not None
    kept, tokens = int(seqs.value), int(budget.value)
    assert kept == plan.primary.knobs.max_num_seqs
    trial = re.search(r"Simulated \(400 requests per replica\) with ([\d,]+) as well, this (?:serves|misses least) "
                      rf"for the cost goal \({FIGURES}, TPOT p99", seqs.reason)
    assert trial is not None, seqs.reason  # the open loop's slots were simulated against the load's demand
    other = int(trial.group(1).replace(",", ""))
    (alternative,) = [a for a in seqs.rejected if a.value == other]
    vs = re.fullmatch(r"simulated TTFT p99 [\d,]+ ms, ITL p99 [\d.]+ ms, [\d,]+ output tokens/s vs ([\d,]+) ms, "
                      r"([\d.]+) ms, [\d,]+ with ([\d,]+)", alternative.reason)
    assert vs is not None, alternative.reason
    assert int(vs.group(3).replace(",", "")) == kept  # 214 while 219 was kept, before
    assert vs.groups()[:2] == trial.groups()[1:]
    # Those figures are a simulation of the kept value, at the emitted budget, on the memory the plan reports (the
    # CUDA graphs of the emitted batch may move the KV cache a little after it: within 1%).
    capacity = plan.primary.memory.kv_capacity_tokens
    quoted = (vs.group(1), vs.group(2))
    matching = [kv for s, b, kv, n, r in runs if (s, b, n) == (kept, tokens, RANKING_REQUESTS)
                and (f"{r.ttft_ms.p99:,.0f}", f"{r.itl_ms.p99:.1f}") == quoted]
    assert matching and all(abs(kv - capacity) <= capacity / 100 for kv in matching), (matching, capacity)
    # The budget's simulated alternatives compare with the kept budget's own figures, from the same tuning.
    best = re.search(rf"{tokens:,} serves best for the cost goal \({FIGURES}", budget.reason)
    assert best is not None, budget.reason
    for a in budget.rejected:
        vs = re.fullmatch(r"simulated .* vs ([\d,]+) ms, ([\d.]+) ms, [\d,]+ with ([\d,]+)", a.reason)
        assert vs is not None and vs.groups() == (*best.groups(), f"{tokens:,}"), a.reason
