"""Replicas that are independent servers spread over several nodes (the new-user trial's two-node TP2×DP4).

Qwen2.5-72B on 2 nodes × 4 H100 PCIe, pinned to TP2×DP4: every replica fits one node, so no server spans
nodes.  For each built-in backend the artifacts are read as an operator would run them: bench.sh reaches
every server once, EXPLAIN.md asks for a load balancer and names the endpoints, the launcher decision names
only what the scripts do, a node script asks for no variable it never reads, and no fabric preflight is
written for collectives that never cross the fabric.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from deployc.api import build
from tests.conftest import REPO

BACKENDS = ("vllm", "sglang", "trtllm")
SPEC = """version = 1
name = "qwen72b-2node"

[model]
id = "Qwen/Qwen2.5-72B-Instruct"

[hardware]
gpu = "H100 PCIe"
gpus_per_node = 4
nodes = 2
network = "ib-ndr"
network_interface = "eth0"

[workload]
kind = "chat"
prompt_tokens = { mean = 1000 }
output_tokens = { mean = 300 }
concurrency = 32

[plan]
tp = 2
dp = 4
"""
# The servers each backend places: vLLM and SGLang one per node (--data-parallel-size / --dp-size 2),
# TensorRT-LLM one per replica (two per node, the second on the next port).
ENDPOINTS = {"vllm": ["node-0:8000", "node-1:8000"], "sglang": ["node-0:8000", "node-1:8000"],
             "trtllm": ["node-0:8000", "node-0:8001", "node-1:8000", "node-1:8001"]}
DP_DECISION = {"vllm": "vllm.data_parallel.main", "sglang": "sglang.data_parallel.main",
               "trtllm": "trtllm.data_parallel.main"}
NODE_SCRIPTS = {"vllm": "node-{}.sh", "sglang": "node-{}.sh", "trtllm": "run-node-{}.sh"}
MULTI_NODE_FLAGS = ("--nnodes", "--node-rank", "--master-addr", "--headless", "--dist-init-addr",
                    "--data-parallel-address", "srun")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The deployment written by each backend."""
    root = tmp_path_factory.mktemp("independent")
    spec = root / "qwen72b-2node.toml"
    spec.write_text(SPEC)
    out: dict[str, Path] = {}
    for backend in BACKENDS:
        build(spec, root / backend, backend=backend, display_name=spec.name)
        out[backend] = root / backend
    return out


def _decision(out: Path, decision_id: str) -> dict[str, object]:
    plan = json.loads((out / "plan.json").read_text())
    return next(d for d in plan["decisions"] if d["id"] == decision_id)


@pytest.mark.parametrize("backend", BACKENDS)
def test_bench_reaches_every_server_once_at_its_own_node(built: dict[str, Path], backend: str,
                                                        tmp_path: Path) -> None:
    bench = built[backend] / "bench.sh"
    fake = tmp_path / "bin"
    fake.mkdir()
    # docker prints the --base-url it was given instead of running the benchmark client
    (fake / "docker").write_text('#!/bin/sh\nwhile [ "$#" -gt 0 ]; do [ "$1" = --base-url ] && echo "URL $2"; '
                                 "shift; done\n")
    (fake / "docker").chmod(0o755)
    env = {"PATH": f"{fake}:/usr/bin:/bin", "BENCH_HOSTS": "10.0.0.1,10.0.0.2", "BENCH_RESULTS": str(tmp_path / "r")}
    run = subprocess.run(["bash", str(bench)], env=env, capture_output=True, text=True, check=True, cwd=tmp_path)
    urls = [line.split()[1] for line in run.stdout.splitlines() if line.startswith("URL ")]
    hosts = {"node-0": "10.0.0.1", "node-1": "10.0.0.2"}
    expected = [f"http://{hosts[e.split(':')[0]]}:{e.split(':')[1]}" for e in ENDPOINTS[backend]]
    assert urls == expected


@pytest.mark.parametrize("backend", BACKENDS)
def test_bench_needs_every_node_address(built: dict[str, Path], backend: str, tmp_path: Path) -> None:
    bench = built[backend] / "bench.sh"
    run = subprocess.run(["bash", str(bench)], env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
                         check=False, cwd=tmp_path)
    assert run.returncode != 0
    assert run.stderr.strip().endswith(
        "BENCH_HOSTS: set BENCH_HOSTS to the addresses of the 2 nodes, node-0 first, comma-separated")
    run = subprocess.run(["bash", str(bench)], env={"PATH": "/usr/bin:/bin", "BENCH_HOSTS": "10.0.0.1"},
                         capture_output=True, text=True, check=False, cwd=tmp_path)
    assert (run.returncode, run.stderr) == (1, "BENCH_HOSTS must list 2 addresses\n")


