"""vLLM 0.33.0's real argument parser accepts every argv the backend emits (tools/engine_parsers/)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from deployc.contract.toolkit import EnvRef
from deployc.planner.plan import Plan
from deployc_vllm.command import NodeRole, serve_command
from deployc_vllm.container import node_role
from deployc_vllm.options import parse_options
from tests.conftest import REPO
from tests.contract_helpers import deploy
from tests.engine_parsers import CHECKERS_DIR, check_argvs, require_or_skip

# What an environment reference stands for at run time (an address, a node rank).
RUNTIME_VALUES = {"VLLM_HEAD_ADDR": "10.0.0.1", "LWS_LEADER_ADDRESS": "10.0.0.1", "LWS_WORKER_INDEX": "1"}


def emitted_cases(plans: dict[str, Plan]) -> list[dict[str, object]]:
    """One case per server and node role of every plan."""
    cases: list[dict[str, object]] = []
    for name, plan in sorted(plans.items()):
        options = parse_options(plan.target.spec.backends.get("vllm"))
        for server in deploy(plan).servers:
            roles = [node_role(server, r) for r in range(len(server.nodes))] if server.spans_nodes else [NodeRole()]
            for rank, role in enumerate(roles):
                argv = [RUNTIME_VALUES[w.name] if isinstance(w, EnvRef) else w
                        for w in serve_command(deploy(plan), server, options, role).argv]
                cases.append({"id": f"{name}/{server.name}/node{rank}", "argv": argv})
    return cases


@pytest.mark.engine_parser
def test_vllm_parser_accepts_every_emitted_argv(plans: dict[str, Plan]) -> None:
    require_or_skip("vllm")
    cases = emitted_cases(plans)
    results = check_argvs("vllm", cases)
    failures = [(r["id"], r["stage"], r["error"]) for r in results if not r["ok"]]
    assert failures == []
    parsed = {r["id"]: r["parsed"] for r in results}
    head = parsed["two-nodes/llama405b-2node/node0"]
    assert head["tensor_parallel_size"] == 8 and head["pipeline_parallel_size"] == 2 and head["nnodes"] == 2
    assert parsed["two-nodes/llama405b-2node/node1"]["headless"] is True


@pytest.mark.engine_parser
def test_vllm_parser_rejects_what_the_checker_rejects() -> None:
    """The checker and the real parser agree on a removed flag and on `serve` repeated."""
    require_or_skip("vllm")
    results = check_argvs("vllm", [{"id": "swap", "argv": ["m", "--swap-space", "4"]},
                                   {"id": "serve", "argv": ["serve", "m"]}])
    assert [r["ok"] for r in results] == [False, False]


@pytest.mark.engine_parser
def test_shipped_manifest_matches_the_installed_parser(tmp_path: Path) -> None:
    """The project's extractor, run in the vLLM venv, gives the flag spellings the shipped manifest has."""
    python = require_or_skip("vllm")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "VLLM_TARGET_DEVICE": "cpu", "VLLM_NO_USAGE_STATS": "1"}
    run = subprocess.run([str(python), "extract_manifest.py", "vllm"], cwd=CHECKERS_DIR, capture_output=True,
                         text=True, env=env, timeout=600, check=True)
    fresh = json.loads(run.stdout)
    shipped = json.loads((REPO / "plugins" / "deployc_vllm" / "data" / "vllm-0.33.0.json").read_text())
    assert fresh["version"] == shipped["version"] == "0.33.0"

    def spellings(manifest: dict[str, object]) -> dict[str, tuple[str, ...]]:
        return {o["dest"]: tuple(o["flags"]) for o in manifest["options"]}  # type: ignore[attr-defined]

    assert spellings(fresh) == spellings(shipped)
