"""vLLM 0.33's start-up memory request, said truthfully and checked against reserved_memory_gib."""

from __future__ import annotations

from pathlib import Path

import tomli_w

from deployc.api import build, plan
from deployc_vllm.checks import check_plan
from tests.contract_helpers import deploy
from tests.plugins.vllm.plans import spec_dict


def _spec(tmp_path: Path, reserved: float) -> Path:
    path = tmp_path / "res.toml"
    path.write_text(tomli_w.dumps(spec_dict(name="res", hardware={"reserved_memory_gib": reserved},
                                            slo={"ttft_ms": None, "itl_ms": None})))
    return path


def test_explain_says_what_vllm_does_with_the_fraction(tmp_path: Path) -> None:
    planned, _ = plan(_spec(tmp_path, 0), "vllm")
    reason = next(d.reason for d in planned.decisions if d.id == "memory_fraction")
    assert "subtracted first" not in reason
    assert reason.endswith(
        "vLLM 0.33.0 requests fraction × total memory at start-up and refuses to start unless that much is free once "
        "its CUDA context, NCCL and cuBLAS buffers exist (request_memory, vllm/v1/worker/utils.py): memory other "
        "processes hold is not subtracted from the request, it must fit in the rest, so the plan lowers the fraction "
        "to leave room for it")


def test_reserved_memory_that_leaves_no_room_for_start_up_is_warned_in_the_build(tmp_path: Path) -> None:
    path = _spec(tmp_path, 8)
    planned, _ = plan(path, "vllm")
    (warning,) = [d for d in check_plan(deploy(planned)) if d.key_path == "hardware.reserved_memory_gib"]
    assert warning.severity.name == "WARNING"
    assert warning.message.endswith("with reserved_memory_gib = 8, 0.50 GiB is left for them, less than the 1 GiB "
                                    "they take, so start-up fails if the other processes hold what the spec says")
    built = build(path, tmp_path / "out", "vllm")
    assert warning in built.plan.diagnostics  # the backend's warnings reach the build's output


def test_no_reserved_memory_no_warning(tmp_path: Path) -> None:
    planned, _ = plan(_spec(tmp_path, 0), "vllm")
    assert [d for d in check_plan(deploy(planned)) if d.key_path == "hardware.reserved_memory_gib"] == []