@pytest.mark.parametrize("backend", BACKENDS)
def test_explain_asks_for_a_load_balancer_and_names_the_endpoints(built: dict[str, Path], backend: str) -> None:
    endpoints = ENDPOINTS[backend]
    reason = str(_decision(built[backend], DP_DECISION[backend])["reason"])
    assert reason.endswith(f"a load balancer (or router) in front of the {len(endpoints)} servers (on 2 hosts) must "
                           f"spread the requests over their endpoints {', '.join(endpoints)}"
                           + (" (in Kubernetes, the Service)" if backend == "trtllm" else ""))
    explain = (built[backend] / "EXPLAIN.md").read_text()
    assert "no load balancer is needed" not in explain
    assert reason in explain


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_launcher_decision_names_what_the_scripts_do(built: dict[str, Path], backend: str) -> None:
    decision = _decision(built[backend], f"{backend}.multi_node_launcher")
    script = NODE_SCRIPTS[backend]
    assert decision["value"] == "none: independent servers per node"
    assert decision["reason"] == {
        "vllm": "no server spans nodes: each node-K.sh starts node K's own vllm serve, a complete server with no "
                "multi-node flags and no head address, so the 2 nodes start in any order and no collective "
                "crosses them",
        "sglang": "no server spans nodes: each node-K.sh starts node K's own sglang.launch_server, a complete "
                  "server without --nnodes, --node-rank or --dist-init-addr, so the 2 nodes start in any order "
                  "and no collective crosses them",
        "trtllm": "no server spans nodes: each run-node-K.sh starts node K's own trtllm-serve containers with "
                  "docker run (no MPI across nodes, no Slurm), so the 2 nodes start in any order and no "
                  "collective crosses them"}[backend]
    for node in (0, 1):
        text = (built[backend] / script.format(node)).read_text()
        assert text.startswith(f"#!/usr/bin/env bash\n# {script.format(node)}: ")
        commands = [line for line in text.splitlines() if not line.startswith("#")]
        assert not [f for f in MULTI_NODE_FLAGS if any(re.search(rf"(^|\s){f}(\s|$)", c) for c in commands)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_node_scripts_ask_for_no_variable_they_never_read(built: dict[str, Path], backend: str) -> None:
    for node in (0, 1):
        text = (built[backend] / NODE_SCRIPTS[backend].format(node)).read_text()
        for name in ("VLLM_HEAD_ADDR", "VLLM_HOST_IP", "SGLANG_HEAD_ADDR", "SGLANG_DIST_INIT_ADDR"):
            assert name not in text, (node, name)
        assert unused_required_variables(text) == []


def unused_required_variables(script: str) -> list[str]:
    """Variables a script stops without (``${NAME:?hint}``) that nothing else in it reads or passes on."""
    out = []
    for name in sorted(set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*):\?", script))):
        lines = [line for line in script.splitlines() if name in line and not line.lstrip().startswith("#")]
        checks = [line for line in lines if re.fullmatch(rf'\s*: "\$\{{{name}:\?[^}}]*\}}"', line)]
        if len(lines) == len(checks):  # only ever checked, never used
            out.append(name)
    return out


def test_a_server_across_nodes_still_asks_for_its_head_address(tmp_path: Path) -> None:
    spec = REPO / "samples" / "llama405b-2nodes-16gpu.toml"
    build(spec, tmp_path / "out", backend="vllm", display_name=spec.name)
    node1 = (tmp_path / "out" / "node-1.sh").read_text()
    assert ': "${VLLM_HEAD_ADDR:?set VLLM_HEAD_ADDR to the address of the head node (node-0)}"' in node1
    assert "--master-addr \"${VLLM_HEAD_ADDR:?" in node1 and "    --env VLLM_HOST_IP \\" in node1
    assert unused_required_variables(node1) == []
    assert (tmp_path / "out" / "preflight-nccl.sh").exists()
    decision = _decision(tmp_path / "out", "vllm.multi_node_launcher")
    assert decision["value"] == "native (--nnodes --node-rank --master-addr --master-port --headless)"
    for flag in str(decision["value"]).removeprefix("native (").removesuffix(")").split():
        assert f"    {flag}" in node1 or f"    {flag}" in (tmp_path / "out" / "node-0.sh").read_text(), flag


@pytest.mark.parametrize("backend", BACKENDS)
def test_no_fabric_preflight_when_no_collective_crosses_nodes(built: dict[str, Path], backend: str) -> None:
    assert not (built[backend] / "preflight-nccl.sh").exists()
    reason = str(_decision(built[backend], "network")["reason"])
    assert reason.startswith("2 nodes joined by ib-ndr. No collective crosses it: every replica fits in one node "
                             "(2 of its 4 GPUs at most), so each node's servers run on their own and the network "
                             "carries only client traffic.")
    assert "preflight-nccl.sh" not in reason


def test_sglang_keeps_dp_size_inside_a_node(built: dict[str, Path]) -> None:
    """SGLang 0.5.23 refuses --dp-size with --nnodes (validation_hook.check_server_args): a server per node."""
    for node in (0, 1):
        text = (built["sglang"] / f"node-{node}.sh").read_text()
        assert "    --dp-size 2 \\\n" in text and "--nnodes" not in text
    assert sorted(p.name for p in built["sglang"].glob("sglang-*.yaml")) == ["sglang-qwen72b-2node-0.yaml",
                                                                            "sglang-qwen72b-2node-1.yaml"]
