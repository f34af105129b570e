"""The container of one vLLM server on one node: image, GPUs, shared memory, network, volumes, env.

Shared by ``run.sh`` / node scripts (docker run) and ``compose.yaml``, so they always agree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deployc.contract import Server
from deployc.contract.toolkit import EnvRef, Word
from deployc.contract.toolkit.docker import HF_CACHE_IN_CONTAINER, DockerRun, HealthCheck
from deployc.contract.toolkit.hftoken import HF_TOKEN, token_renamed
from deployc.contract.toolkit.images import pinned_tag_note
from deployc.contract.toolkit.nccl import nccl_env
from deployc_vllm import ENGINE_VERSION
from deployc_vllm.command import HEAD_ADDR, NodeRole
from deployc_vllm.options import VllmOptions
from deployc_vllm.rocm import rocm_env

if TYPE_CHECKING:
    from deployc.contract import Deployment

HOST_IP = EnvRef("VLLM_HOST_IP", "set VLLM_HOST_IP to this node address on the network the nodes share")
HOST_IP_WHY = ("the address vLLM advertises to the other nodes (vllm.utils get_ip() reads VLLM_HOST_IP before "
               "falling back to the default route's address)")
RAY_PORT = 6379
# "$@" hands the serve argv to vLLM without a second round of shell parsing.
RAY_HEAD = f'ray start --head --port={RAY_PORT} --disable-usage-stats && exec vllm serve "$@"'
RAY_WORKER = f'exec ray start --block --disable-usage-stats --address="$1:{RAY_PORT}"'


def image_note(deployment: Deployment) -> str | None:
    """Said in every artifact header when the spec pins a tag other than the one the flags were checked against."""
    return pinned_tag_note(deployment, f"every flag here was checked against vLLM {ENGINE_VERSION}'s flag set",
                           "another vLLM version, check the flags against it")


def launch(server: Server, role: NodeRole, options: VllmOptions,
           argv: tuple[Word, ...]) -> tuple[str | None, tuple[Word, ...]]:
    """Entrypoint override and container arguments: ``vllm serve`` itself, or a Ray node around it."""
    if options.distributed_executor_backend != "ray" or not server.spans_nodes:
        return None, argv
    if role.head:
        return "bash", ("-c", RAY_HEAD, "vllm-ray-head", *argv)
    return "bash", ("-c", RAY_WORKER, "vllm-ray-worker", role.head_addr)


def container_name(server: Server, role: NodeRole) -> str:
    """The server's name on its head node, ``<name>-worker<rank>`` on the others."""
    return server.name if role.head else f"{server.name}-worker{role.rank}"


def _shm(options: VllmOptions) -> tuple[str | None, str]:
    if options.shm_size_gib is None:
        return None, ""
    size = f"{options.shm_size_gib:g}g"
    return size, (f"a private /dev/shm of {size} ([backends.vllm] shm_size_gib) instead of the host's IPC "
                  "namespace: NCCL and PyTorch workers exchange tensors through it, Docker's 64 MiB default is too "
                  "small (USER-PAINS #9)")


def docker_run(deployment: Deployment, server: Server, options: VllmOptions, role: NodeRole) -> DockerRun:
    """The container for one server on one of its nodes."""
    spec = deployment
    hw = spec.hardware
    multi = server.spans_nodes
    network = hw.network if multi else "none"
    env = tuple((v.name, v.value, v.why) for v in nccl_env(network, hw.network_interface, hw.ib_hcas)) \
        if multi else ()
    amd = deployment.gpu.is_amd
    if amd:
        env += rocm_env(deployment.gpu)  # RCCL reads the NCCL_* variables above, RoCE's GID index included
    rdma = multi and network.startswith(("ib-", "roce-"))
    shm, shm_why = _shm(options)
    entrypoint, _ = launch(server, role, options, ())
    return DockerRun(
        name=container_name(server, role),
        image=deployment.image.reference,
        gpu_device_ids=server.gpu_ids,
        shm_size=shm,
        shm_size_why=shm_why,
        network_host=multi,
        network_host_why="the host's network: torch.distributed and NCCL connect to the other nodes' addresses "
                         "and RDMA devices directly, without Docker's NAT",
        ports=(server.port,) if role.head else (),
        volumes=((spec.operations.model_cache, HF_CACHE_IN_CONTAINER,
                  "the host's Hugging Face cache: weights download once and survive restarts"),),
        env_passthrough=((HF_TOKEN, "the Hugging Face token, passed by name from this shell's environment; its "
                                    "value is never written into this file"),
                         *(((HOST_IP.name, HOST_IP_WHY),) if multi else ())),
        env_renamed=token_renamed(deployment),
        env=env,
        devices=(("/dev/infiniband", "the RDMA devices, for NCCL's InfiniBand/RoCE transport"),) if rdma else (),
        ulimits=(("memlock=-1", "RDMA registers (pins) GPU and host buffers; the default limit breaks it"),)
        if rdma else (),
        cap_add=(("IPC_LOCK", "lets NCCL pin memory for RDMA"),) if rdma else (),
        health=HealthCheck(port=server.port) if role.head else None,
        entrypoint=entrypoint,
        gpu_vendor="amd" if amd else "nvidia",
    )


def head_addr(server: Server) -> EnvRef:
    """``VLLM_HEAD_ADDR``, whose hint names the server's head: its first node (node-0 unless other servers
    fill the nodes before it)."""
    return EnvRef(HEAD_ADDR.name, f"set VLLM_HEAD_ADDR to the address of the head node (node-{int(server.nodes[0])})")


def head_role(server: Server) -> NodeRole:
    """The role of a server's first node."""
    return NodeRole(nnodes=len(server.nodes), rank="0", head=True, head_addr=head_addr(server))


def node_role(server: Server, rank: int) -> NodeRole:
    """The role of the ``rank``-th node of a server (literal rank, the head address from the environment)."""
    return NodeRole(nnodes=len(server.nodes), rank=str(rank), head=rank == 0, head_addr=head_addr(server))
