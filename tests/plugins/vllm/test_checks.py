"""deployc_check_plan: the invariants vLLM enforces at start-up, with their exact messages."""

from __future__ import annotations

from pathlib import Path

import attrs

from deployc.diagnostics import Severity
from deployc.planner.plan import Plan
from deployc.spec.model import PlanSection
from deployc_vllm.checks import PLAN_KEYS, check_plan
from deployc_vllm.command import OWNED_FLAGS
from tests.contract_helpers import deploy
from tests.plugins.vllm.plans import HOSTILE, hostile_plan


def _with_knobs(plan: Plan, **changes: object) -> Plan:
    pool = plan.pools[0]
    return attrs.evolve(plan, pools=(attrs.evolve(pool, knobs=attrs.evolve(pool.knobs, **changes)),))


def _messages(plan: Plan) -> list[str]:
    return [d.format_text() for d in check_plan(deploy(plan))]


def test_fixture_plans_are_clean(plans: dict[str, Plan]) -> None:
    for name, plan in plans.items():
        assert check_plan(deploy(plan)) == [], name


def test_budget_below_context_without_chunked_prefill(plans: dict[str, Plan]) -> None:
    plan = _with_knobs(plans["h100-tp1"], chunked_prefill=False, max_num_batched_tokens=4096)
    assert _messages(plan) == [
        "h100-tp1.toml: error: max_num_batched_tokens 4,096 is below max_model_len 8,192 with chunked prefill off: "
        "vLLM refuses to start (USER-PAINS #14) [DPC402]\n"
        "  hint: enable chunked prefill, or raise the token budget to at least 8,192"]


def test_budget_below_max_num_seqs(plans: dict[str, Plan]) -> None:
    plan = _with_knobs(plans["h100-tp1"], max_num_seqs=512, max_num_batched_tokens=256)
    assert _messages(plan) == [
        "h100-tp1.toml: error: max_num_batched_tokens 256 is below max_num_seqs 512: vLLM requires room for one "
        "token per running sequence [DPC402]\n  hint: raise the token budget to at least 512"]


def test_fraction_above_free_memory(plans: dict[str, Plan]) -> None:
    plan = _with_knobs(plans["t4-awq"], memory_fraction=0.99)
    (diag,) = check_plan(deploy(plan))
    assert diag.message == (
        "vLLM 0.33.0 requests gpu_memory_utilization × total = 14.8 GiB at start-up and refuses to start unless that "
        "much is free once its CUDA context, NCCL and cuBLAS buffers exist (request_memory, vllm/v1/worker/utils.py); "
        "memory other processes hold is not subtracted from the request: with reserved_memory_gib = 0.5, only 14.5 "
        "GiB is free, so vLLM stops with \"Free memory on device ... is less than desired GPU memory utilization\" "
        "(USER-PAINS #11)")


def test_fraction_out_of_range(plans: dict[str, Plan]) -> None:
    plan = _with_knobs(plans["h100-tp1"], memory_fraction=0.0)
    assert [d.message for d in check_plan(deploy(plan))] == ["gpu_memory_utilization 0.0 is outside (0, 1]"]


def test_kv_dtype_must_match(plans: dict[str, Plan]) -> None:
    plan = _with_knobs(plans["h100-tp1"], kv_cache_dtype="float16")
    assert [d.message for d in check_plan(deploy(plan))] == [
        "a float16 KV cache with bfloat16 activations: vLLM 0.33.0 requires a 16-bit KV cache to match the model dtype"]


def test_custom_all_reduce_on_pcie_tp4_warns(plans: dict[str, Plan]) -> None:
    plan = _with_knobs(plans["l40s-tp4-pcie"], custom_all_reduce=True)
    (diag,) = check_plan(deploy(plan))
    assert diag.severity is Severity.WARNING
    assert diag.message == ("TP4 over pcie4 with vLLM's custom all-reduce on: it is only supported for two PCIe GPUs "
                            "(vllm#8303)")


