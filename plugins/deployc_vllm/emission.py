"""Everything ``deployc_emit`` returns: the artifacts, one reason per serve flag, and vLLM's own decisions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from deployc.contract import Alternative, Artifact, Decision, Emission, FlagReason, Quantity, Server
from deployc.contract.toolkit.launch import balancer_note, launch_artifacts, node_script_artifact
from deployc_vllm import ENGINE_VERSION
from deployc_vllm.bench import bench_script
from deployc_vllm.command import NODE_FLAGS, NodeRole, serve_command
from deployc_vllm.container import node_role
from deployc_vllm.manifests import compose_yaml, kubernetes_files, rdma_in_pods, tcp_note
from deployc_vllm.monitoring import monitoring_markdown, prometheus_rules
from deployc_vllm.options import VllmOptions, parse_options
from deployc_vllm.rocm import rocm_decision
from deployc_vllm.scripts import node_script, preflight_script, run_script

if TYPE_CHECKING:
    from deployc.contract import Deployment


def _flags(deployment: Deployment, servers: tuple[Server, ...], options: VllmOptions) -> tuple[FlagReason, ...]:
    out: list[FlagReason] = []
    several = len(deployment.pools) > 1
    for pool in deployment.pools:
        server = next(s for s in servers if s.pool is pool)
        roles = [node_role(server, 0), node_role(server, 1)] if server.spans_nodes else [NodeRole()]
        seen: set[str] = set()
        for role in roles:
            for flag in serve_command(deployment, server, options, role).flags:
                if flag.flag in seen:
                    continue
                seen.add(flag.flag)
                value = flag.value
                if flag.flag == "--node-rank":
                    value = f"0 (node-0, head) … {len(server.nodes) - 1}"
                reason = f"pool {pool.name}: {flag.reason}" if several else flag.reason
                out.append(FlagReason(flag=flag.flag, value=value, reason=reason, decision=flag.decision))
    return tuple(out)


def _decisions(deployment: Deployment, servers: tuple[Server, ...], options: VllmOptions) -> tuple[Decision, ...]:
    out = [Decision(
        id="vllm.image", value=deployment.image.reference, rule="DPD501",
        reason=f"vLLM {ENGINE_VERSION}, the version whose real argument parser every emitted flag was checked against"
               + ("" if deployment.image.tag_override is None else
                  f"; the spec pins tag {deployment.image.tag_override!r}, so check the flags against it"))]
    shm = ("host IPC namespace (--ipc=host)" if options.shm_size_gib is None
           else f"{options.shm_size_gib:g} GiB /dev/shm")
    out.append(Decision(id="vllm.shared_memory", value=shm, rule="DPD501",
                        reason="NCCL and PyTorch worker processes exchange tensors through /dev/shm; Docker's 64 MiB "
                               "default fails or hangs them (USER-PAINS #9)",
                        rejected=(Alternative("64 MiB default", "too small for NCCL's shared-memory transport"),)))
    if deployment.gpu.is_amd:
        out.append(rocm_decision(deployment))
    for pool in deployment.pools:
        if pool.layout.dp <= 1:
            continue
        engines = [s for s in servers if s.pool is pool]
        if pool.layout.experts_across_replicas:
            value, reason = "one engine (--data-parallel-size)", (
                "expert parallelism shards the MoE experts across the data-parallel ranks, which must be one engine")
            rejected = Alternative("separate servers", "experts could not be sharded across replicas")
        elif all(s.engine_dp == 1 for s in engines):
            value, reason = "one server per replica", (
                f"each replica needs {pool.layout.tp * pool.layout.pp} GPUs, a whole host or more: one engine per "
                f"replica, each host serving on its own address; {balancer_note(engines)}")
            rejected = Alternative("--data-parallel-size", "replicas on different hosts")
        else:
            value = "one engine per host (--data-parallel-size)"
            reason = ("the replicas on a host are one vLLM engine with --data-parallel-size: its API server spreads "
                      "the requests over the data-parallel engine cores behind one port" +
                      (", so no load balancer is needed" if len(engines) == 1 else
                       f"; the pool has one such engine on each of {len(engines)} hosts, and {balancer_note(engines)}"))
            rejected = Alternative("separate servers on separate ports",
                                   "nothing would spread the requests over the ports without a load balancer in "
                                   "front")
        out.append(Decision(id=f"vllm.data_parallel.{pool.name}", value=value, rule="DPD501", reason=reason,
                            numbers=(Quantity("replicas", pool.layout.dp, ""),
                                     Quantity("engines", len(engines), "")),
                            rejected=(rejected,)))
    if any(s.spans_nodes for s in servers):
        network = deployment.hardware.network
        if rdma_in_pods(deployment, options):
            value = f"RDMA ({options.k8s_rdma_resource} and IPC_LOCK in every pod)"
            reason = (f"the pods of a multi-node engine request the RDMA device plugin's {options.k8s_rdma_resource} "
                      f"and IPC_LOCK, so NCCL runs over {network} as planned")
        elif network.startswith(("ib-", "roce-")):
            value, reason = "TCP sockets (no RDMA device in the pods)", tcp_note(deployment)
        else:
            value, reason = "TCP sockets", f"{network} has no RDMA: NCCL uses TCP sockets, as planned"
        out.append(Decision(id="vllm.kubernetes_transport", value=value, rule="DPD501", reason=reason))
    if deployment.nodes_used > 1:
        out.append(_launcher_decision(deployment, servers, options))
    return tuple(out)


def _launcher_decision(deployment: Deployment, servers: tuple[Server, ...], options: VllmOptions) -> Decision:
    """How the node scripts start the servers, naming the multi-node flags they pass (none for independent ones)."""
    spanning = [s for s in servers if s.spans_nodes]
    if not spanning:
        return Decision(
            id="vllm.multi_node_launcher", value="none: independent servers per node", rule="DPD501",
            reason=f"no server spans nodes: each node-K.sh starts node K's own vllm serve, a complete server with "
                   f"no multi-node flags and no head address, so the {deployment.nodes_used} nodes start in any order "
                   "and no collective crosses them")
    if options.distributed_executor_backend == "ray":
        return Decision(
            id="vllm.multi_node_launcher", value="ray", rule="DPD501",
            reason="a Ray cluster started by the node scripts ([backends.vllm] distributed_executor_backend)",
            rejected=(Alternative("native", "set to ray in [backends.vllm]"),))
    used: list[str] = []
    for server in spanning:
        for rank in range(len(server.nodes)):
            for flag in serve_command(deployment, server, options, node_role(server, rank)).flags:
                if flag.flag in NODE_FLAGS and flag.flag not in used:
                    used.append(flag.flag)
    return Decision(
        id="vllm.multi_node_launcher", value=f"native ({' '.join(used)})", rule="DPD501",
        reason=f"vLLM's own launcher: one script per node passes {', '.join(used)} to its vllm serve, with the "
               "address of the server's first node from VLLM_HEAD_ADDR; no Ray cluster that can miss the GPUs "
               "(USER-PAINS #15)",
        rejected=(Alternative("ray", "one more cluster to start and keep healthy"),))


def _artifacts(deployment: Deployment, servers: tuple[Server, ...], options: VllmOptions) -> list[Artifact]:
    artifacts = launch_artifacts(
        deployment, run_script=lambda: run_script(deployment, servers, options),
        compose_yaml=lambda: compose_yaml(deployment, servers, options),
        run_description="docker run for every server on this host",
        node_scripts=lambda node: [node_script_artifact(node, node_script(deployment, servers, options, node))],
        preflight_script=lambda: preflight_script(deployment))
    for path, text in kubernetes_files(deployment, servers, options).items():
        artifacts.append(Artifact(path=path, content=text, description="Kubernetes manifests"))
    artifacts.append(Artifact(path="bench.sh", content=bench_script(deployment, servers), executable=True,
                              description="vllm bench serve with the spec's workload, checked against the SLO"))
    artifacts.append(Artifact(path="monitoring.md", content=monitoring_markdown(deployment, servers),
                              description="what to watch"))
    artifacts.append(Artifact(path="prometheus-rules.yaml", content=prometheus_rules(deployment),
                              description="Prometheus alerts"))
    return artifacts


def emit(deployment: Deployment) -> Emission:
    """The vLLM artifacts of a plan."""
    options = parse_options(deployment.options)
    servers = deployment.servers
    return Emission(artifacts=tuple(_artifacts(deployment, servers, options)), flags=_flags(deployment, servers,
                                                                                            options),
                    decisions=_decisions(deployment, servers, options))
