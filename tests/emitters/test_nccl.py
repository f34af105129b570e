"""NCCL settings per network kind, the all_reduce_perf command, and the plan's assumed bandwidth."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deployc.api import build
from deployc.catalog import resolve_gpu, resolve_link
from deployc.contract.toolkit import EnvRef
from deployc.contract.toolkit.nccl import (
    PREFLIGHT_MIN_SHARE,
    AllReduceTest,
    all_reduce_perf_lines,
    assumed_bus_bandwidth,
    nccl_env,
)
from deployc.planner.collectives import allreduce_model
from deployc.planner.decisions import Decision, Quantity
from tests.conftest import REPO


@pytest.mark.parametrize(("network", "iface", "hcas", "expected"), [
    ("ib-ndr", "eth0", ("mlx5_0", "mlx5_1"), {"NCCL_SOCKET_IFNAME": "eth0", "GLOO_SOCKET_IFNAME": "eth0",
                                              "NCCL_IB_DISABLE": "0", "NCCL_IB_HCA": "mlx5_0,mlx5_1"}),
    ("roce-200g", None, (), {"NCCL_IB_DISABLE": "0", "NCCL_IB_GID_INDEX": "3", "NCCL_IB_TC": "106"}),
    ("eth-100g", "ens5", (), {"NCCL_SOCKET_IFNAME": "ens5", "GLOO_SOCKET_IFNAME": "ens5", "NCCL_IB_DISABLE": "1"}),
    ("none", None, (), {}),
])
def test_nccl_env(network: str, iface: str | None, hcas: tuple[str, ...], expected: dict[str, str]) -> None:
    env = nccl_env(network, iface, hcas)
    assert {v.name: v.value for v in env} == expected
    assert all(v.why for v in env)


def test_all_reduce_perf_lines() -> None:
    lines = all_reduce_perf_lines(AllReduceTest(gpus_per_node=8, nodes=2), EnvRef("hosts", required=False),
                                  nccl_env("eth-100g", "ens5", ()), "ens5")
    assert lines[0] == ("mpirun", "--allow-run-as-root", "-np", "16")
    assert ("-x", "NCCL_IB_DISABLE=1") in lines
    assert lines[-1] == ("all_reduce_perf", "-b", "8", "-e", "8G", "-f", "2", "-g", "1")


def test_assumed_bus_bandwidth() -> None:
    decisions = [Decision(id="a", value=1, rule="R", reason="r"),
                 Decision(id="b", value=1, rule="R", reason="r",
                          numbers=(Quantity("inter-node all-reduce bus bandwidth", 42.0, "GB/s"),))]
    found = assumed_bus_bandwidth(decisions)
    assert found is not None and found.value == 42.0
    assert assumed_bus_bandwidth(decisions[:1]) is None


def _preflight(**changes: object) -> str:
    from deployc.contract.toolkit.nccl import Preflight, write_preflight
    from deployc.contract.toolkit.shell import ScriptBuilder

    base: dict[str, object] = {"network": "ib-ndr", "interface": "eth0", "ib_hcas": ("mlx5_0",), "gpus_per_node": 8,
                               "nodes": 2, "addrs_variable": "X_NODE_ADDRS", "launcher": "the Slurm script"}
    script = ScriptBuilder(purpose="p", generator="g", engine="e", spec_name="s")
    write_preflight(script, Preflight(**{**base, **changes}),  # type: ignore[arg-type]
                    Quantity("inter-node all-reduce bus bandwidth", 40.0, "GB/s"))
    return script.render()


def test_preflight_defaults_and_what_a_backend_may_say_instead() -> None:
    plain = _preflight()
    assert ': "${ALL_REDUCE_PERF:=all_reduce_perf}"  # path to nccl-tests\' all_reduce_perf binary' in plain
    assert "the addresses of the nodes, the first node first, comma-separated" in plain
    assert "# One rank per GPU; the same NCCL settings the Slurm script gives the engine." in plain
    assert "out-of-place busbw column" not in plain and "(ibstat)" not in plain
    own = _preflight(tests="rccl-tests", first_node="node-0", annotate=True,
                     settings_comment="One rank per GPU; the same NCCL settings the node scripts give vLLM.")
    assert ': "${ALL_REDUCE_PERF:=all_reduce_perf}"  # path to rccl-tests\' all_reduce_perf binary' in own
    assert "the addresses of the nodes, node-0 first, comma-separated" in own
    assert "# One rank per GPU; the same NCCL settings the node scripts give vLLM." in own
    assert "# the bus bandwidth of the largest message (out-of-place busbw column)" in own
    comments = " ".join(line[2:] for line in own.splitlines() if line.startswith("# "))  # wrapped paragraphs
    assert ("The plan assumed inter-node all-reduce bus bandwidth = 40 GB/s; below 80% of it the latency "
            "predictions do not hold.") in comments
    assert "check NCCL_SOCKET_IFNAME/NCCL_IB_HCA and the links (ibstat) before serving" in own


def test_the_built_in_backends_write_their_preflight_with_the_toolkit() -> None:
    import inspect

    import deployc_sglang.scripts
    import deployc_vllm.scripts

    for module in (deployc_vllm.scripts, deployc_sglang.scripts):
        source = inspect.getsource(module.preflight_script)
        assert "node_scripts_preflight(" in source and "all_reduce_perf_lines" not in source, module.__name__


def test_the_preflight_threshold_follows_the_listed_hcas(tmp_path: Path) -> None:
    """2 NDR HCAs on each 8-GPU node: the plan assumes their bandwidth, and the preflight passes at 80% of it."""
    spec = (REPO / "samples" / "llama405b-2nodes-16gpu.toml").read_text()
    eight = '["mlx5_0", "mlx5_1", "mlx5_2", "mlx5_3", "mlx5_4", "mlx5_5", "mlx5_6", "mlx5_7"]'
    assert eight in spec
    path = tmp_path / "two-hcas.toml"
    path.write_text(spec.replace(eight, '["mlx5_0", "mlx5_1"]'))
    build(path, tmp_path / "out", backend="vllm", display_name=path.name)
    network = next(d for d in json.loads((tmp_path / "out" / "plan.json").read_text())["decisions"]
                   if d["id"] == "network")
    assumed = network["numbers"][0]["value"]
    model = allreduce_model(resolve_gpu("H100 SXM"), resolve_link("nvlink4"), 16, cuda_graphs=True,
                            network=resolve_link("ib-ndr"), crosses_nodes=True, gpus_per_node=8, network_nics=2)
    assert assumed == round(model.bus_bandwidth_bytes_per_s / 1e9, 1)
    assert "2 ib-ndr HCA ports per node (hardware.ib_hcas, shared by its 8 GPUs)" in network["reason"]
    preflight = (tmp_path / "out" / "preflight-nccl.sh").read_text()
    assert f'echo "measured bus bandwidth: ${{busbw}} GB/s; the plan assumed {assumed:g} GB/s"' in preflight
    assert f"BEGIN {{ exit !(got + 0 >= {assumed * PREFLIGHT_MIN_SHARE:.3f}) }}" in preflight
