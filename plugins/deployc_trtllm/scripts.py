"""PyTorch flow scripts: ``run.sh`` for one host, ``serve-slurm.sh`` for a multi-node server, the NCCL preflight.

Multi-node: TensorRT-LLM 1.2 runs one MPI world per server; its documented launch for
``trtllm-serve`` across nodes is Slurm ``srun --mpi=pmix`` with the container (pyxis) and
``trtllm-llmapi-launch`` in front of ``trtllm-serve`` (docs: trtllm-serve, "multi-node serving
with Slurm"; ``examples/llm-api/llm_mgmn_trtllm_serve.sh``): rank 0 serves the API, the other
ranks are its workers.  Raw lines here are fixed bash with only validated names and integers.
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

from deployc.contract import Server
from deployc.contract.toolkit import EnvRef
from deployc.contract.toolkit.docker import HF_CACHE_IN_CONTAINER, docker_run_groups
from deployc.contract.toolkit.hftoken import HF_TOKEN, token_preamble
from deployc.contract.toolkit.nccl import Preflight, assumed_bus_bandwidth, nccl_env, write_preflight
from deployc.contract.toolkit.shell import ScriptBuilder, group
from deployc_trtllm import ENGINE, ENGINE_VERSION
from deployc_trtllm.container import config_host_dir, docker_run, exists_guard, image_note
from deployc_trtllm.options import TrtllmOptions
from deployc_trtllm.pytorch import CONFIG_DIR, config_name, serve_command

if TYPE_CHECKING:
    from deployc.contract import Deployment

LLMAPI_LAUNCH = "trtllm-llmapi-launch"  # wraps trtllm-serve so MPI ranks > 0 become its workers


def builder(deployment: Deployment, purpose: str) -> ScriptBuilder:
    """A script with deployc's header for this engine."""
    return ScriptBuilder(purpose=purpose, generator=f"deployc {deployment.deployc_version}",
                         engine=f"{ENGINE} {ENGINE_VERSION} (image {deployment.image.reference})",
                         spec_name=deployment.name, notes=[n for n in (image_note(deployment),) if n])


def run_script(deployment: Deployment, servers: tuple[Server, ...], options: TrtllmOptions,
               node: int | None = None) -> str:
    """``run.sh``: one trtllm-serve container per server of a single-node plan; ``run-node-<k>.sh`` (``node``
    given): those of node k of a multi-node plan, each on that node alone."""
    flow = "(PyTorch flow: trtllm-serve loads the Hugging Face checkpoint, no engine build)"
    if node is None:
        purpose = f"run.sh: start the TensorRT-LLM server(s) of deployment {deployment.name!r} on this host {flow}."
    else:
        purpose = (f"run-node-{node}.sh: start the TensorRT-LLM server(s) of node {node} of {deployment.nodes_used} "
                   f"of deployment {deployment.name!r} on this host {flow}. They run on this node alone, independent "
                   "of the other nodes' servers, so the nodes' scripts run in any order.")
    script = builder(deployment, purpose)
    script.raw('command -v docker >/dev/null || { echo "docker is not installed" >&2; exit 1; }')
    script.raw('cd "$(dirname "${BASH_SOURCE[0]}")"  # the options files sit beside this script')
    token_preamble(script, deployment)
    host_dir = config_host_dir(deployment)
    script.command([group("mkdir", "-p", "--", deployment.operations.model_cache, host_dir)], explain=False)
    script.command([group("cp", "--", *(config_name(s.name) for s in servers), host_dir + "/")], explain=False)
    script.blank()
    for server in servers:
        serve = serve_command(deployment, server.pool, server.port, f"{CONFIG_DIR}/{config_name(server.name)}")
        script.comment(f"Server {server.name!r}: pool {server.pool.name!r}, {server.pool.layout.label()}, GPUs "
                       f"{','.join(map(str, server.gpu_ids))}, port {server.port}.")
        exists_guard(script, server.name)
        script.command([*docker_run_groups(docker_run(deployment, server, options, host_dir)), group(*serve.program),
                        *serve.groups])
        script.raw(f'echo "started {server.name}: http://localhost:{server.port}/v1 (health: '
                   f'curl -fsS http://localhost:{server.port}/health)"')
        script.blank()
    script.raw('echo "follow start-up with: docker logs -f <name>; the health status turns healthy when ready"')
    return script.render()


