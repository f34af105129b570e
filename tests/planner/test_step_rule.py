"""The token budget's step rule prices its steps with the serving simulation's own step costs.

New-user trial: the rule priced a chunked-prefill step as a decode step plus a whole prefill pass,
~1.7× what the simulation charges for the same step (Llama-3.1-8B on one L40S: 53-59 ms quoted, ITL
p99 ~30 ms simulated), and the budget decision's reason quoted that figure beside the simulation's.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest

from deployc import api
from deployc.planner import knobs, load
from deployc.planner.decisions import Decision

PROMPT, OUTPUT = 1000, 200
CHAT_8B_ON_ONE_L40S = f"""version = 1
name = "step-rule"
[model]
id = "meta-llama/Llama-3.1-8B-Instruct"
[hardware]
gpu = "L40S"
[workload]
kind = "chat"
prompt_tokens = {{ mean = {PROMPT}, p99 = 4000 }}
output_tokens = {{ mean = {OUTPUT}, p99 = 800 }}
request_rate_per_s = 2
[slo]
ttft_ms = {{ p99 = 2000 }}
itl_ms = {{ p99 = 50 }}
goal = "latency"
"""
STEP = re.compile(r"step of ([\d,]+) tokens: (\d+) decodes beside a ([\d,]+)-token prompt chunk \(([\d,]+) prompt "
                  r"tokens before it\)")
DECODE = re.compile(r"decode step at the planned batch \((\d+) sequences, ([\d,]+) tokens of context\)")


def _number(text: str) -> int:
    return int(text.replace(",", ""))


def _planned_with_costs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Decision, Any]:
    """The plan's budget decision, and the step costs its own (last) simulation ran with."""
    costs: list[Any] = []
    simulate = load.simulate_pool

    def spy(*args: Any, cost: Any, **kwargs: Any) -> Any:
        costs.append(cost)
        return simulate(*args, cost=cost, **kwargs)

    monkeypatch.setattr(load, "simulate_pool", spy)
    api.clear_plan_cache()  # cold: every simulation runs (the memo would answer without the simulation)
    spec = tmp_path / "spec.toml"
    spec.write_text(CHAT_8B_ON_ONE_L40S)
    plan, _ = api.plan(spec)
    budget = plan.decision("max_num_batched_tokens")
    assert budget is not None and costs
    return budget, costs[-1]


