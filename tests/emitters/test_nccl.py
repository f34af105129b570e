"""NCCL settings per network kind, the all_reduce_perf command, and the plan's assumed bandwidth."""

from __future__ import annotations

import pytest

from deployc.contract.toolkit import EnvRef
from deployc.contract.toolkit.nccl import AllReduceTest, all_reduce_perf_lines, assumed_bus_bandwidth, nccl_env
from deployc.planner.decisions import Decision, Quantity


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
