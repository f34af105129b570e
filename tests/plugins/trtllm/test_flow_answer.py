"""TensorRT-LLM's flow is decided once, by its capability answer; the plan keeps it and the emitter follows it."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from deployc.api import plan
from deployc.planner.plan import Plan
from deployc_trtllm.capability import capability, deployment_flow
from deployc_trtllm.emission import emit
from tests.conftest import REPO
from tests.contract_helpers import deploy, facts


def _plan(stem: str, tmp_path: Path | None = None, table: str = "") -> Plan:
    path = REPO / "samples" / f"{stem}.toml"
    if table and tmp_path is not None:
        copy = tmp_path / f"{stem}.toml"
        copy.write_text(path.read_text() + f"\n[backends.trtllm]\n{table}\n")
        path = copy
    result, _ = plan(path, "trtllm", display_name=path.name)
    return result


def _paths(p: Plan) -> set[str]:
    return {a.path for a in emit(deploy(p)).artifacts}


def test_the_capability_answer_names_its_flow(tmp_path: Path) -> None:
    h100 = _plan("llama8b-fp8-h100-stable")  # a 16-bit checkpoint quantized to FP8: only quantize.py does that
    target = h100.target
    assert capability(facts(target, "trtllm"), "bf16", "bfloat16").flow == "pytorch"
    assert capability(facts(target, "trtllm"), "fp8", "bfloat16").flow == "engine"
    pinned = _plan("llama8b-fp8-h100-stable", tmp_path, 'flow = "engine"').target
    assert capability(facts(pinned, "trtllm"), "bf16", "bfloat16").flow == "engine"
    refused = capability(facts(target, "trtllm"), "mxfp4", "bfloat16")  # neither flow: refused
    assert not refused.supported and refused.flow is None


def test_the_planned_pools_carry_the_chosen_precisions_flow(tmp_path: Path) -> None:
    engine = _plan("llama8b-fp8-h100-stable")
    assert [p.flow for p in deploy(engine).pools] == ["engine"] * len(engine.pools)
    pytorch = _plan("llama70b-a100-nvlink")
    assert [p.flow for p in deploy(pytorch).pools] == ["pytorch"] * len(pytorch.pools)
    assert "build-engine.sh" in _paths(engine) and "build-engine.sh" not in _paths(pytorch)


def test_the_emitter_follows_the_planned_flow_not_its_own_rule() -> None:
    p = _plan("llama70b-a100-nvlink")  # bf16 on A100: the PyTorch flow serves it
    as_engine = attrs.evolve(p, pools=tuple(attrs.evolve(pool, flow="engine") for pool in p.pools))
    assert deployment_flow(deploy(as_engine)) == "engine"
    assert {"build.sh", "build-engine.sh"} <= _paths(as_engine)


def test_a_plan_without_the_answer_is_refused_with_its_reason() -> None:
    p = _plan("llama70b-a100-nvlink")
    bare = attrs.evolve(p, pools=tuple(attrs.evolve(pool, flow=None) for pool in p.pools))
    with pytest.raises(ValueError) as exc:
        emit(deploy(bare))
    assert str(exc.value) == ("the plan carries no TensorRT-LLM flow for a pool (it was made without this backend's "
                              "capability answer)")
