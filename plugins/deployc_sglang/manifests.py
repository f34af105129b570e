"""``compose.yaml``, Kubernetes manifests, ``bench.sh`` and the monitoring files for the SGLang servers.

Compose services read the same container data as ``run.sh`` (:func:`deployc_sglang.scripts.docker_run`).
In Kubernetes a server on one node is a Deployment behind a Service; a server spanning nodes is a
LeaderWorkerSet: every pod runs ``sglang.launch_server`` with ``--nnodes``, its ``--node-rank``
from ``LWS_WORKER_INDEX`` and ``--dist-init-addr`` on the leader (``LWS_LEADER_ADDRESS``).
Metric names are SGLang 0.5.23's (``sglang/srt/observability/metrics_collector.py``), served on
the API port's ``/metrics`` when the server runs with ``--enable-metrics``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from deployc.contract import Server
from deployc.contract.toolkit import EnvRef, Word
from deployc.contract.toolkit import monitoring as shared_monitoring
from deployc.contract.toolkit.bench import CLIENT_VERSION, BenchClient, BenchTarget, bench_script
from deployc.contract.toolkit.compose import compose_document, compose_service
from deployc.contract.toolkit.headers import LWS_CONTROLLER, generated_header, k8s_apply, k8s_labels
from deployc.contract.toolkit.hftoken import HF_TOKEN, token_export, token_source
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
from deployc.contract.toolkit.monitoring import EngineMetrics
from deployc.contract.toolkit.nccl import nccl_env
from deployc.contract.toolkit.rocm import K8S_GPU_RESOURCE
from deployc_sglang import ENGINE, ENGINE_VERSION
from deployc_sglang.command import DIST_INIT_ADDR, DIST_PORT, LAUNCH, NodeRole, launch_command
from deployc_sglang.options import SglangOptions
from deployc_sglang.rocm import rocm_env
from deployc_sglang.scripts import docker_run, image_note

if TYPE_CHECKING:
    from deployc.contract import Deployment

BENCH_IMAGE = "vllm/vllm-openai:v0.33.0"  # the client whose `vllm bench serve` flags toolkit.bench checks
DEFAULT_K8S_SHM_GIB = 16
HF_TOKEN_SECRET = "hf-token"  # noqa: S105  (a Secret's name, not a token)
METRICS = EngineMetrics(
    engine=f"{ENGINE} {ENGINE_VERSION}", alert_prefix="Sglang", metrics_path="/metrics",
    kv_usage="sglang:token_usage", evictions="sglang:num_retracted_requests_total", evictions_label="retractions",
    evictions_text="requests retracted (their KV freed, recomputed later) because the KV pool ran out: latency "
                   "spikes without errors",
    queue="sglang:num_queue_reqs", hit_rate="max(sglang:cache_hit_rate) by (model_name)",
    ttft_histogram="sglang:time_to_first_token_seconds", itl_histogram="sglang:inter_token_latency_seconds",
    notes=("The servers run with `--enable-metrics` (SGLang serves no metrics without it).",))


def _header(deployment: Deployment, what: str) -> list[str]:
    return generated_header(deployment, what, image_note(deployment))


def compose_yaml(deployment: Deployment, servers: tuple[Server, ...], options: SglangOptions) -> str:
    """``compose.yaml``: one service per server of a single-node plan."""
    services: dict[str, dict[str, Any]] = {}
    for server in servers:
        command = launch_command(deployment, server, options)
        services[server.name] = compose_service(docker_run(deployment, server, options, 0), (*LAUNCH, *command.argv))
    header = _header(deployment, "compose.yaml: `docker compose up -d` starts every server; "
                                 f"{token_source(deployment)}.")
    return compose_document(services, header)


def _k8s_argv(argv: tuple[Word, ...]) -> tuple[Word, ...]:
    """The node rank from the variable LWS injects (the per-node scripts write it literally)."""
    out = list(argv)
    for index, word in enumerate(out[:-1]):
        if word == "--node-rank":
            out[index + 1] = EnvRef("LWS_WORKER_INDEX")
    return tuple(out)


def _documents(deployment: Deployment, server: Server, options: SglangOptions) -> list[dict[str, Any]]:
    # Pods have their own network namespace: every server listens on the spec's port.
    server = attrs.evolve(server, port=deployment.operations.port)
    labels = k8s_labels(deployment, server)
    name = labels["app.kubernetes.io/instance"]
    shm = f"{options.shm_size_gib or DEFAULT_K8S_SHM_GIB:g}Gi"
    nodes = len(server.nodes)
    argv = _k8s_argv((*LAUNCH, *launch_command(deployment, server, options, NodeRole(nnodes=nodes, rank=0)).argv))
    hw = deployment.hardware
    env: tuple[tuple[str, str], ...] = ()
    if nodes > 1:
        # $(LWS_LEADER_ADDRESS) expands in an env value because LWS puts its variables first in the container's
        # env list (kubernetes-sigs/lws, addEnvVarsIfNotExists), and Kubernetes expands earlier variables.
        env = (*((v.name, v.value) for v in nccl_env(hw.network, hw.network_interface, hw.ib_hcas)),
               (DIST_INIT_ADDR.name, f"$(LWS_LEADER_ADDRESS):{DIST_PORT}"))
    gpu = deployment.gpu
    if gpu.is_amd:  # as in run.sh: AITER on (the device plugin picks the GPUs; RCCL reads the NCCL_* above)
        env += tuple((name, value) for name, value, _why in rocm_env(gpu))

    def pod(container: str, head: bool) -> ContainerInput:
        return ContainerInput(name=container, image=deployment.image.reference, command=LAUNCH, args=argv[len(LAUNCH):],
                              gpus=len(server.gpu_ids), port=server.port if head else None, shm_size=shm, env=env,
                              secret_env=((HF_TOKEN, HF_TOKEN_SECRET, "token"),),
                              cache_host_path=deployment.operations.model_cache,
                              probe=Probe(path="/health", port=server.port) if head else None,
                              gpu_resource=K8S_GPU_RESOURCE if gpu.is_amd else "nvidia.com/gpu")

    if nodes == 1:
        return [k8s_deployment(name, None, labels, 1, pod("sglang", True)), service(name, None, labels, server.port)]
    return [leader_worker_set(name, None, labels, 1, nodes, pod("sglang-leader", True), pod("sglang-worker", False)),
            service(name, None, labels, server.port, selector={**labels, "role": "leader"})]


def kubernetes_files(deployment: Deployment, servers: tuple[Server, ...], options: SglangOptions) -> dict[str, str]:
    """``k8s/<name>.yaml`` per server: its workload and its Service."""
    files: dict[str, str] = {}
    for server in servers:
        documents = _documents(deployment, server, options)
        kind = documents[0]["kind"]
        header = _header(deployment,
                         f"k8s: {kind} and Service for server {server.name!r} ({server.pool.layout.label()}). "
                         + k8s_apply(HF_TOKEN_SECRET))
        if kind == "LeaderWorkerSet":
            header.append(f"{LWS_CONTROLLER}; "
                          f"port {DIST_PORT} must be open between the pods.")
        files[f"k8s/{documents[0]['metadata']['name']}.yaml"] = dump_documents(documents, header)
    return files


def observability_files(deployment: Deployment, servers: tuple[Server, ...]) -> dict[str, str]:
    """``bench.sh``, ``monitoring.md`` and ``prometheus-rules.yaml``."""
    notes = tuple(n for n in (image_note(deployment), f"The benchmark client is {CLIENT_VERSION}'s `vllm bench serve` "
                              f"(image {BENCH_IMAGE}) over the OpenAI API: it measures SGLang as any client would.")
                  if n)
    client = BenchClient(image=BENCH_IMAGE, engine=f"{ENGINE} {ENGINE_VERSION} (image {deployment.image.reference})",
                         notes=notes, token_export=token_export(deployment))
    targets = [BenchTarget(name=s.name, port=s.port, pool=s.pool, node=s.nodes[0]) for s in servers]
    return {"bench.sh": bench_script(deployment, targets, client),
            "monitoring.md": shared_monitoring.monitoring_markdown(deployment, METRICS, [(s.name,
                                                                                          s.port) for s in servers]),
            "prometheus-rules.yaml": shared_monitoring.prometheus_rules(deployment, METRICS,
                                                                        deployment.image.reference)}
