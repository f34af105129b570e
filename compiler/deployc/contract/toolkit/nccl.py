"""NCCL settings for the spec's network, and the nccl-tests preflight that checks the fabric.

Multi-node inference hangs or crawls when NCCL picks the wrong interface or transport
(USER-PAINS #15).  :func:`nccl_env` pins them from the spec; :func:`all_reduce_perf_words`
is the ``all_reduce_perf`` run (from NVIDIA's nccl-tests) an operator runs before serving,
and :func:`assumed_bus_bandwidth` finds the bus bandwidth the plan assumed, to compare with.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from attrs import frozen

from deployc.contract.decisions import Decision, Quantity
from deployc.contract.toolkit import EnvRef, Word, env_name
from deployc.contract.toolkit.rocm import RCCL_TESTS
from deployc.contract.toolkit.shell import ScriptBuilder, group

if TYPE_CHECKING:
    from deployc.contract.deployment import Deployment

ROCE_GID_INDEX = "3"  # RoCE v2 over IPv4 on ConnectX (show_gids); NCCL docs, NCCL_IB_GID_INDEX
ROCE_TRAFFIC_CLASS = "106"  # DSCP 26 << 2 | ECN bits: NVIDIA's RoCE lossless-class default; NCCL docs, NCCL_IB_TC


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
    if network.startswith("roce-"):
        env.append(EnvVar("NCCL_IB_GID_INDEX", ROCE_GID_INDEX,
                          "RoCE addresses peers by GID: index 3 is the RoCE v2 IPv4 GID of a ConnectX port with one "
                          "IPv4 address (check with show_gids); NCCL before 2.21 takes index 0, a link-local "
                          "RoCE v1 GID that routed RoCE cannot reach"))
        env.append(EnvVar("NCCL_IB_TC", ROCE_TRAFFIC_CLASS,
                          "traffic class 106 = DSCP 26 with ECN, the lossless (PFC) class of NVIDIA's RoCE "
                          "configuration; NCCL's default 0 sends the traffic in the lossy best-effort class"))
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


PREFLIGHT_MIN_SHARE = 0.8  # measured bus bandwidth below 80% of the plan's figure fails the preflight


@frozen(kw_only=True)
class Preflight:
    """What a ``preflight-nccl.sh`` body needs: the fabric, the node count, where the addresses come from.

    ``tests`` names the suite whose ``all_reduce_perf`` runs (``rccl-tests`` on ROCm: the same binary built
    against RCCL); ``first_node`` how the address list names its first entry; ``settings_comment`` replaces
    the comment above the test (default: the same NCCL settings ``launcher`` gives the engine);
    ``annotate`` also comments the bus-bandwidth column read and the pass threshold, and names ``ibstat``
    in the failure message.
    """

    network: str
    interface: str | None
    ib_hcas: tuple[str, ...]
    gpus_per_node: int
    nodes: int
    addrs_variable: str  # environment variable listing the node addresses, comma-separated
    launcher: str  # what starts the engine with the same NCCL settings (for a comment)
    tests: str = "nccl-tests"  # contract 1.1
    first_node: str = "the first node"  # contract 1.1
    settings_comment: str = ""  # contract 1.1
    annotate: bool = False  # contract 1.1


def write_preflight(script: ScriptBuilder, pre: Preflight, assumed: Quantity | None) -> None:
    """The body of a preflight script: all_reduce_perf over every node, then the comparison with ``assumed``."""
    var = env_name(pre.addrs_variable)
    script.raw(f': "${{ALL_REDUCE_PERF:=all_reduce_perf}}"  # path to {pre.tests}\' all_reduce_perf binary')
    script.raw('command -v mpirun >/dev/null || { echo "mpirun not found: install Open MPI" >&2; exit 1; }')
    script.raw(f'IFS=, read -r -a addrs <<< "${{{var}:?set {var} to the addresses of the nodes, {pre.first_node} '
               'first, comma-separated}"')
    script.raw(f'if [ "${{#addrs[@]}}" -ne {int(pre.nodes)} ]; then echo "{var} must list {int(pre.nodes)} '
               'addresses" >&2; exit 1; fi')
    script.raw('hosts=""')
    script.raw(f'for addr in "${{addrs[@]}}"; do hosts="${{hosts:+$hosts,}}$addr:{int(pre.gpus_per_node)}"; done')
    script.raw('log="$(mktemp)"')
    env = nccl_env(pre.network, pre.interface, pre.ib_hcas)
    lines = all_reduce_perf_lines(AllReduceTest(gpus_per_node=pre.gpus_per_node, nodes=pre.nodes),
                                  EnvRef("hosts", required=False), env, pre.interface,
                                  binary=EnvRef("ALL_REDUCE_PERF", required=False))
    script.comment(pre.settings_comment or f"One rank per GPU; the same NCCL settings {pre.launcher} gives the engine.")
    script.command([group(*line) for line in lines], explain=False, suffix=' | tee "$log"')
    if pre.annotate:
        script.raw("# the bus bandwidth of the largest message (out-of-place busbw column)")
    script.raw("busbw=\"$(awk '!/^#/ && NF >= 13 { bw = $8 } END { print bw }' \"$log\")\"")
    if assumed is None:
        script.raw('echo "measured bus bandwidth: ${busbw} GB/s (the plan states no figure to compare with)"')
        return
    want = assumed.value * PREFLIGHT_MIN_SHARE
    if pre.annotate:
        script.comment(f"The plan assumed {assumed.label} = {assumed.value:g} {assumed.unit}; below "
                       f"{PREFLIGHT_MIN_SHARE:.0%} of it the latency predictions do not hold.")
    script.raw(f'echo "measured bus bandwidth: ${{busbw}} GB/s; the plan assumed {assumed.value:g} {assumed.unit}"')
    script.raw(f"if awk -v got=\"$busbw\" 'BEGIN {{ exit !(got + 0 >= {want:.3f}) }}'; then")
    script.raw('    echo "preflight passed"')
    script.raw("else")
    links = "links (ibstat)" if pre.annotate else "links"
    script.raw(f'    echo "preflight FAILED: below {want:.3f} GB/s; check NCCL_SOCKET_IFNAME/NCCL_IB_HCA and the '
               f'{links} before serving" >&2')
    script.raw("    exit 1")
    script.raw("fi")


def node_scripts_preflight(deployment: Deployment, script_for: Callable[[str], ScriptBuilder], *, engine: str,
                           addrs_variable: str, annotate: bool = False) -> str:
    """``preflight-nccl.sh`` for a backend whose per-node scripts start ``engine`` (node-0 first).

    ``script_for`` makes the backend's script builder from the script's purpose.  On AMD GPUs the test is
    rccl-tests' ``all_reduce_perf`` (ROCm/rccl-tests builds the same binary against RCCL, which reads the
    same ``NCCL_*`` variables).
    """
    hw = deployment.hardware
    total = deployment.nodes_used
    amd = deployment.gpu.is_amd
    tests = "rccl-tests" if amd else "nccl-tests"
    script = script_for(f"preflight-nccl.sh: check the {hw.network} fabric between the {total} nodes with {tests}' "
                        f"all_reduce_perf before starting {engine} (run it on node-0; needs MPI and {tests} on every "
                        "node, and passwordless SSH between them).")
    if amd:
        script.comment(f"rccl-tests: {RCCL_TESTS} (build with MPI=1); RCCL reads the same NCCL_* variables as NCCL.")
    write_preflight(script, Preflight(
        network=hw.network, interface=hw.network_interface, ib_hcas=tuple(hw.ib_hcas), gpus_per_node=hw.gpus_per_node,
        nodes=total, addrs_variable=addrs_variable, launcher="the node scripts", tests=tests, first_node="node-0",
        settings_comment=f"One rank per GPU; the same NCCL settings the node scripts give {engine}.",
        annotate=annotate), assumed_bus_bandwidth(deployment.decisions))
    return script.render()
