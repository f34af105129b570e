"""The serve argv: what run.sh passes is exactly what was intended, hostile values included."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from deployc.contract.backend import Emission
from deployc.contract.toolkit import EnvRef, Word
from deployc.planner.plan import Plan
from deployc_vllm.command import NodeRole, format_fraction, serve_command, split_flags
from deployc_vllm.container import docker_run, node_role
from deployc_vllm.flags import check_argv
from deployc_vllm.options import parse_options
from tests.contract_helpers import deploy
from tests.plugins.vllm.plans import HOSTILE
from tests.plugins.vllm.scripttext import docker_runs, serve_argv

SINGLE_NODE = ["h100-tp1", "a100-tp4", "pcie-dp2", "t4-awq", "l40s-tp4-pcie", "mixed-pools", "moe-ep-dp", "hostile"]


def _artifact(emission: Emission, path: str) -> str:
    return next(a.content for a in emission.artifacts if a.path == path)


def _rendered(word: Word) -> str:
    """What shlex.split reads back for a word (env references stay unexpanded)."""
    if isinstance(word, EnvRef):
        return f"${{{word.name}:?{word.hint}}}"
    return word


@pytest.mark.parametrize("name", SINGLE_NODE)
def test_run_sh_passes_the_intended_argv(name: str, plans: dict[str, Plan], emissions: dict[str, Emission]) -> None:
    plan = plans[name]
    options = parse_options(plan.target.spec.backends.get("vllm"))
    runs = docker_runs(_artifact(emissions[name], "run.sh"))
    servers = deploy(plan).servers
    assert len(runs) == len(servers)
    for run, server in zip(runs, servers, strict=True):
        intended = serve_command(deploy(plan), server, options, NodeRole()).argv
        assert serve_argv(run, deploy(plan).image.reference) == list(intended)


@pytest.mark.parametrize("name", ["two-nodes", "two-nodes-ray"])
def test_node_scripts_pass_the_intended_argv(name: str, plans: dict[str, Plan], emissions: dict[str, Emission]) -> None:
    plan = plans[name]
    options = parse_options(plan.target.spec.backends.get("vllm"))
    (server,) = deploy(plan).servers
    for rank in range(2):
        (run,) = docker_runs(_artifact(emissions[name], f"node-{rank}.sh"))
        intended = serve_command(deploy(plan), server, options, node_role(server, rank)).argv
        after_image = serve_argv(run, deploy(plan).image.reference)
        if options.distributed_executor_backend == "ray":
            assert after_image[:3] == ["-c", after_image[1], "vllm-ray-head" if rank == 0 else "vllm-ray-worker"]
            after_image = after_image[3:]
            if rank:
                assert after_image == [_rendered(node_role(server, rank).head_addr)]
                continue
        assert after_image == [_rendered(w) for w in intended]


def test_hostile_values_survive_quoting(plans: dict[str, Plan], emissions: dict[str, Emission]) -> None:
    plan = plans["hostile"]
    runs = docker_runs(_artifact(emissions["hostile"], "run.sh"))
    argv = serve_argv(runs[0], deploy(plan).image.reference)
    assert argv[0] == f"org/{HOSTILE}"
    assert argv[argv.index("--served-model-name") + 1] == HOSTILE
    assert argv[argv.index("--response-role") + 1] == HOSTILE
    assert runs[0][runs[0].index("--volume") + 1] == f"/data/{HOSTILE}:/root/.cache/huggingface"


def test_run_sh_executes_with_exact_words(plans: dict[str, Plan], emissions: dict[str, Emission],
                                          tmp_path: Path) -> None:
    """bash itself runs the hostile run.sh against recording stand-ins for docker and mkdir."""
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.jsonl"
    bin_dir.mkdir()
    recorder = (f"#!{sys.executable}\nimport json, sys\n"
                f"open({str(log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
                "sys.exit(1 if sys.argv[1:3] == ['container', 'inspect'] else 0)\n")
    for tool in ("docker", "mkdir"):
        (bin_dir / tool).write_text(recorder)
        (bin_dir / tool).chmod(0o755)
    script = tmp_path / "run.sh"
    script.write_text(_artifact(emissions["hostile"], "run.sh"))
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path), "MY_HF_TOKEN": "hf_secret_value"}
    subprocess.run(["bash", str(script)], check=True, env=env, cwd=tmp_path, capture_output=True)
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert calls[0] == ["-p", "--", f"/data/{HOSTILE}"]
    plan = plans["hostile"]
    options = parse_options(plan.target.spec.backends.get("vllm"))
    runs = [c for c in calls if c[:1] == ["run"]]
    for call, server in zip(runs, deploy(plan).servers, strict=True):
        assert call[call.index(deploy(plan).image.reference) + 1:] == list(serve_command(deploy(plan), server,
                                                                                         options).argv)
        assert "hf_secret_value" not in " ".join(call)
        assert call[call.index("--env") + 1] == "HF_TOKEN"
    assert not any(p.name == "pwned" for p in tmp_path.rglob("*"))


@pytest.mark.parametrize("name", [*SINGLE_NODE, "two-nodes", "two-nodes-ray"])
def test_every_argv_passes_the_manifest(name: str, plans: dict[str, Plan]) -> None:
    plan = plans[name]
    options = parse_options(plan.target.spec.backends.get("vllm"))
    for server in deploy(plan).servers:
        roles = [node_role(server, r) for r in range(len(server.nodes))] if server.spans_nodes else [NodeRole()]
        for role in roles:
            argv = serve_command(deploy(plan), server, options, role).argv
            assert check_argv(argv) == []
            assert argv[0] == plan.target.spec.model.id
            assert "serve" not in argv


def test_docker_run_settings(plans: dict[str, Plan], emissions: dict[str, Emission]) -> None:
    (run,) = docker_runs(_artifact(emissions["a100-tp4"], "run.sh"))
    assert run[run.index("--gpus") + 1] == '"device=0,1,2,3"'
    assert "--ipc=host" in run
    assert run[run.index("--publish") + 1] == "8000:8000"
    assert run[run.index("--volume") + 1] == "/data/hf:/root/.cache/huggingface"
    assert run[run.index("--env") + 1] == "HF_TOKEN"
    assert run[run.index("--restart") + 1] == "unless-stopped"
    assert "/health" in run[run.index("--health-cmd") + 1]
    assert run[:3] == ["docker", "run", "--detach"]


def test_flags_follow_the_knobs(plans: dict[str, Plan]) -> None:
    plan = plans["l40s-tp4-pcie"]
    (server,) = deploy(plan).servers
    argv = list(serve_command(deploy(plan), server, parse_options(None)).argv)
    assert argv[argv.index("--kv-cache-dtype") + 1] == "fp8"
    assert argv[argv.index("--quantization") + 1] == "fp8"
    assert "--disable-custom-all-reduce" in argv
    t4 = plans["t4-awq"]
    (t4_server,) = deploy(t4).servers
    t4_argv = list(serve_command(deploy(t4), t4_server, parse_options(None)).argv)
    assert "--enforce-eager" in t4_argv and "--quantization" not in t4_argv
    assert t4_argv[t4_argv.index("--dtype") + 1] == "float16"
    assert t4_argv[t4_argv.index("--port") + 1] == "9000"


def test_dp_replicas_on_one_host_are_one_engine_behind_one_port(plans: dict[str, Plan]) -> None:
    (dense,) = deploy(plans["pcie-dp2"]).servers
    assert (dense.name, dense.gpu_ids, dense.port, dense.engine_dp) == ("pcie-dp2", (0, 1), 8000, 2)
    argv = list(serve_command(deploy(plans["pcie-dp2"]), dense, parse_options(None)).argv)
    assert argv[argv.index("--data-parallel-size") + 1] == "2" and "--enable-expert-parallel" not in argv
    (moe,) = deploy(plans["moe-ep-dp"]).servers
    argv = list(serve_command(deploy(plans["moe-ep-dp"]), moe, parse_options(None)).argv)
    assert moe.gpu_ids == (0, 1, 2, 3)
    assert argv[argv.index("--data-parallel-size") + 1] == "4" and "--enable-expert-parallel" in argv


def test_mixed_pools_get_their_own_servers(plans: dict[str, Plan]) -> None:
    servers = deploy(plans["mixed-pools"]).servers
    assert [(s.name, s.gpu_ids, s.port) for s in servers] == [
        ("mixed-short", (0, 1), 8000), ("mixed-long", (2, 3), 8001)]


def test_flag_reasons_name_their_decisions(emissions: dict[str, Emission]) -> None:
    flags = {f.flag: f for f in emissions["h100-tp1"].flags}
    assert flags["--max-model-len"].decision == "max_model_len"
    assert flags["--max-model-len"].reason == "the longest request: 4,000 prompt + 800 output tokens, rounded up"
    assert flags["--gpu-memory-utilization"].decision == "memory_fraction"
    assert "of TOTAL GPU memory" in flags["--gpu-memory-utilization"].reason
    assert flags["--tensor-parallel-size"].decision == "parallelism"
    assert all(f.reason for f in emissions["h100-tp1"].flags)
    mixed = {(f.flag, f.value) for f in emissions["mixed-pools"].flags}
    assert ("--max-model-len", "4352") in mixed and ("--max-model-len", "61184") in mixed


def test_multi_node_flags(plans: dict[str, Plan]) -> None:
    plan = plans["two-nodes"]
    (server,) = deploy(plan).servers
    head = serve_command(deploy(plan), server, parse_options(None), node_role(server, 0)).argv
    worker = serve_command(deploy(plan), server, parse_options(None), node_role(server, 1)).argv
    assert "--headless" not in head and worker[-1] == "--headless"
    assert worker[worker.index("--node-rank") + 1] == "1"
    assert worker[worker.index("--nnodes") + 1] == "2"
    assert isinstance(worker[worker.index("--master-addr") + 1], EnvRef)


def test_container_for_rdma(plans: dict[str, Plan]) -> None:
    plan = plans["two-nodes"]
    (server,) = deploy(plan).servers
    run = docker_run(deploy(plan), server, parse_options(None), node_role(server, 1))
    assert run.network_host and run.ports == () and run.health is None
    assert [d for d, _ in run.devices] == ["/dev/infiniband"]
    assert {n: v for n, v, _ in run.env} == {
        "NCCL_SOCKET_IFNAME": "eth0", "GLOO_SOCKET_IFNAME": "eth0", "NCCL_IB_DISABLE": "0",
        "NCCL_IB_HCA": "mlx5_0,mlx5_1"}


@pytest.mark.parametrize(("value", "text"), [(0.92, "0.92"), (0.87654, "0.8765"), (0.9, "0.9"), (1.0, "1")])
def test_fraction_is_rounded_down(value: float, text: str) -> None:
    assert format_fraction(value) == text


def test_split_flags() -> None:
    assert split_flags(("--a", "1", "--b", "--c=3")) == [("--a", "1"), ("--b",), ("--c=3",)]