def test_extra_args_rules(tmp_path: Path) -> None:
    plan = hostile_plan(tmp_path, ["--tensor-parallel-size", "4", "--swap-space", "16", "--served-model-name x",
                                   "--response-role", f"a --trust-remote-code {HOSTILE}", "--max-logprobs"])
    assert [d.message for d in check_plan(deploy(plan))] == [
        "extra_args sets --tensor-parallel-size, which deployc derives from the plan",
        "extra_args item '--served-model-name x' holds several words",
        "extra_args value 'a --trust-remote-code we ird;$(touch /tmp/pwned)`id`\\'q\"\\\\ $HOME ~ * ?' hides the flag "
        "--trust-remote-code",
        "vllm serve 0.33.0 would reject the command of 'hostile': --tensor-parallel-size is given twice",
        "vllm serve 0.33.0 would reject the command of 'hostile': --swap-space does not exist in vLLM 0.33.0: "
        "removed: the V1 engine preempts by recomputation, it does not swap KV blocks to CPU",
        "vllm serve 0.33.0 would reject the command of 'hostile': --served-model-name x is not a flag of vllm serve "
        "0.33.0 (did you mean --served-model-name?)",
        "vllm serve 0.33.0 would reject the command of 'hostile': --max-logprobs expects a value",
    ]
    assert {d.key_path for d in check_plan(deploy(plan))} == {"backends.vllm.extra_args"}


def test_extra_args_setting_a_planned_flag_points_at_its_plan_key(tmp_path: Path) -> None:
    plan = hostile_plan(tmp_path, ["--max-num-seqs", "512", "--gpu-memory-utilization=0.95", "--enforce-eager"])
    refusals = [(d.message, d.hint) for d in check_plan(deploy(plan)) if "deployc derives" in d.message]
    assert refusals == [
        ("extra_args sets --max-num-seqs, which deployc derives from the plan",
         "pin it in the spec instead: [plan].max_num_seqs"),
        ("extra_args sets --gpu-memory-utilization, which deployc derives from the plan",
         "pin it in the spec instead: [plan].memory_fraction"),
        ("extra_args sets --enforce-eager, which deployc derives from the plan",
         "change the spec (or the option this backend offers) instead"),
    ]


def test_every_plan_key_named_is_a_pin_and_its_flag_is_refused() -> None:
    assert set(PLAN_KEYS) <= OWNED_FLAGS
    assert set(PLAN_KEYS.values()) <= {f.name for f in attrs.fields(PlanSection)}


def test_image_tag_override_is_said(tmp_path: Path, plans: dict[str, Plan]) -> None:
    plan = plans["h100-tp1"]
    spec = attrs.evolve(plan.target.spec, operations=attrs.evolve(plan.target.spec.operations, image_tag="v0.34.1"))
    plan = attrs.evolve(plan, target=attrs.evolve(plan.target, spec=spec))
    (diag,) = check_plan(deploy(plan))
    assert diag.severity is Severity.WARNING and diag.key_path == "operations.image_tag"
    assert diag.message == ("The spec pins image tag 'v0.34.1'; every flag here was checked against vLLM 0.33.0's "
                            "flag set (image tag v0.33.0). If 'v0.34.1' is another vLLM version, check the flags "
                            "against it.")


def test_values_that_read_as_flags_are_refused_at_their_key(plans: dict[str, Plan]) -> None:
    plan = plans["h100-tp1"]
    model = attrs.evolve(plan.target.spec.model, served_name="--trust-remote-code")
    plan = attrs.evolve(plan, target=attrs.evolve(plan.target, spec=attrs.evolve(plan.target.spec, model=model)))
    assert [d.format_text() for d in check_plan(deploy(plan))] == [
        "h100-tp1.toml: error: model.served_name: '--trust-remote-code' starts with '-': vllm serve would read it as "
        "a flag, not as the served name [DPC402]"]
