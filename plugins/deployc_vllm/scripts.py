"""``run.sh`` for one host, ``node-<k>.sh`` per node of a multi-node plan, and the NCCL preflight.

Every value from the spec or plan goes through the shell emitter's quoting; the raw lines
here are fixed bash with only validated names (container names are DNS labels, variables
are checked identifiers) and integers in them.
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

from deployc.contract import Server
from deployc.contract.toolkit.docker import docker_run_groups
from deployc.contract.toolkit.hftoken import token_preamble
from deployc.contract.toolkit.nccl import node_scripts_preflight
from deployc.contract.toolkit.shell import ScriptBuilder, group
from deployc_vllm import ENGINE, ENGINE_VERSION
from deployc_vllm.command import NodeRole, serve_command
from deployc_vllm.container import HOST_IP, docker_run, head_addr, image_note, launch, node_role
from deployc_vllm.options import VllmOptions

if TYPE_CHECKING:
    from deployc.contract import Deployment



def _builder(deployment: Deployment, purpose: str) -> ScriptBuilder:
    notes = [n for n in (image_note(deployment),) if n]
    return ScriptBuilder(purpose=purpose, generator=f"deployc {deployment.deployc_version}",
                         engine=f"{ENGINE} {ENGINE_VERSION} (image {deployment.image.reference})",
                         spec_name=deployment.name, notes=notes)


def _preamble(script: ScriptBuilder, deployment: Deployment) -> None:
    script.raw('command -v docker >/dev/null || { echo "docker is not installed" >&2; exit 1; }')
    token_preamble(script, deployment)
    script.command([group("mkdir", "-p", "--", deployment.operations.model_cache)], explain=False)
    script.blank()


def _describe(server: Server, rank: int) -> str:
    pool, layout = server.pool, server.pool.layout
    where = f"node {server.nodes[rank]} of {len(server.nodes)}" if server.spans_nodes else "this host"
    devices = ",".join(str(i) for i in server.gpu_ids)
    gpus = "GPU" if len(server.gpu_ids) == 1 else "GPUs"
    return (f"Server {server.name!r}: pool {pool.name!r}, {layout.label()}, {gpus} {devices} on {where}, "
            f"port {server.port}.")


def _start_server(script: ScriptBuilder, deployment: Deployment, server: Server, options: VllmOptions,
                  rank: int) -> None:
    role = node_role(server, rank) if server.spans_nodes else NodeRole()
    run = docker_run(deployment, server, options, role)
    command = serve_command(deployment, server, options, role)
    _entry, args = launch(server, role, options, command.argv)
    script.comment(_describe(server, rank))
    script.raw(f"if docker container inspect {run.name} >/dev/null 2>&1; then")
    script.raw(f'    echo "a container named {run.name} exists; remove it first: docker rm -f {run.name}" >&2')
    script.raw("    exit 1")
    script.raw("fi")
    serve_groups = list(command.groups)
    if args != command.argv:  # a Ray node: bash starts Ray, then (head only) vllm serve with the argv as "$@"
        ray = args[: len(args) - len(command.argv)] if role.head else args
        serve_groups = [group(*ray, why="start this node's Ray daemon" + (", then vllm serve" if role.head else ""))]
        serve_groups += list(command.groups) if role.head else []
    script.command([*docker_run_groups(run), *serve_groups])
    if role.head:
        script.raw(f'echo "started {run.name}: http://localhost:{server.port}/v1 (health: '
                   f'curl -fsS http://localhost:{server.port}/health)"')
    else:
        script.raw(f'echo "started {run.name} (worker {rank} of {server.name})"')
    script.blank()


def run_script(deployment: Deployment, servers: tuple[Server, ...], options: VllmOptions) -> str:
    """``run.sh``: every server of a single-node plan, one container each."""
    script = _builder(deployment, f"run.sh: start the vLLM server(s) of deployment {deployment.name!r} on this host.")
    _preamble(script, deployment)
    for server in servers:
        _start_server(script, deployment, server, options, 0)
    script.raw('echo "follow start-up with: docker logs -f <name>; the health status turns healthy when ready"')
    return script.render()


def single_interface(pattern: str | None) -> str | None:
    """The one interface a NCCL_SOCKET_IFNAME value names (``eth0``, ``=eth0``, first of a list), else None."""
    if not pattern or pattern.startswith("^"):
        return None
    first = pattern.split(",")[0].removeprefix("=")
    return first or None


def _host_ip(script: ScriptBuilder, interface: str | None) -> None:
    """``VLLM_HOST_IP``: the address vLLM advertises to the other nodes (else get_ip(), the default route's)."""
    name = single_interface(interface)
    if name is None:
        script.comment("VLLM_HOST_IP must hold this node's address on the network the nodes share: vLLM advertises "
                       "it to the other nodes, and otherwise takes the default route's address (get_ip()).")
        script.command([group(":", HOST_IP)], explain=False)
        return
    script.comment(f"The address vLLM advertises to the other nodes: this node's IPv4 address on {name} "
                   "(hardware.network_interface); vLLM otherwise takes the default route's (get_ip()), which may be "
                   "a management network the other nodes cannot reach.")
    script.raw(f"VLLM_HOST_IP=\"$(ip -4 -o addr show dev {shlex.quote(name)} | awk '{{print $4}}' | cut -d/ -f1 | "
               "head -n 1)\"")
    script.raw('[ -n "$VLLM_HOST_IP" ] || { echo "no IPv4 address on the interface of hardware.network_interface" '
               ">&2; exit 1; }")
    script.raw("export VLLM_HOST_IP")


def node_script(deployment: Deployment, servers: tuple[Server, ...], options: VllmOptions, node: int) -> str:
    """``node-<k>.sh``: what runs on node k of a multi-node plan (head parts and worker parts).

    VLLM_HEAD_ADDR and VLLM_HOST_IP are asked for only on a node where a server spans nodes: a server that
    runs on one node alone reads neither.
    """
    total = deployment.nodes_used
    here = [s for s in servers if node in s.nodes]
    joined = next((s for s in here if s.spans_nodes), None)  # spanning servers take whole nodes: one at most
    if joined is not None:
        purpose = (f"node-{node}.sh: node {node} of {total} of deployment {deployment.name!r}. Run node-0.sh on the "
                   "head first, then the other nodes' scripts within a few minutes; run preflight-nccl.sh before, to "
                   "check the fabric.")
    else:
        purpose = (f"node-{node}.sh: node {node} of {total} of deployment {deployment.name!r}: its servers run on this "
                   "node alone, independent of the other nodes' (no collective crosses nodes), so the nodes' scripts "
                   "run in any order.")
    script = _builder(deployment, purpose)
    if joined is not None:
        script.comment(f"VLLM_HEAD_ADDR must hold node-{joined.nodes[0]}'s address on the network the nodes share "
                       f"({deployment.hardware.network}).")
        script.command([group(":", head_addr(joined))], explain=False)
        _host_ip(script, deployment.hardware.network_interface)
    _preamble(script, deployment)
    for server in here:
        _start_server(script, deployment, server, options, server.nodes.index(node))
    return script.render()


def preflight_script(deployment: Deployment) -> str:
    """``preflight-nccl.sh``: all_reduce_perf over every node, compared with the bandwidth the plan assumed."""
    return node_scripts_preflight(deployment, lambda purpose: _builder(deployment, purpose), engine=ENGINE,
                                  addrs_variable="VLLM_NODE_ADDRS", annotate=True)

