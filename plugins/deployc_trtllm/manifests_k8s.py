"""``compose.yaml`` (single node) and Kubernetes manifests (one file per pool) for the TensorRT-LLM servers.

Compose services read the same container data as ``run.sh``.  In Kubernetes each pool gets a
ConfigMap with its LLM-API options YAML; a pool whose servers fit on one node is a Deployment
behind a Service; a server spanning nodes is a LeaderWorkerSet where every pod runs sshd and the
leader starts the MPI world with ``mpirun … trtllm-llmapi-launch trtllm-serve`` over the group's
pods (the MPI launch TensorRT-LLM 1.2 documents; Kubernetes has no pmix-aware srun).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from deployc.contract import Server
from deployc.contract.toolkit import EnvRef, env_name
from deployc.contract.toolkit.compose import compose_document, compose_service
from deployc.contract.toolkit.headers import LWS_CONTROLLER, generated_header, k8s_apply, k8s_labels
from deployc.contract.toolkit.hftoken import HF_TOKEN, token_source
from deployc.contract.toolkit.kubernetes import (
    ContainerInput,
    Probe,
    Volume,
    config_map,
    dns_label,
    dump_documents,
    leader_worker_set,
    service,
)
from deployc.contract.toolkit.kubernetes import (
    deployment as k8s_deployment,
)
from deployc.contract.toolkit.nccl import nccl_env
from deployc_trtllm.container import docker_run, image_note
from deployc_trtllm.options import TrtllmOptions
from deployc_trtllm.pytorch import CONFIG_DIR, config_name, serve_command

if TYPE_CHECKING:
    from deployc.contract import Deployment

DEFAULT_K8S_SHM_GIB = 16
SSH_PORT = 2222
K8S_CONFIG = "extra-llm-api-options.yaml"
SSH_SECRET_DIR = "/etc/deployc-ssh"  # noqa: S105  (a mount path, not a secret)
# Every pod of a multi-node group runs sshd (host keys generated at start; the key pair and authorized_keys copied
# from a Secret into a private /root/.ssh, since sshd refuses a group-writable Secret mount) so that the leader's
# mpirun can start the ranks on the workers.  orted and the ranks get the container's PATH and library path
# (an SSH session does not inherit the container environment).  "$@" is the trtllm-serve argv.
SSHD_START = (f"command -v sshd >/dev/null || {{ echo 'the image has no sshd (openssh-server)' >&2; exit 1; }}; "
              f"mkdir -p /run/sshd /root/.ssh && cp {SSH_SECRET_DIR}/* /root/.ssh/ && chmod 700 /root/.ssh && "
              "chmod 600 /root/.ssh/* && ssh-keygen -A >/dev/null")
SSH_OPTIONS = f"-p {SSH_PORT} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
WORKER_SCRIPT = f"set -euo pipefail; {SSHD_START}; exec \"$(command -v sshd)\" -D -e -p {SSH_PORT}"
LEADER_SCRIPT = (
    f"set -euo pipefail; {SSHD_START}; \"$(command -v sshd)\" -p {SSH_PORT}; "
    'hosts="${LWS_LEADER_ADDRESS}:${GPUS_PER_POD}"; '
    'for k in $(seq 1 $((LWS_GROUP_SIZE - 1))); do hosts="${hosts},${LWS_LEADER_ADDRESS/./-${k}.}:${GPUS_PER_POD}"; '
    "done; "
    f'for h in ${{hosts//,/ }}; do until ssh {SSH_OPTIONS} -o BatchMode=yes "${{h%%:*}}" true; do '
    'echo "waiting for ${h%%:*}"; sleep 5; done; done; '
    'prefix="$(dirname "$(dirname "$(command -v mpirun)")")"; '
    'exec mpirun --allow-run-as-root --prefix "${prefix}" -np $((LWS_GROUP_SIZE * GPUS_PER_POD)) -H "${hosts}" '
    f'--bind-to none --mca plm_rsh_args "{SSH_OPTIONS}" -x PATH -x LD_LIBRARY_PATH ${{MPI_EXPORTS}} '
    'trtllm-llmapi-launch "$@"')


def leader_script(exports: list[str]) -> str:
    """The leader's bash: sshd, wait for every pod's sshd, then mpirun over the group (``exports`` to every rank)."""
    names = " ".join(f"-x {env_name(n)}" for n in exports)
    return LEADER_SCRIPT.replace("${MPI_EXPORTS}", names)


def _header(deployment: Deployment, what: str) -> list[str]:
    return generated_header(deployment, what, image_note(deployment))


def compose_yaml(deployment: Deployment, servers: tuple[Server, ...], options: TrtllmOptions) -> str:
    """``compose.yaml``: one service per server of a single-node plan, the options files mounted from here."""
    services: dict[str, dict[str, Any]] = {}
    for server in servers:
        serve = serve_command(deployment, server.pool, server.port, f"{CONFIG_DIR}/{config_name(server.name)}")
        services[server.name] = compose_service(docker_run(deployment, server, options, "."),
                                                serve.program + serve.args)
    header = _header(deployment, "compose.yaml: `docker compose up -d` in this directory starts every server (the "
                           "extra-llm-api-options-*.yaml files beside it are mounted at /etc/deployc); "
                           f"{token_source(deployment)}.")
    return compose_document(services, header)


def _pod(deployment: Deployment, server: Server, options: TrtllmOptions, name: str, config: str, *, serve: bool,
         args: tuple[str | EnvRef, ...], command: tuple[str, ...] | None = None,
         env: tuple[tuple[str, str], ...] = (), extra: tuple[Volume, ...] = ()) -> ContainerInput:
    shm = options.shm_size_gib or DEFAULT_K8S_SHM_GIB
    return ContainerInput(
        name=name, image=deployment.image.reference, args=args, gpus=server.gpus, port=server.port if serve else None,
        shm_size=f"{shm:g}Gi", env=env, secret_env=((HF_TOKEN, options.hf_token_secret, "token"),),
        cache_host_path=deployment.operations.model_cache,
        probe=Probe(path="/health", port=server.port) if serve else None, command=command,
        volumes=(Volume(name="llm-api-options", mount_path=CONFIG_DIR, source={"configMap": {"name": config}}),
                 *extra))


def _pool_documents(deployment: Deployment, pool_servers: list[Server], options: TrtllmOptions,
                    options_yaml: str) -> list[dict[str, Any]]:
    # Pods have their own network namespace: every replica listens on the spec's port.
    first = attrs.evolve(pool_servers[0], port=deployment.operations.port)
    labels = k8s_labels(deployment, first)
    name = labels["app.kubernetes.io/instance"]
    namespace = options.k8s_namespace
    config = dns_label(name, "options")
    docs = [config_map(config, namespace, labels, {K8S_CONFIG: options_yaml})]
    serve = serve_command(deployment, first.pool, first.port, f"{CONFIG_DIR}/{K8S_CONFIG}")
    argv = serve.program + serve.args
    if not first.spans_nodes:
        pod = _pod(deployment, first, options, "trtllm", config, serve=True, args=argv)
        return [*docs, k8s_deployment(name, namespace, labels, len(pool_servers), pod),
                service(name, namespace, labels, first.port)]
    hw = deployment.hardware
    nccl = [(v.name, v.value) for v in nccl_env(hw.network, hw.network_interface, hw.ib_hcas)]
    ssh = Volume(name="mpi-ssh", mount_path=SSH_SECRET_DIR,
                 source={"secret": {"secretName": dns_label(name, "mpi-ssh"), "defaultMode": 0o600}})
    env = (*nccl, ("GPUS_PER_POD", str(first.gpus)))
    leader = _pod(deployment, first, options, "trtllm-leader", config, serve=True, command=("bash",),
                  args=("-c", leader_script([*(n for n, _ in nccl), HF_TOKEN]), "trtllm-mpi-leader", *argv), env=env,
                  extra=(ssh,))
    worker = _pod(deployment, first, options, "trtllm-worker", config, serve=False, command=("bash",),
                  args=("-c", WORKER_SCRIPT), env=env, extra=(ssh,))
    return [*docs, leader_worker_set(name, namespace, labels, len(pool_servers), len(first.nodes), leader, worker),
            service(name, namespace, labels, first.port, selector={**labels, "role": "leader"})]


def kubernetes_files(deployment: Deployment, servers: tuple[Server, ...], options: TrtllmOptions,
                     options_yaml: dict[str, str]) -> dict[str, str]:
    """``k8s/<name>.yaml`` per pool: its options ConfigMap, its workload and its Service."""
    files: dict[str, str] = {}
    for pool in deployment.pools:
        pool_servers = [s for s in servers if s.pool is pool]
        documents = _pool_documents(deployment, pool_servers, options, options_yaml[pool.name])
        kind = documents[1]["kind"]
        header = _header(deployment,
                         f"k8s: ConfigMap, {kind} and Service for pool {pool.name!r} ({pool.layout.label()}). "
                         + k8s_apply(options.hf_token_secret))
        if kind == "LeaderWorkerSet":
            secret = documents[1]["spec"]["leaderWorkerTemplate"]["leaderTemplate"]["spec"]["volumes"][-1]
            header += [f"{LWS_CONTROLLER}.",
                       f"MPI between the pods runs over SSH on port {SSH_PORT}: create the Secret "
                       f"{secret['secret']['secretName']!r} with an SSH key pair (id_ed25519, id_ed25519.pub) and "
                       "authorized_keys holding that public key; the image must provide sshd."]
        files[f"k8s/{documents[1]['metadata']['name']}.yaml"] = dump_documents(documents, header)
    return files
