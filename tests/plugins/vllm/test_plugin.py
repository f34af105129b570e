"""The backend as deployc sees it: discovered by entry point, described, its options validated."""

from __future__ import annotations

from pathlib import Path

import pytest
import tomli_w

from deployc.api import load_spec
from deployc.diagnostics import SpecError
from deployc.plugins import default_registry
from tests.contract_helpers import deploy
from tests.plugins.vllm.plans import spec_dict


def test_discovered_and_described() -> None:
    registry = default_registry()
    info = registry.info("vllm")
    assert (info.engine, info.engine_version, info.image, info.image_tag) == (
        "vLLM", "0.33.0", "vllm/vllm-openai", "v0.33.0")
    assert registry.option_schemas()["vllm"]["additionalProperties"] is False


def test_options_are_validated(tmp_path: Path) -> None:
    path = tmp_path / "spec.toml"
    path.write_text(tomli_w.dumps(spec_dict(backends={"vllm": {"distributed_executor_backend": "nccl"}})))
    with pytest.raises(SpecError) as exc:
        load_spec(path)
    (diag,) = exc.value.diagnostics
    assert diag.key_path == "backends.vllm.distributed_executor_backend"
    assert diag.rule == "DPC012"


def test_hook_results_reach_the_registry(plans: dict[str, object]) -> None:
    registry = default_registry()
    plan = deploy(plans["h100-tp1"])  # type: ignore[arg-type]
    emission = registry.emit("vllm", plan)
    assert {a.path for a in emission.artifacts} >= {"run.sh", "compose.yaml", "bench.sh", "monitoring.md"}
    assert registry.check_plan("vllm", plan) == []
