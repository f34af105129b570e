"""NCCL settings for the spec's network, and the nccl-tests preflight that checks the fabric.

Multi-node inference hangs or crawls when NCCL picks the wrong interface or transport
(USER-PAINS #15).  :func:`nccl_env` pins them from the spec; :func:`all_reduce_perf_words`
is the ``all_reduce_perf`` run (from NVIDIA's nccl-tests) an operator runs before serving,
and :func:`assumed_bus_bandwidth` finds the bus bandwidth the plan assumed, to compare with.
"""

from __future__ import annotations

from collections.abc import Sequence

from attrs import frozen

from deployc.emitters import Word
from deployc.planner.decisions import Decision, Quantity


@frozen
class EnvVar:
    """An environment variable with its value and why it is set."""

    name: str
    value: str
    why: str


def nccl_env(network: str, interface: str | None, ib_hcas: Sequence[str]) -> list[EnvVar]:
    """NCCL (and Gloo) variables for a network kind: ``ib-*``, ``roce-*``, ``eth-*`` or ``none``."""
    env: list[EnvVar] = []
    if interface:
        env.append(EnvVar("NCCL_SOCKET_IFNAME", interface,
                          "NCCL's bootstrap and socket traffic on this interface, not docker0 or a "
                          "management NIC that cannot reach the other nodes"))
        env.append(EnvVar("GLOO_SOCKET_IFNAME", interface,
                          "PyTorch's CPU-side (Gloo) process groups on the same interface"))
    if network.startswith(("ib-", "roce-")):
        env.append(EnvVar("NCCL_IB_DISABLE", "0", "use the RDMA (InfiniBand verbs) transport between nodes"))
        if ib_hcas:
            env.append(EnvVar("NCCL_IB_HCA", ",".join(ib_hcas),
                              "only these HCAs (one per GPU rail); NCCL otherwise may pick a storage or "
                              "management adapter"))
    elif network.startswith("eth-"):
        env.append(EnvVar("NCCL_IB_DISABLE", "1",
                          "plain Ethernet without RoCE: NCCL must use TCP sockets, not probe for RDMA"))
    return env


@frozen(kw_only=True)
class AllReduceTest:
    """An ``all_reduce_perf`` run over every GPU of the deployment."""

    gpus_per_node: int
    nodes: int
    min_bytes: str = "8"
    max_bytes: str = "8G"
    binary: str = "all_reduce_perf"


def all_reduce_perf_lines(test: AllReduceTest, hosts: Word, env: Sequence[EnvVar],
                          interface: str | None, binary: Word | None = None) -> list[tuple[Word, ...]]:
    """``mpirun … all_reduce_perf -b 8 -e 8G -f 2 -g 1`` over ``nodes × gpus_per_node`` ranks, as lines of words.

    One MPI rank per GPU (``-g 1``), the NCCL variables exported to every rank (``-x``).
    ``hosts`` is the ``host:slots,host:slots`` list, usually a shell variable.
    """
    lines: list[tuple[Word, ...]] = [("mpirun", "--allow-run-as-root", "-np", str(test.gpus_per_node * test.nodes)),
                                     ("-H", hosts), ("--bind-to", "none")]
    if interface:
        lines += [("--mca", "btl_tcp_if_include", interface), ("--mca", "oob_tcp_if_include", interface)]
    lines += [("-x", f"{var.name}={var.value}") for var in env]
    lines.append((binary or test.binary, "-b", test.min_bytes, "-e", test.max_bytes, "-f", "2", "-g", "1"))
    return lines


def assumed_bus_bandwidth(decisions: Sequence[Decision]) -> Quantity | None:
    """The first number labelled as a bus bandwidth in the plan's decisions (GB/s), if any."""
    for decision in decisions:
        for quantity in decision.numbers:
            if "bus bandwidth" in quantity.label.lower():
                return quantity
    return None