def slurm_script(deployment: Deployment, server: Server) -> str:
    """``serve-slurm-<server>.sh``: srun over the server's nodes, one MPI rank per GPU, rank 0 serving the API."""
    hw = deployment.hardware
    nodes = len(server.nodes)
    script = builder(deployment, f"serve-slurm-{server.name}.sh: run server {server.name!r} across {nodes} nodes with "
                           f"Slurm (srun --mpi=pmix, the container through the pyxis plugin), {hw.gpus_per_node} MPI "
                           "ranks per node. Run preflight-nccl.sh first. The API is served on the first node.")
    script.raw('command -v srun >/dev/null || { echo "srun not found: this script needs Slurm with pyxis" >&2; '
               "exit 1; }")
    script.raw('here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"  # the options file sits beside this script')
    token_preamble(script, deployment)
    cache = deployment.operations.model_cache
    script.command([group("mkdir", "-p", "--", cache)], explain=False)
    script.raw(f'mounts={shlex.quote(f"{cache}:{HF_CACHE_IN_CONTAINER}")}",${{here}}:{CONFIG_DIR}"')
    env = nccl_env(hw.network, hw.network_interface, hw.ib_hcas)
    if env:
        script.comment("NCCL settings for the spec's network; srun passes this environment to every rank.")
        for var in env:
            script.command([group("export", f"{var.name}={var.value}")], explain=False)
    serve = serve_command(deployment, server.pool, server.port, f"{CONFIG_DIR}/{config_name(server.name)}")
    script.blank()
    script.comment(f"Server {server.name!r}: pool {server.pool.name!r}, {server.pool.layout.label()}, "
                   f"{nodes} × {hw.gpus_per_node} GPUs, port {server.port} on the first node.")
    script.command([
        group("srun", why="one MPI world over the nodes; rank 0 runs the HTTP server"),
        group("--nodes", str(nodes), why="the server's nodes"),
        group("--ntasks-per-node", str(hw.gpus_per_node), why="one rank per GPU"),
        group("--gres", f"gpu:{hw.gpus_per_node}"),
        group("--mpi", "pmix", why="PMIx wires the ranks into one MPI world (what trtllm-llmapi-launch expects)"),
        group("--container-image", deployment.image.reference, why="the pinned image, through pyxis/enroot"),
        group("--container-mounts", EnvRef("mounts", required=False),
              why="the Hugging Face cache and the options YAML"),
        group("--export", f"ALL,{HF_TOKEN}", why="the environment above, and the token by name"),
        group(LLMAPI_LAUNCH, why="rank 0 starts trtllm-serve; the other ranks wait as its MPI workers"),
        group(*serve.program), *serve.groups])
    return script.render()


def preflight_script(deployment: Deployment) -> str:
    """``preflight-nccl.sh``: all_reduce_perf over every node, compared with the bandwidth the plan assumed."""
    hw = deployment.hardware
    total = deployment.nodes_used
    script = builder(deployment, f"preflight-nccl.sh: check the {hw.network} fabric between the {total} nodes with "
                           "nccl-tests' all_reduce_perf before starting TensorRT-LLM (run it on the first node; needs "
                           "MPI and nccl-tests on every node, and passwordless SSH between them).")
    write_preflight(script, Preflight(network=hw.network, interface=hw.network_interface, ib_hcas=tuple(hw.ib_hcas),
                                      gpus_per_node=hw.gpus_per_node, nodes=total, addrs_variable="TRTLLM_NODE_ADDRS",
                                      launcher="the Slurm script"),
                    assumed_bus_bandwidth(deployment.decisions))
    return script.render()
