"""``compose.yaml`` (single node) and Kubernetes manifests (one file per pool) for the vLLM servers.

Compose services read the same container data as ``run.sh``.  In Kubernetes a pool whose
servers fit on one node is a Deployment (one pod per replica) behind a Service; a pool whose
servers span nodes is a LeaderWorkerSet (one group of pods per replica, the leader serving
the API), the node rank and head address coming from the variables LWS injects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from deployc.contract import Server
from deployc.contract.toolkit import EnvRef
from deployc.contract.toolkit.compose import compose_document, compose_service
from deployc.contract.toolkit.headers import LWS_CONTROLLER, generated_header, k8s_apply, k8s_labels
from deployc.contract.toolkit.hftoken import HF_TOKEN, token_source
from deployc.contract.toolkit.kubernetes import (
    ContainerInput,
    Probe,
    dump_documents,
    leader_worker_set,
    service,
)
from deployc.contract.toolkit.kubernetes import (
    deployment as k8s_deployment,
)
from deployc.contract.toolkit.nccl import EnvVar, nccl_env
from deployc.contract.toolkit.rocm import K8S_GPU_RESOURCE
from deployc_vllm.command import NodeRole, serve_command
from deployc_vllm.container import HOST_IP, docker_run, image_note, launch
from deployc_vllm.options import VllmOptions
from deployc_vllm.rocm import rocm_env

if TYPE_CHECKING:
    from deployc.contract import Deployment

DEFAULT_K8S_SHM_GIB = 16
POD_INTERFACE = "eth0"  # the interface CNI plugins give a pod on the pod network
LEADER_ADDR = EnvRef("LWS_LEADER_ADDRESS")
WORKER_INDEX = EnvRef("LWS_WORKER_INDEX")


def _header(deployment: Deployment, what: str) -> list[str]:
    return generated_header(deployment, what, image_note(deployment))


def compose_yaml(deployment: Deployment, servers: tuple[Server, ...], options: VllmOptions) -> str:
    """``compose.yaml``: one service per server of a single-node plan."""
    services: dict[str, dict[str, Any]] = {}
    for server in servers:
        role = NodeRole()
        command = serve_command(deployment, server, options, role)
        services[server.name] = compose_service(docker_run(deployment, server, options, role), command.argv)
    header = _header(deployment, "compose.yaml: `docker compose up -d` starts every server; "
                                 f"{token_source(deployment)}.")
    return compose_document(services, header)


def _container(deployment: Deployment, server: Server, options: VllmOptions, role: NodeRole,
               env: tuple[tuple[str, str], ...], name: str) -> ContainerInput:
    argv = serve_command(deployment, server, options, role).argv
    entrypoint, args = launch(server, role, options, argv)
    shm = options.shm_size_gib or DEFAULT_K8S_SHM_GIB
    return ContainerInput(
        name=name, image=deployment.image.reference, args=args, gpus=server.gpus,
        port=server.port if role.head else None,
        shm_size=f"{shm:g}Gi", env=env, secret_env=((HF_TOKEN, options.hf_token_secret, "token"),),
        cache_host_path=deployment.operations.model_cache,
        probe=Probe(path="/health", port=server.port) if role.head else None,
        command=(entrypoint,) if entrypoint else None,
        gpu_resource=K8S_GPU_RESOURCE if deployment.gpu.is_amd else "nvidia.com/gpu")


def rdma_in_pods(deployment: Deployment, options: VllmOptions) -> bool:
    """Whether the multi-node pods get an RDMA device (an RDMA network and the device plugin's resource named)."""
    rdma_network = deployment.hardware.network.startswith(("ib-", "roce-"))
    return rdma_network and options.k8s_rdma_resource is not None


def pod_nccl_env(deployment: Deployment, options: VllmOptions) -> list[EnvVar]:
    """The NCCL variables of a multi-node pod: the network's, or TCP sockets when the pod has no RDMA device."""
    hw = deployment.hardware
    # A pod is on the pod network: its interface is the CNI's eth0, not the host's hardware.network_interface.
    env = nccl_env(hw.network, POD_INTERFACE, hw.ib_hcas)
    if not hw.network.startswith(("ib-", "roce-")) or rdma_in_pods(deployment, options):
        return env
    env = [v for v in env if not v.name.startswith("NCCL_IB_")]
    return [*env, EnvVar("NCCL_IB_DISABLE", "1", "the pod has no RDMA device ([backends.vllm] k8s_rdma_resource "
                                              "unset): TCP sockets, not a failed probe for InfiniBand")]


def _node_pod(deployment: Deployment, options: VllmOptions, pod: ContainerInput) -> ContainerInput:
    """A pod of a multi-node engine: VLLM_HOST_IP = its own address, and the RDMA device when there is one."""
    pod = attrs.evolve(pod, field_env=((HOST_IP.name, "status.podIP"),))
    if not rdma_in_pods(deployment, options):
        return pod
    return attrs.evolve(pod, extra_limits=((str(options.k8s_rdma_resource), 1),), capabilities=("IPC_LOCK",))


def tcp_note(deployment: Deployment) -> str:
    """What the Kubernetes manifests of an RDMA network run over when the pods get no RDMA device."""
    network = deployment.hardware.network
    return (f"NCCL runs over TCP sockets on the pod network in these manifests, not over {network}: the pods get no "
            "RDMA device, IPC_LOCK or memlock limit. The plan's inter-node bandwidth assumes RDMA, so multi-node "
            "steps will be slower than predicted; set [backends.vllm] k8s_rdma_resource to the RDMA device "
            "plugin's resource (e.g. rdma/rdma_shared_device_a) to give each pod the device and IPC_LOCK.")


def _pool_documents(deployment: Deployment, pool_servers: list[Server], options: VllmOptions) -> list[dict[str, Any]]:
    # Pods have their own network namespace: every replica listens on the spec's port.
    first = attrs.evolve(pool_servers[0], port=deployment.operations.port)
    replicas = len(pool_servers)
    if not first.pool.layout.experts_across_replicas and first.engine_dp > 1:
        # The Service balances over pods: one pod per replica, not one engine holding a host's replicas.
        per_replica = first.pool.layout.tp * first.pool.layout.pp
        first = attrs.evolve(first, gpu_ids=first.gpu_ids[:per_replica], engine_dp=1)
        replicas = first.pool.layout.dp
    labels = k8s_labels(deployment, first)
    name = labels["app.kubernetes.io/instance"]
    namespace = options.k8s_namespace
    rocm = tuple((name, value) for name, value, _why in rocm_env(deployment.gpu))
    if not first.spans_nodes:
        pod = _container(deployment, first, options, NodeRole(), rocm, "vllm")
        return [k8s_deployment(name, namespace, labels, replicas, pod),
                service(name, namespace, labels, first.port)]
    env = tuple((v.name, v.value) for v in pod_nccl_env(deployment, options)) + rocm  # RCCL reads the NCCL_* variables
    size = len(first.nodes)
    leader = _node_pod(deployment, options, _container(deployment, first, options, NodeRole(
        nnodes=size, rank="0", head=True, head_addr=LEADER_ADDR), env, "vllm-leader"))
    worker = _node_pod(deployment, options, _container(deployment, first, options, NodeRole(
        nnodes=size, rank=WORKER_INDEX, head=False, head_addr=LEADER_ADDR), env, "vllm-worker"))
    return [leader_worker_set(name, namespace, labels, replicas, size, leader, worker),
            service(name, namespace, labels, first.port, selector={**labels, "role": "leader"})]


def kubernetes_files(deployment: Deployment, servers: tuple[Server, ...], options: VllmOptions) -> dict[str, str]:
    """``k8s/<name>.yaml`` per pool: its workload and its Service."""
    files: dict[str, str] = {}
    for pool in deployment.pools:
        pool_servers = [s for s in servers if s.pool is pool]
        documents = _pool_documents(deployment, pool_servers, options)
        kind = documents[0]["kind"]
        header = _header(deployment, f"k8s: {kind} and Service for pool {pool.name!r} ({pool.layout.label()}). "
                         + k8s_apply(options.hf_token_secret))
        if kind == "LeaderWorkerSet":
            header.append(f"{LWS_CONTROLLER}.")
            if rdma_in_pods(deployment, options):
                header.append(f"RDMA: each pod requests one {options.k8s_rdma_resource} (the RDMA device plugin's "
                              "resource) and the IPC_LOCK capability, which lets NCCL register (pin) memory beyond "
                              "the container's memlock limit.")
            elif deployment.hardware.network.startswith(("ib-", "roce-")):
                header.append(tcp_note(deployment))
        files[f"k8s/{documents[0]['metadata']['name']}.yaml"] = dump_documents(documents, header)
    return files
