"""[plan] pins: kept in plan.json and the engine flags, explained against deployc's own choice, or refused."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from deployc.api import build, lock_text, plan
from deployc.diagnostics import PlanError
from deployc.planner import planner
from deployc.planner.decisions import Decision
from deployc.planner.pins import pinned
from deployc.planner.plan import Plan
from deployc.plugins import default_registry
from tests.conftest import MINIMAL_SPEC

INSTALLED = default_registry().names()
GIB = 1 << 30
SPEC_70B = """\
version = 1
name = "pins"

[model]
id = "meta-llama/Llama-3.1-70B-Instruct"

[hardware]
gpu = "H100 SXM"
gpus_per_node = 4

[workload]
prompt_tokens = { mean = 2000, p99 = 6000 }
output_tokens = { mean = 300, p99 = 1000 }
concurrency = 32

[slo]
itl_ms = { p99 = 60 }
goal = "latency"
"""
PLAN_LINE = len(SPEC_70B.splitlines()) + 3  # the first key under [plan]
KNOB_PINS = "max_num_seqs = 24\nmax_num_batched_tokens = 4096\nmemory_fraction = 0.85\nmax_model_len = 8192"

Writer = Callable[..., Path]


def _plan(write_spec: Writer, pins: str | None, base: str = SPEC_70B, backend: str | None = None,
          name: str = "spec.toml") -> Plan:
    text = base if pins is None else f"{base}\n[plan]\n{pins}\n"
    result, _ = plan(write_spec(text, name), backend=backend, display_name="spec.toml")
    return result


def _decision(p: Plan, decision_id: str) -> Decision:
    found = p.decision(decision_id)
    assert found is not None, [d.id for d in p.decisions]
    return found


def _plan_error(write_spec: Writer, pins: str, base: str = SPEC_70B) -> list[str]:
    with pytest.raises(PlanError) as exc:
        _plan(write_spec, pins, base)
    return [d.format_text() for d in exc.value.diagnostics]


def test_layout_and_precision_pins_explain_deployc_s_own_choice(write_spec: Writer) -> None:
    own = _plan(write_spec, None, name="own.toml")
    assert own.primary.layout.tp != 2 and own.primary.knobs.weights_format != "fp8"  # so the pins change something
    p = _plan(write_spec, 'tp = 2\nquantization = "fp8"\nkv_cache_dtype = "fp8"')
    assert (p.primary.layout.tp, p.primary.knobs.weights_format, p.primary.knobs.kv_cache_dtype) == (2, "fp8", "fp8")
    for decision_id, pins in (("parallelism", "[plan].tp = 2"), ("quantization", '[plan].quantization = "fp8"'),
                              ("kv_cache_dtype", '[plan].kv_cache_dtype = "fp8"')):
        theirs = _decision(own, decision_id)
        assert _decision(p, decision_id).reason == (
            f"pinned by the spec ({pins}); deployc would choose {theirs.value}: {theirs.reason}")
    # Every layout searched has TP2; the decision's numbers are those of the pinned layout.
    assert all(a.value.startswith("TP2") for a in _decision(p, "parallelism").rejected)  # type: ignore[union-attr]
    assert _decision(p, "parallelism").value == p.primary.layout.label()


def test_knob_pins_explain_the_choice_deployc_makes_with_the_other_pins(write_spec: Writer) -> None:
    layout = "tp = 2\npp = 1\ndp = 2"
    p = _plan(write_spec, f"{layout}\n{KNOB_PINS}")
    k = p.primary.knobs
    assert (k.max_num_seqs, k.max_num_batched_tokens, k.memory_fraction, k.max_model_len) == (24, 4096, 0.85, 8192)
    for index, (key, value) in enumerate((("max_num_seqs", 24), ("max_num_batched_tokens", 4096),
                                          ("memory_fraction", 0.85), ("max_model_len", 8192))):
        others = "\n".join(line for line in KNOB_PINS.splitlines() if not line.startswith(key))
        theirs = _decision(_plan(write_spec, f"{layout}\n{others}", name=f"{key}.toml"), key)
        assert theirs.value != value  # each pin overrides a different choice
        mine = _decision(p, key)
        assert mine.value == value
        assert mine.reason.startswith(f"pinned by the spec ([plan].{key} = {value:g}); deployc would choose "
                                      f"{theirs.value}: "), index
        # The budget too: explained against the one deployc's simulation tunes, not the step rule's pick it starts
        # from (with a step priced as the simulation prices it, the rule said 512 and deployc chose 256).
        if key != "memory_fraction":  # its reason is the engine's meaning of the fraction, for either value
            assert mine.reason.endswith(theirs.reason)
    # The pinned fraction is what memory is planned with (vLLM: a fraction of the GPU's total memory).
    assert p.backend.name == "vllm"
    assert p.primary.memory.per_gpu.usable_bytes == int(p.primary.memory.per_gpu.total_bytes * 0.85)


def test_pinned_values_reach_plan_json_and_the_vllm_flags(write_spec: Writer, tmp_path: Path) -> None:
    spec = write_spec(f'{SPEC_70B}\n[plan]\ntp = 2\ndp = 2\nquantization = "fp8"\n{KNOB_PINS}\n')
    build(spec, tmp_path / "out", backend="vllm", accept_slo_miss=True)  # the flags, whatever the verdict
    doc = json.loads((tmp_path / "out" / "plan.json").read_text())
    (pool,) = doc["pools"]
    assert {k: pool["parallelism"][k] for k in ("tp", "pp", "dp")} == {"tp": 2, "pp": 1, "dp": 2}
    assert {k: pool["knobs"][k] for k in ("weights_format", "max_num_seqs", "max_num_batched_tokens",
                                           "memory_fraction", "max_model_len")} == {
        "weights_format": "fp8", "max_num_seqs": 24, "max_num_batched_tokens": 4096, "memory_fraction": 0.85,
        "max_model_len": 8192}
    run = (tmp_path / "out" / "run.sh").read_text()
    for flag in ("--tensor-parallel-size 2", "--data-parallel-size 2", "--quantization fp8", "--max-num-seqs 24",
                 "--max-num-batched-tokens 4096", "--gpu-memory-utilization 0.85", "--max-model-len 8192"):
        assert run.count(f"    {flag} \\\n") == 1, flag  # the DP replicas on one host are one vLLM engine
    lock = (tmp_path / "out" / "deployc.lock.toml").read_text()
    assert "\n[plan]\ntp = 2\ndp = 2\n" in lock


@pytest.mark.skipif("sglang" not in INSTALLED, reason="needs the SGLang backend")
def test_pinned_backend_is_forced_and_its_flags_follow_the_pins(write_spec: Writer, tmp_path: Path) -> None:
    own = _plan(write_spec, None, name="own.toml")
    assert own.backend.name != "sglang"
    spec = write_spec(f'{SPEC_70B}\n[plan]\nbackend = "sglang"\n{KNOB_PINS}\n')
    result = build(spec, tmp_path / "out", accept_slo_miss=True)  # the flags, whatever the verdict
    assert result.plan.backend.name == "sglang"
    theirs = _decision(own, "backend")
    assert _decision(result.plan, "backend").reason == (
        f'pinned by the spec ([plan].backend = "sglang"); deployc would choose {theirs.value}: {theirs.reason}')
    run = (tmp_path / "out" / "run.sh").read_text()
    for flag in ("--max-running-requests 24", "--chunked-prefill-size 4096", "--mem-fraction-static 0.85",
                 "--context-length 8192"):
        assert f" {flag} " in run.replace("\n", " "), flag


@pytest.mark.skipif("sglang" not in INSTALLED, reason="needs the SGLang backend")
def test_the_command_line_backend_overrides_the_pinned_one(write_spec: Writer) -> None:
    p = _plan(write_spec, 'backend = "sglang"', backend="vllm")
    assert p.backend.name == "vllm"
    assert not _decision(p, "backend").reason.startswith("pinned by the spec")


def test_without_pins_the_spec_is_planned_once(write_spec: Writer, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[object] = []
    real = planner._make_plan

    def counting(*args: object, **kwargs: object) -> Plan:
        calls.append(args)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(planner, "_make_plan", counting)
    p = _plan(write_spec, None, base=MINIMAL_SPEC)
    assert len(calls) == 1
    assert not any("pinned by the spec" in d.reason for d in p.decisions)
    assert "[plan]" not in lock_text(p.target.spec)
    _plan(write_spec, "max_num_seqs = 8", base=MINIMAL_SPEC, name="pinned.toml")
    assert len(calls) == 3  # the pinned plan and the one it is explained against


def test_a_pinned_layout_that_does_not_fit_fails_with_deployc_s_choice(write_spec: Writer) -> None:
    own = _plan(write_spec, None, name="own.toml").primary
    assert _plan_error(write_spec, 'tp = 1\npp = 1\ndp = 1\nquantization = "bf16"') == [
        f"spec.toml:{PLAN_LINE - 1}: error: plan: the plan pinned by the spec cannot be served: Llama-3.1-70B does "
        "not fit on 4 × H100 SXM: with TP1 each GPU needs 131.4 GiB of bf16 weights + 1.8 GiB of activations and "
        "runtime memory + 0.8 GiB of CUDA graphs and other buffers (vllm may use 0.92 × 79.6 GiB = 73.3 GiB in all), "
        "leaving KV room for 0 tokens; one p99 request needs 7,000 [DPC307]\n"
        f"  hint: deployc's own choice for the pinned keys: tp = {own.layout.tp}, pp = {own.layout.pp}, dp = "
        f'{own.layout.dp}, quantization = "{own.knobs.weights_format}" (fits with {own.layout.label()}, KV capacity '
        f"{own.memory.kv_capacity_tokens:,} tokens per replica)"]


def test_a_pinned_context_is_a_requirement_of_the_layout_search(write_spec: Writer) -> None:
    # At the budget the layout search plans with (8,192 tokens): the failed search's figures are at that budget.
    one_gpu = _plan(write_spec, 'tp = 1\npp = 1\ndp = 1\nquantization = "fp8"\nmax_num_batched_tokens = 8192',
                    name="fp8.toml").primary
    assert one_gpu.memory.kv_capacity_tokens < 100_000
    # Left free, the search takes a layout whose KV cache holds one 100,000-token sequence.
    p = _plan(write_spec, 'tp = 1\nquantization = "fp8"\nmax_model_len = 100000', name="free.toml").primary
    assert p.layout.tp == 1 and p.layout.gpus_per_replica > 1
    assert p.knobs.max_model_len == 100_000 and p.memory.kv_capacity_tokens >= 100_000
    # Pinned to one GPU, it cannot be served.
    own = _plan(write_spec, None, name="own.toml").primary
    m = one_gpu.memory
    assert _plan_error(write_spec, 'tp = 1\npp = 1\ndp = 1\nquantization = "fp8"\nmax_model_len = 100000') == [
        f"spec.toml:{PLAN_LINE - 1}: error: plan: the plan pinned by the spec cannot be served: Llama-3.1-70B does "
        f"not fit on 4 × H100 SXM: with TP1 each GPU needs {m.per_gpu.weights_bytes / GIB:.1f} GiB of fp8 weights "
        f"+ {m.per_gpu.activation_bytes / GIB:.1f} GiB of activations and runtime memory + "
        f"{(m.per_gpu.cuda_graph_bytes + m.per_gpu.other_bytes) / GIB:.1f} GiB of CUDA graphs and other buffers (vllm "
        f"may use {m.memory_fraction:g} × {m.per_gpu.total_bytes / GIB:.1f} GiB = {m.per_gpu.usable_bytes / GIB:.1f} "
        f"GiB in all), leaving KV room for {m.kv_capacity_tokens:,} tokens; one sequence of the pinned max_model_len "
        "needs 100,000 [DPC307]\n"
        f"  hint: deployc's own choice for the pinned keys: tp = {own.layout.tp}, pp = {own.layout.pp}, dp = "
        f'{own.layout.dp}, quantization = "{own.knobs.weights_format}", max_model_len = {own.knobs.max_model_len} '
        f"(fits with {own.layout.label()}, KV capacity {own.memory.kv_capacity_tokens:,} tokens per replica)"]


def test_a_token_budget_below_the_batch_fails(write_spec: Writer) -> None:
    own_pool = _plan(write_spec, None, name="own.toml").primary
    own = own_pool.knobs
    assert _plan_error(write_spec, "max_num_batched_tokens = 8") == [
        f"spec.toml:{PLAN_LINE}: error: plan.max_num_batched_tokens: pool main: max_num_batched_tokens 8 is below "
        f"max_num_seqs {own.max_num_seqs}: each engine step needs a token per running sequence [DPC307]\n"
        f"  hint: pin max_num_batched_tokens ≥ {own.max_num_seqs}, or max_num_seqs ≤ 8; deployc's own choice for "
        f"the pinned keys: max_num_batched_tokens = {own.max_num_batched_tokens} (fits with TP4, KV capacity "
        f"{own_pool.memory.kv_capacity_tokens:,} tokens per replica)"]


@pytest.mark.skipif("sglang" not in INSTALLED, reason="needs the SGLang backend")
def test_a_memory_fraction_that_over_commits_the_gpu_fails(write_spec: Writer) -> None:
    own = _plan(write_spec, None, backend="sglang", name="own.toml").primary
    with pytest.raises(PlanError) as exc:
        _plan(write_spec, "memory_fraction = 0.99", backend="sglang")
    (diag,) = exc.value.diagnostics
    assert (diag.rule, diag.key_path, diag.line, diag.value) == ("DPC307", "plan.memory_fraction", PLAN_LINE, "0.99")
    assert re.fullmatch(
        r"memory_fraction 0\.99 over-commits each H100 SXM by \d+\.\d\d GiB with TP4: sglang 0\.5\.23 reads it as a "
        r"share of total memory, for weights and the KV pool, and what it keeps outside that share \(activations, "
        r"the CUDA context, other processes\) no longer fits, even without CUDA graphs", diag.message), diag.message
    # The first bound is the layout's fraction at the search's planning budget; SGLang's cap follows the chunk, so
    # the finished plan (at its emitted chunk) may set a larger one.
    assert re.fullmatch(
        r"memory_fraction ≤ 0\.\d+ \(what deployc sets for this layout\); deployc's own choice for the pinned keys: "
        + re.escape(f"memory_fraction = {own.memory.memory_fraction:g} (fits with {own.layout.label()}, KV capacity "
                    f"{own.memory.kv_capacity_tokens:,} tokens per replica)"), diag.hint or ""), diag.hint


def test_a_layout_pin_leaving_gpus_idle_is_planned_as_given(write_spec: Writer) -> None:
    p = _plan(write_spec, "tp = 1\npp = 1\ndp = 3", base=MINIMAL_SPEC.replace(
        'gpu = "H100 SXM"', 'gpu = "H100 SXM"\ngpus_per_node = 4'))
    assert p.primary.layout.label() == "TP1×DP3"
    assert _decision(p, "parallelism").reason.startswith(
        "pinned by the spec ([plan].tp = 1, [plan].pp = 1, [plan].dp = 3); deployc would choose ")


def test_pinned_is_a_no_op_without_a_pin() -> None:
    decision = Decision(id="max_num_seqs", value=16, rule="DPC305", reason="the load")
    assert pinned(decision, None, "max_num_seqs") is decision
    assert pinned(decision, 16, "max_num_seqs").reason == (
        "pinned by the spec ([plan].max_num_seqs = 16); deployc would choose the same: the load")
    assert pinned(decision, 8, "max_num_seqs").reason == (
        "pinned by the spec ([plan].max_num_seqs = 8); deployc would choose 16: the load")
