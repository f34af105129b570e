"""The ranked fixes of a plan that misses its SLO say what planning the fixed spec gives, offer dropping a binding
[plan] pin, and leave out fixes that barely help or cannot help."""

from __future__ import annotations

import math
from pathlib import Path

from deployc import api
from deployc.planner.plan import Plan
from deployc.planner.serving.verdict import miss_ratio
from deployc.planner.slo_fixes import helps

HEADER = 'version = 1\nname = "fix-case"\n'


def write(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(HEADER + body)
    return path


def fixes_of(plan: Plan) -> list[str]:
    """The ranked fixes of the plan's first error that carries them."""
    hinted = next(d for d in plan.diagnostics if d.hint is not None and d.hint.startswith("try, best first: "))
    assert hinted.hint is not None
    return hinted.hint.removeprefix("try, best first: ").split("; ")


def figures(plan: Plan) -> str:
    """The fix text's figures for a plan: ``TP2×DP4: TTFT p99 1,051 ms, ITL p99 33.6 ms, 587 output tokens/s``."""
    pool = plan.primary
    assert pool.serving is not None
    r = pool.serving
    return (f"{pool.layout.label()}: TTFT p99 {r.ttft_ms.p99:,.0f} ms, ITL p99 {r.itl_ms.p99:.1f} ms, "
            f"{r.output_tokens_per_s:,.0f} output tokens/s")


def ratio(plan: Plan) -> float:
    pool = plan.primary
    assert pool.serving is not None and pool.verdict is not None
    return miss_ratio(pool.serving, pool.verdict)


LONG_PROMPTS_ON_L4 = """
[model]
id = "meta-llama/Llama-3.1-8B-Instruct"
[hardware]
gpu = "L4"
gpus_per_node = {gpus}
[workload]
prompt_tokens = {{ mean = 2500, p99 = 7500 }}
output_tokens = {{ mean = 400, p99 = 1200 }}
request_rate_per_s = 1.5
[slo]
ttft_ms = {{ p99 = 2000 }}
itl_ms = {{ p99 = 50 }}
goal = "cost"
"""


def test_the_more_gpus_fix_gives_the_plan_of_that_many_gpus(tmp_path: Path) -> None:
    # The 8 × L4 fix once said "still misses (TP2×DP2: TTFT p99 2,367 ms ...)", the 4 × L4 fix's layout and figures:
    # its winner was simulated in full but not confirmed, where planning 8 × L4 (and `deployc size`) promotes
    # TP2×DP4, which serves.
    plan, _ = api.plan(write(tmp_path, "one", LONG_PROMPTS_ON_L4.format(gpus=1)))
    more = {fix.split(":")[0]: fix.partition(": ")[2] for fix in fixes_of(plan) if " × L4" in fix.split(":")[0]}
    assert "8 × L4" in more
    for label, outcome in more.items():
        gpus = int(label.split(" × ")[0])
        fixed, _ = api.plan(write(tmp_path, f"gpus{gpus}", LONG_PROMPTS_ON_L4.format(gpus=gpus)))
        assert fixed.primary.verdict is not None
        assert outcome.startswith("serves (") == fixed.primary.verdict.serves, label
        assert outcome.endswith(f"({figures(fixed)})"), label
    assert more["8 × L4"].startswith("serves (TP2×DP4: ")


H100_BEHIND_EIGHT_SLOTS = """
[model]
id = "meta-llama/Llama-3.1-8B-Instruct"
[hardware]
gpu = "H100"
[workload]
prompt_tokens = { mean = 1000, p99 = 3000 }
output_tokens = { mean = 300, p99 = 900 }
concurrency = 128
[slo]
ttft_ms = { p99 = 3000 }
itl_ms = { p99 = 60 }
"""


def test_a_binding_max_num_seqs_pin_is_offered_dropped_first(tmp_path: Path) -> None:
    # 128 users behind 8 pinned slots queue for 31 s; the fixes were more GPUs and fewer users, never the pin.
    plan, _ = api.plan(write(tmp_path, "pinned", H100_BEHIND_EIGHT_SLOTS + "[plan]\nmax_num_seqs = 8\n"))
    assert plan.primary.verdict is not None and not plan.primary.verdict.serves
    own, _ = api.plan(write(tmp_path, "own", H100_BEHIND_EIGHT_SLOTS))
    assert own.primary.verdict is not None and own.primary.verdict.serves
    assert fixes_of(plan)[0] == (f"remove [plan].max_num_seqs = 8 (deployc would choose "
                                 f"{own.primary.knobs.max_num_seqs}): serves ({figures(own)})")


# 192 users: at 128 the pinned plan (TP1×PP2, FP8 KV) serves once the step rule prices a step as the simulation does
# (1,024 tokens a step, ITL p99 46.7 ms); at 192 it misses and deployc's own TP1×DP4 serves.
FOUR_L40S = """
[model]
id = "meta-llama/Llama-3.1-8B-Instruct"
[hardware]
gpu = "L40S"
gpus_per_node = 4
[workload]
prompt_tokens = { mean = 1500, p99 = 4000 }
output_tokens = { mean = 400, p99 = 1200 }
concurrency = 192
[slo]
ttft_ms = { p99 = 2000 }
itl_ms = { p99 = 50 }
"""


def test_a_binding_layout_pin_is_offered_dropped(tmp_path: Path) -> None:
    plan, _ = api.plan(write(tmp_path, "pinned", FOUR_L40S + "[plan]\ntp = 1\ndp = 1\n"))
    assert plan.primary.verdict is not None and not plan.primary.verdict.serves
    own, _ = api.plan(write(tmp_path, "own", FOUR_L40S))
    assert own.primary.verdict is not None and own.primary.verdict.serves
    assert (f"remove [plan].tp = 1, [plan].dp = 1 (deployc would choose {own.primary.layout.label()}): serves "
            f"({figures(own)})") in fixes_of(plan)


LONG_PROMPTS_ON_L40S = """
[model]
id = "meta-llama/Llama-3.1-8B-Instruct"
[hardware]
gpu = "L40S"
[workload]
prompt_tokens = { mean = 4000, p99 = 12000 }
output_tokens = { mean = 200, p99 = 600 }
concurrency = 16
[slo]
ttft_ms = { p99 = 2000 }
itl_ms = { p99 = 100 }
[plan]
kv_cache_dtype = "fp8"
"""


def test_a_binding_token_budget_pin_is_offered_dropped_with_the_other_pins_kept(tmp_path: Path) -> None:
    plan, _ = api.plan(write(tmp_path, "pinned", LONG_PROMPTS_ON_L40S + "max_num_batched_tokens = 256\n"))
    assert plan.primary.verdict is not None and not plan.primary.verdict.serves
    own, _ = api.plan(write(tmp_path, "own", LONG_PROMPTS_ON_L40S))  # the KV dtype pin kept
    assert own.primary.verdict is not None and own.primary.verdict.serves
    assert fixes_of(plan)[0] == (f"remove [plan].max_num_batched_tokens = 256 (deployc would choose "
                                 f"{own.primary.knobs.max_num_batched_tokens}): serves ({figures(own)})")


SEVENTY_B_ON_TWO_H100 = """
[model]
id = "meta-llama/Llama-3.1-70B-Instruct"
[hardware]
gpu = "H100"
gpus_per_node = 2
[workload]
prompt_tokens = { mean = 2000 }
output_tokens = { mean = 400 }
concurrency = 64
[slo]
ttft_ms = { p99 = 2000 }
itl_ms = { p99 = 30 }
"""


def test_a_pin_deployc_would_choose_anyway_is_not_offered_dropped(tmp_path: Path) -> None:
    own, _ = api.plan(write(tmp_path, "own", SEVENTY_B_ON_TWO_H100))
    assert own.primary.layout.tp == 2
    plan, _ = api.plan(write(tmp_path, "pinned", SEVENTY_B_ON_TWO_H100 + "[plan]\ntp = 2\n"))
    assert plan.primary.verdict is not None and not plan.primary.verdict.serves
    assert not [fix for fix in fixes_of(plan) if fix.startswith("remove ")]


def test_a_fix_that_still_misses_about_as_much_is_not_listed(tmp_path: Path) -> None:
    # An FP8 KV cache once was: TTFT p99 7,204 -> 6,799 ms against 2,000 (a 6% smaller miss, within the noise of a
    # simulated p99).
    plan, _ = api.plan(write(tmp_path, "plan", SEVENTY_B_ON_TWO_H100))
    fp8, _ = api.plan(write(tmp_path, "fp8", SEVENTY_B_ON_TWO_H100 + '[plan]\nkv_cache_dtype = "fp8"\n'))
    assert fp8.primary.verdict is not None and not fp8.primary.verdict.serves
    assert 0.9 * ratio(plan) < ratio(fp8) < ratio(plan)  # it helps, by less than a tenth
    fixes = fixes_of(plan)
    assert not [fix for fix in fixes if fix.startswith('kv_cache_dtype = "fp8"')]
    assert fixes  # the fixes that help are still there


def test_a_fix_is_listed_when_it_misses_clearly_less_or_a_better_kind_of_miss() -> None:
    assert not helps((1, 116 / 100), (1, 117 / 100))  # ITL p99 117 -> 116 ms against 100
    assert helps((1, 1.05), (1, 1.17))
    assert helps((1, 3.0), (2, 1.29))  # keeps up, where the plan cannot
    assert not helps((2, 1.4), (1, 3.0))
    assert not helps((3, math.inf), (3, math.inf))  # still refuses requests


ONE_L4_AT_A_TIGHT_ITL = """
[model]
id = "meta-llama/Llama-3.1-8B-Instruct"
[hardware]
gpu = "L4"
[workload]
prompt_tokens = {{ mean = 1000 }}
output_tokens = {{ mean = 300 }}
concurrency = {users}
[slo]
itl_ms = {{ p99 = 25 }}
"""


def test_no_lighter_load_is_offered_when_one_request_alone_misses_the_itl_target(tmp_path: Path) -> None:
    # One L4 decodes one request of Llama-3.1-8B in ~37 ms a token: "a load of 1 concurrent users: still misses
    # (ITL p99 37.2 ms)" was offered against a 25 ms target.
    plan, _ = api.plan(write(tmp_path, "eight", ONE_L4_AT_A_TIGHT_ITL.format(users=8)))
    alone, _ = api.plan(write(tmp_path, "one", ONE_L4_AT_A_TIGHT_ITL.format(users=1)))
    assert alone.primary.verdict is not None and not alone.primary.verdict.serves
    fixes = fixes_of(plan)
    assert not [fix for fix in fixes if fix.startswith("a load of ")]
    assert [fix for fix in fixes if " × L4: serves (" in fix]  # more GPUs split the step


SGLANG_BF16_ON_L4 = """
[model]
id = "meta-llama/Llama-3.1-8B-Instruct"
quantization = "{weights}"
max_context_tokens = 8192
[hardware]
gpu = "L4"
[workload]
prompt_tokens = {{ mean = 1000, p99 = 4000 }}
output_tokens = {{ mean = 200, p99 = 800 }}
concurrency = 16
[slo]
ttft_ms = {{ p99 = 1500 }}
itl_ms = {{ p99 = 300 }}
[operations]
backend = "sglang"
"""


def test_a_fix_for_a_plan_capped_at_smaller_steps_plans_its_spec_from_the_usual_budget(tmp_path: Path) -> None:
    # BF16 weights fit one L4 under SGLang only with 2,048-token steps (budget_cap); the FP8-weights fix inherited
    # that cap and said "serves (TTFT p99 541 ms)", where planning the spec with FP8 weights gave a TTFT p99 miss of
    # several seconds (its tuning compared 2,048 and 8,192 tokens a step at the 8,192-token memory: 0.95 GiB of KV).
    # Each budget now tuned at its own memory, planning the FP8 spec serves, and the fix says what that plan gives.
    plan, _ = api.plan(write(tmp_path, "bf16", SGLANG_BF16_ON_L4.format(weights="none")))
    assert plan.primary.knobs.max_num_batched_tokens == 2048
    fixed, _ = api.plan(write(tmp_path, "fp8", SGLANG_BF16_ON_L4.format(weights="fp8")))
    assert fixed.primary.verdict is not None and fixed.primary.verdict.serves
    fp8 = [fix for fix in fixes_of(plan) if fix.startswith('quantization = "fp8"')]
    assert fp8 == [f'quantization = "fp8": serves ({figures(fixed)})']


def test_each_token_budget_is_tuned_with_the_kv_cache_it_leaves(tmp_path: Path) -> None:
    """SGLang reserves 1.5 MiB a token of its chunk: 8B FP8 on one L4 kept 0.95 GiB of KV at 8,192 tokens a step and
    10 GiB at 2,048. Both were simulated at the first (the planning budget's memory), 8,192 won, and the plan missed
    TTFT p99 8× (12,027 ms against 1,500) with 12 of 16 users running, while 2,048 at its own memory serves."""
    fixed, _ = api.plan(write(tmp_path, "fp8", SGLANG_BF16_ON_L4.format(weights="fp8")))
    pool = fixed.primary
    assert pool.knobs.max_num_batched_tokens == 2048
    assert pool.knobs.max_num_seqs == 16  # every user runs: the cache 2,048-token steps leave holds them
    assert pool.memory.per_gpu.kv_cache_bytes > 8 * 2**30
    assert pool.verdict is not None and pool.verdict.serves


BF16_PINNED_ON_L4 = """
[model]
id = "meta-llama/Llama-3.1-8B-Instruct"
[hardware]
gpu = "L4"
[workload]
prompt_tokens = { mean = 1000 }
output_tokens = { mean = 300 }
concurrency = 8
[slo]
itl_ms = { p99 = 45 }
[plan]
quantization = "bf16"
kv_cache_dtype = "bfloat16"
"""


def test_a_binding_quantization_pin_dropped_is_offered_once(tmp_path: Path) -> None:
    # Dropping quantization = "bf16" plans FP8 weights on an L4: the same plan as the FP8-weights fix, listed once.
    plan, _ = api.plan(write(tmp_path, "pinned", BF16_PINNED_ON_L4))
    assert plan.primary.verdict is not None and not plan.primary.verdict.serves
    own, _ = api.plan(write(tmp_path, "own", BF16_PINNED_ON_L4.replace('quantization = "bf16"\n', "")))
    assert own.primary.knobs.weights_format == "fp8"
    fixes = fixes_of(plan)
    assert fixes[0] == f'remove [plan].quantization = "bf16" (deployc would choose "fp8"): serves ({figures(own)})'
    assert not [fix for fix in fixes if fix.startswith('quantization = "fp8"')]
