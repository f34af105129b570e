"""``run.sh`` for one host, ``node-<k>.sh`` per node of a multi-node plan, and the NCCL preflight.

Built with the shared emitters (shell quoting, docker run, NCCL variables, all_reduce_perf);
the raw lines here are fixed bash with only validated names and integers in them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deployc.contract import Server
from deployc.contract.toolkit import EnvRef
from deployc.contract.toolkit.docker import HF_CACHE_IN_CONTAINER, DockerRun, HealthCheck, docker_run_groups
from deployc.contract.toolkit.hftoken import HF_TOKEN, token_preamble, token_renamed
from deployc.contract.toolkit.images import pinned_tag_note
from deployc.contract.toolkit.nccl import nccl_env, node_scripts_preflight
from deployc.contract.toolkit.shell import ScriptBuilder, group
from deployc_sglang import ENGINE, ENGINE_VERSION
from deployc_sglang.command import DIST_PORT, LAUNCH, NodeRole, launch_command
from deployc_sglang.options import SglangOptions
from deployc_sglang.rocm import rocm_env

if TYPE_CHECKING:
    from deployc.contract import Deployment

HEAD_ADDR = EnvRef("SGLANG_HEAD_ADDR", "set SGLANG_HEAD_ADDR to the address of node-0")


def image_note(deployment: Deployment) -> str | None:
    """Said in every script header when the spec pins a tag other than the one the flags were checked against."""
    return pinned_tag_note(deployment, f"every flag here was checked against SGLang {ENGINE_VERSION}",
                           "another SGLang version, check the flags against it")


def docker_run(deployment: Deployment, server: Server, options: SglangOptions, rank: int) -> DockerRun:
    """The container of one server on one of its nodes."""
    spec = deployment
    hw = spec.hardware
    multi = server.spans_nodes
    env = tuple((v.name, v.value, v.why) for v in nccl_env(hw.network, hw.network_interface, hw.ib_hcas)) \
        if multi else ()
    amd = deployment.gpu.is_amd
    if amd:
        env += rocm_env(deployment.gpu)
    rdma = multi and hw.network.startswith(("ib-", "roce-"))
    shm = f"{options.shm_size_gib:g}g" if options.shm_size_gib else None
    head = rank == 0
    return DockerRun(
        name=server.name if head else f"{server.name}-worker{rank}",
        image=deployment.image.reference,
        gpu_device_ids=server.gpu_ids,
        shm_size=shm,
        shm_size_why="a private /dev/shm ([backends.sglang] shm_size_gib): NCCL and the scheduler/detokenizer "
                     "processes exchange tensors through it; Docker's 64 MiB default is too small (USER-PAINS #9)",
        network_host=multi,
        network_host_why="the host's network: torch.distributed and NCCL reach the other nodes directly",
        ports=(server.port,) if head else (),
        volumes=((spec.operations.model_cache, HF_CACHE_IN_CONTAINER,
                  "the host's Hugging Face cache: weights download once and survive restarts"),),
        env_passthrough=((HF_TOKEN, "the Hugging Face token, passed by name from this shell's environment; its value "
                                    "is never written into this file"),),
        env_renamed=token_renamed(deployment),
        env=env,
        devices=(("/dev/infiniband", "the RDMA devices, for NCCL's InfiniBand/RoCE transport"),) if rdma else (),
        ulimits=(("memlock=-1", "RDMA registers (pins) GPU and host buffers; the default limit breaks it"),)
        if rdma else (),
        cap_add=(("IPC_LOCK", "lets NCCL pin memory for RDMA"),) if rdma else (),
        health=HealthCheck(port=server.port) if head else None,
        gpu_vendor="amd" if amd else "nvidia",
    )


def _builder(deployment: Deployment, purpose: str) -> ScriptBuilder:
    return ScriptBuilder(purpose=purpose, generator=f"deployc {deployment.deployc_version}",
                         engine=f"{ENGINE} {ENGINE_VERSION} (image {deployment.image.reference})",
                         spec_name=deployment.name, notes=[n for n in (image_note(deployment),) if n])


def _preamble(script: ScriptBuilder, deployment: Deployment) -> None:
    script.raw('command -v docker >/dev/null || { echo "docker is not installed" >&2; exit 1; }')
    token_preamble(script, deployment)
    script.command([group("mkdir", "-p", "--", deployment.operations.model_cache)], explain=False)
    script.blank()


def _start_server(script: ScriptBuilder, deployment: Deployment, server: Server, options: SglangOptions,
                  rank: int) -> None:
    role = NodeRole(nnodes=len(server.nodes), rank=rank)
    run = docker_run(deployment, server, options, rank)
    command = launch_command(deployment, server, options, role)
    layout = server.pool.layout
    where = f"node {server.nodes[rank]} (rank {rank} of {len(server.nodes)})" if server.spans_nodes else "this host"
    script.comment(f"Server {server.name!r}: pool {server.pool.name!r}, {layout.label()}, GPUs "
                   f"{','.join(map(str, server.gpu_ids))} on {where}, port {server.port}.")
    script.raw(f"if docker container inspect {run.name} >/dev/null 2>&1; then")
    script.raw(f'    echo "a container named {run.name} exists; remove it first: docker rm -f {run.name}" >&2')
    script.raw("    exit 1")
    script.raw("fi")
    script.command([*docker_run_groups(run), group(*LAUNCH), *command.groups])
    if rank == 0:
        script.raw(f'echo "started {run.name}: http://localhost:{server.port}/v1 (health: '
                   f'curl -fsS http://localhost:{server.port}/health)"')
    else:
        script.raw(f'echo "started {run.name} (rank {rank} of {server.name})"')
    script.blank()


def run_script(deployment: Deployment, servers: tuple[Server, ...], options: SglangOptions) -> str:
    """``run.sh``: every server of a single-node plan, one container each."""
    script = _builder(deployment, f"run.sh: start the SGLang server(s) of deployment {deployment.name!r} on this "
                            "host. The same settings are in sglang-*.yaml (python3 -m sglang.launch_server --config).")
    _preamble(script, deployment)
    for server in servers:
        _start_server(script, deployment, server, options, 0)
    script.raw('echo "follow start-up with: docker logs -f <name>; the health status turns healthy when ready"')
    return script.render()


def head_addr(head: int) -> EnvRef:
    """``SGLANG_HEAD_ADDR``, whose hint names the head (first) node of the server that spans this node."""
    return EnvRef(HEAD_ADDR.name, f"set SGLANG_HEAD_ADDR to the address of node-{int(head)}")


def node_script(deployment: Deployment, servers: tuple[Server, ...], options: SglangOptions, node: int) -> str:
    """``node-<k>.sh``: what runs on node k of a multi-node plan.

    SGLANG_HEAD_ADDR is asked for only on a node of a server that spans nodes (its first node's address, the
    rendezvous of --dist-init-addr); a server on one node alone reads none.
    """
    total = deployment.nodes_used
    here = [s for s in servers if node in s.nodes]
    joined = next((s for s in here if s.spans_nodes), None)
    if joined is None:
        purpose = (f"node-{node}.sh: node {node} of {total} of deployment {deployment.name!r}: its servers run on this "
                   "node alone, independent of the other nodes' (no collective crosses nodes), so the nodes' scripts "
                   "run in any order.")
    elif len(joined.nodes) == total:
        purpose = (f"node-{node}.sh: node {node} of {total} of deployment {deployment.name!r}. Run preflight-nccl.sh "
                   "first, then every node's script (node-0 serves the API).")
    else:
        purpose = (f"node-{node}.sh: node {node} of {total} of deployment {deployment.name!r}. Run preflight-nccl.sh "
                   f"first, then the scripts of every node of server {joined.name!r} (node-{joined.nodes[0]} serves "
                   "its API).")
    script = _builder(deployment, purpose)
    if joined is not None:
        head = joined.nodes[0]
        script.comment(f"SGLANG_HEAD_ADDR must hold node-{head}'s address on the network the nodes share "
                       f"({deployment.hardware.network}); port {DIST_PORT} on it must be reachable.")
        script.command([group(":", head_addr(head))], explain=False)
        script.raw(f'SGLANG_DIST_INIT_ADDR="${{SGLANG_HEAD_ADDR}}:{DIST_PORT}"')
    _preamble(script, deployment)
    for server in here:
        _start_server(script, deployment, server, options, server.nodes.index(node))
    return script.render()


def preflight_script(deployment: Deployment) -> str:
    """``preflight-nccl.sh``: all_reduce_perf over every node, compared with the bandwidth the plan assumed."""
    return node_scripts_preflight(deployment, lambda purpose: _builder(deployment, purpose), engine=ENGINE,
                                  addrs_variable="SGLANG_NODE_ADDRS")
