"""Every command and config file the SGLang backend emits, through SGLang 0.5.23's own prepare_server_args."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from deployc.planner.plan import Plan
from deployc_sglang.command import NodeRole, launch_command
from deployc_sglang.emission import config_yaml
from deployc_sglang.options import parse_options
from tests.contract_helpers import deploy
from tests.engine_parsers import check_argvs, require_or_skip
from tests.plugins.sglang.conftest import with_knobs

pytestmark = [pytest.mark.engine_parser, pytest.mark.slow]


def _cases(name: str, plan: Plan, tmp: Path) -> list[dict[str, Any]]:
    options = parse_options(plan.target.spec.backends.get("sglang"))
    cases: list[dict[str, Any]] = []
    for server in deploy(plan).servers:
        for rank in range(len(server.nodes)):
            argv = launch_command(deploy(plan), server, options, NodeRole(nnodes=len(server.nodes), rank=rank)).argv
            words = [w if isinstance(w, str) else "10.0.0.1:50000" for w in argv]
            cases.append({"id": f"{name}/{server.name}/rank{rank}", "argv": words})
        path = tmp / f"{name}-{server.name}.yaml"
        path.write_text(config_yaml(deploy(plan), server, options))
        cases.append({"id": f"{name}/{server.name}/yaml", "argv": [], "config_yaml": str(path)})
    return cases


def test_sglang_parser_accepts_every_emitted_command(sample_plans: dict[str, Plan], tmp_path: Path) -> None:
    require_or_skip("sglang")
    plans = dict(sample_plans)
    base = sample_plans["llama8b-fp8-h100-stable"]
    plans["variant-eager-fp8kv-unchunked"] = with_knobs(base, cuda_graphs=False, kv_cache_dtype="fp8",
                                                        chunked_prefill=False, prefix_caching=False)
    cases = [case for name, plan in plans.items() for case in _cases(name, plan, tmp_path)]
    results = check_argvs("sglang", cases)
    failed = [(r["id"], r["error"]) for r in results if not r["ok"]]
    assert failed == []
    deprecated = [(r["id"], r["warnings"]) for r in results if any("deprecated" in w for w in r["warnings"])]
    assert deprecated == []
    variant = {r["id"]: r["parsed"] for r in results}["variant-eager-fp8kv-unchunked/llama8b-stable-fleet/rank0"]
    assert variant["kv_cache_dtype"] == "fp8_e4m3"
    assert variant["chunked_prefill_size"] == -1