def test_each_budget_s_step_is_what_the_simulation_charges_for_it(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    budget, cost = _planned_with_costs(tmp_path, monkeypatch)
    decode = [DECODE.fullmatch(q.label) for q in budget.numbers]
    (batch, context), = [(int(m.group(1)), _number(m.group(2))) for m in decode if m is not None]
    assert context == PROMPT + OUTPUT / 2  # the decodes' mean context: a mean prompt and half a mean output
    steps = {}
    for q in budget.numbers:
        m = DECODE.fullmatch(q.label)
        if m is not None:
            assert q.value == round(cost(0, 0, 0.0, batch, context) * 1e3, 3)
            continue
        m = STEP.fullmatch(q.label)
        assert m is not None, q.label
        tokens, decodes, chunk, before = (_number(g) for g in m.groups())
        # The budget counts the decodes' tokens; the chunk's context is the mean start of a mean prompt's chunks.
        assert (decodes, chunk) == (batch, tokens - batch)
        assert before == round(chunk * (math.ceil(PROMPT / chunk) - 1) / 2)
        simulated = cost(chunk, 1, chunk * (math.ceil(PROMPT / chunk) - 1) / 2, decodes, context) * 1e3
        assert q.value == round(simulated, 2), q.label
        steps[tokens] = simulated
    assert sorted(steps) == [b for b in knobs.TOKEN_BUDGETS if b >= batch]
    # The rule's pick: the largest budget whose step meets the 50 ms target, quoted at the simulation's price.
    rule = max(b for b, ms in steps.items() if ms <= 50)
    assert budget.reason.endswith(
        f"The step rule: the largest per-step budget whose steps stay within the ITL p99 target (50 ms) when a prompt "
        f"chunk is co-scheduled: {rule:,} tokens ({steps[rule]:.1f} ms)")


def test_the_rule_s_next_smaller_budget_is_simulated_beside_it(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # The rule keeps the most prompt a step that meets the target; for the latency goal a smaller budget trades
    # TTFT for ITL: the simulation weighs both (here 256 tokens: ITL p99 ~29 ms against ~45 ms at the rule's 512).
    budget, _ = _planned_with_costs(tmp_path, monkeypatch)
    found = re.match(r"simulated \(400 requests per replica\) with ([\d, ]+) tokens per step, ([\d,]+) serves best "
                     r"for the latency goal", budget.reason)
    assert found is not None, budget.reason
    tried = [_number(b) for b in found.group(1).split(", ")]
    assert "The step rule: the largest per-step budget whose steps stay within" in budget.reason
    assert tried == [256, 512, 2048, 8192]  # the rule's 512, the next smaller, and the engines' defaults
    assert budget.value == _number(found.group(2)) == 256


def _linear_ms(prefill: int, sequences: int, before: float, decodes: int, context: float) -> float:
    """A step cost in seconds: 10 ms, 0.1 ms a decode, 0.05 ms a prompt token, 1 µs a token before the chunk."""
    del sequences, context
    return (10 + 0.1 * decodes + 0.05 * prefill + 0.001 * before * (prefill > 0)) / 1e3


def test_a_mixed_step_carries_the_decodes_and_the_rest_of_the_budget_as_a_chunk() -> None:
    step = knobs.BudgetStep(decodes=24, decode_context=1100, prompt_tokens=1000, cached_tokens=200)
    # 1,024 tokens: 1,000 of prompt; 200 cached, so 800 prefilled in one chunk, after the 200 cached.
    assert step.chunk(1024) == (1000, 200)
    # 512 tokens: 488 a chunk, 2 chunks of the 800 to prefill: they start after 200 and 688, 444 on average.
    assert step.chunk(512) == (488, 444)
    assert step.seconds(512, _linear_ms) == pytest.approx((10 + 2.4 + 24.4 + 0.444) / 1e3)
    d = knobs.token_budget("latency", 40.0, "ITL p99", step, _linear_ms)
    # 256: 10 + 2.4 + 11.6 + 0.548 (4 chunks of 232: 200 + 348) = 24.5 ms; 512: 37.2 ms; 1,024: 62.6 ms.
    assert d.value == 512
    assert d.reason == ("the largest per-step budget whose steps stay within the ITL p99 target (40 ms) when a "
                        "prompt chunk is co-scheduled: 512 tokens (37.2 ms)")
    assert [(a.value, a.reason) for a in d.rejected][:1] == [
        (1024, "a step carrying a full chunk takes 62.6 ms, above the ITL p99 target of 40 ms")]


def test_a_prefill_first_step_runs_the_whole_budget_while_the_decodes_wait() -> None:
    step = knobs.BudgetStep(decodes=24, decode_context=1100, prompt_tokens=1000, cached_tokens=0, mixed=False)
    assert step.chunk(512) == (512, 256)  # two chunks, at 0 and 512
    # The decodes' gap: the 512-token prefill step alone (10 + 25.6 + 0.256 ms), then their own step (12.4 ms).
    assert step.seconds(512, _linear_ms) == pytest.approx((35.856 + 12.4) / 1e3)
    assert step.label(512) == "a 512-token prefill step (256 prompt tokens before it) and a decode step of 24"
    d = knobs.token_budget("throughput", 40.0, "ITL p99", step, _linear_ms)
    assert d.value == 256
    # 256: (10 + 12.8 + 0.384) + 12.4 = 35.6 ms (4 chunks of 256: 384 before on average); 512: 48.3 ms.
    assert d.reason.endswith("when a decode waits for a prefill step: 256 tokens (35.6 ms)")
