"""Kubernetes manifests for GPU inference servers: Deployment + Service, or a LeaderWorkerSet.

Built as Python data and dumped with PyYAML.  Kubernetes expands ``$(NAME)`` in container
args, so literal dollars are doubled (``$$`` is always read back as ``$``); environment
references become ``$(NAME)`` and must be defined in the container's ``env``.
``/dev/shm`` is a memory-backed ``emptyDir`` (USER-PAINS #9), GPUs are ``nvidia.com/gpu``
limits (``amd.com/gpu`` on AMD), and the probes hit the server's health endpoint.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any

import yaml
from attrs import frozen

from deployc.contract.toolkit import EnvRef, PlainDumper, Word, comment_block

_LABEL = re.compile(r"[^a-z0-9-]+")
LWS_API_VERSION = "leaderworkerset.x-k8s.io/v1"
SHM_VOLUME = "dshm"
CACHE_VOLUME = "hf-cache"


def dns_label(*parts: str) -> str:
    """A DNS-1123 label (≤ 63 characters) from parts; long names keep a hash suffix so they stay unique."""
    name = _LABEL.sub("-", "-".join(p for p in parts if p).lower()).strip("-") or "x"
    if len(name) <= 63:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return name[:54].rstrip("-") + "-" + digest


def kube_word(word: Word) -> str:
    """One container arg: literal with ``$`` doubled, or ``$(NAME)``."""
    if isinstance(word, EnvRef):
        return f"$({word.name})"
    return word.replace("$", "$$")


@frozen(kw_only=True)
class Probe:
    """HTTP health probes: startup (slow model loads), readiness and liveness."""

    path: str
    port: int
    startup_budget_s: int = 1800
    timeout_s: int = 10  # the same as the Docker health check's --health-timeout


@frozen(kw_only=True)
class Volume:
    """An extra pod volume mounted into the container (a ConfigMap or Secret, read-only by default)."""

    name: str
    mount_path: str
    source: dict[str, Any]  # e.g. {"configMap": {"name": "x"}} or {"secret": {"secretName": "y"}}
    read_only: bool = True


@frozen(kw_only=True)
class ContainerInput:
    """What one serving container needs."""

    name: str
    image: str
    args: tuple[Word, ...]
    gpus: int
    port: int | None
    shm_size: str  # e.g. "16Gi"
    env: tuple[tuple[str, str], ...] = ()  # literal values
    secret_env: tuple[tuple[str, str, str], ...] = ()  # variable, secret name, key (optional secret)
    cache_host_path: str | None = None
    cache_mount: str = "/root/.cache/huggingface"
    probe: Probe | None = None
    command: tuple[str, ...] | None = None
    gpu_resource: str = "nvidia.com/gpu"  # "amd.com/gpu" with AMD's device plugin (emitters/rocm.py)
    field_env: tuple[tuple[str, str], ...] = ()  # variable, downward-API field path (e.g. status.podIP)
    extra_limits: tuple[tuple[str, int], ...] = ()  # device-plugin resources beside the GPUs (e.g. an RDMA device)
    capabilities: tuple[str, ...] = ()  # Linux capabilities added to the container (e.g. IPC_LOCK for RDMA)
    volumes: tuple[Volume, ...] = ()


def _probes(probe: Probe) -> dict[str, Any]:
    # Every probe states its timeout: Kubernetes' default is 1 s, and a busy engine can take longer to answer
    # /health while a long prefill holds its event loop, which would mark a healthy pod unready.
    http = {"httpGet": {"path": probe.path, "port": probe.port}}
    period = 10
    return {
        "startupProbe": {**http, "periodSeconds": period, "timeoutSeconds": probe.timeout_s,
                         "failureThreshold": max(probe.startup_budget_s // period, 1)},
        "readinessProbe": {**http, "periodSeconds": period, "timeoutSeconds": probe.timeout_s, "failureThreshold": 3},
        "livenessProbe": {**http, "periodSeconds": 30, "timeoutSeconds": probe.timeout_s, "failureThreshold": 5},
    }


def container(spec: ContainerInput) -> dict[str, Any]:
    """The container object."""
    body: dict[str, Any] = {"name": spec.name, "image": spec.image}
    if spec.command is not None:
        body["command"] = list(spec.command)
    body["args"] = [kube_word(w) for w in spec.args]
    env: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in spec.env]
    env += [{"name": var, "valueFrom": {"secretKeyRef": {"name": secret, "key": key, "optional": True}}}
            for var, secret, key in spec.secret_env]
    env += [{"name": var, "valueFrom": {"fieldRef": {"fieldPath": path}}} for var, path in spec.field_env]
    if env:
        body["env"] = env
    if spec.port is not None:
        body["ports"] = [{"name": "http", "containerPort": spec.port}]
    body["resources"] = {"limits": {spec.gpu_resource: spec.gpus, **dict(spec.extra_limits)}}
    if spec.capabilities:
        body["securityContext"] = {"capabilities": {"add": list(spec.capabilities)}}
    mounts: list[dict[str, Any]] = [{"name": SHM_VOLUME, "mountPath": "/dev/shm"}]  # noqa: S108  (the shared-memory mount itself)
    if spec.cache_host_path is not None:
        mounts.append({"name": CACHE_VOLUME, "mountPath": spec.cache_mount})
    mounts += [{"name": v.name, "mountPath": v.mount_path, "readOnly": v.read_only} for v in spec.volumes]
    body["volumeMounts"] = mounts
    if spec.probe is not None:
        body.update(_probes(spec.probe))
    return body


def pod_spec(spec: ContainerInput) -> dict[str, Any]:
    """A pod spec with the container, a memory-backed /dev/shm and the model cache."""
    volumes: list[dict[str, Any]] = [{"name": SHM_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": spec.shm_size}}]
    if spec.cache_host_path is not None:
        volumes.append({"name": CACHE_VOLUME, "hostPath": {"path": spec.cache_host_path, "type": "DirectoryOrCreate"}})
    volumes += [{"name": v.name, **v.source} for v in spec.volumes]
    return {"containers": [container(spec)], "volumes": volumes}


def _meta(name: str, namespace: str | None, labels: dict[str, str]) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    meta["labels"] = labels
    return meta


def deployment(name: str, namespace: str | None, labels: dict[str, str], replicas: int,
               spec: ContainerInput) -> dict[str, Any]:
    """A Deployment of identical single-node servers (recreated, never surged: GPUs are scarce)."""
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta(name, namespace, labels),
        "spec": {
            "replicas": replicas, "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": pod_spec(spec)},
        },
    }


def service(name: str, namespace: str | None, labels: dict[str, str], port: int,
            selector: dict[str, str] | None = None) -> dict[str, Any]:
    """A ClusterIP Service balancing over the ready pods."""
    return {
        "apiVersion": "v1", "kind": "Service", "metadata": _meta(name, namespace, labels),
        "spec": {"selector": selector or labels,
                 "ports": [{"name": "http", "port": port, "targetPort": port, "protocol": "TCP"}]},
    }


def config_map(name: str, namespace: str | None, labels: dict[str, str], data: dict[str, str]) -> dict[str, Any]:
    """A ConfigMap of text files (mounted with a :class:`Volume` ``{"configMap": {"name": name}}``)."""
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(name, namespace, labels), "data": data}


def leader_worker_set(name: str, namespace: str | None, labels: dict[str, str], replicas: int, size: int,
                      leader: ContainerInput, worker: ContainerInput) -> dict[str, Any]:
    """A LeaderWorkerSet: ``replicas`` groups of ``size`` pods, one node each; the leader serves the API.

    The LWS controller injects ``LWS_LEADER_ADDRESS`` and ``LWS_WORKER_INDEX`` into every pod.
    """
    return {
        "apiVersion": LWS_API_VERSION, "kind": "LeaderWorkerSet", "metadata": _meta(name, namespace, labels),
        "spec": {
            "replicas": replicas,
            "startupPolicy": "LeaderCreated",
            "leaderWorkerTemplate": {
                "size": size,
                "restartPolicy": "RecreateGroupOnPodRestart",
                "leaderTemplate": {"metadata": {"labels": {**labels, "role": "leader"}}, "spec": pod_spec(leader)},
                "workerTemplate": {"metadata": {"labels": {**labels, "role": "worker"}}, "spec": pod_spec(worker)},
            },
        },
    }


def dump_documents(documents: Sequence[dict[str, Any]], header: Sequence[str] = ()) -> str:
    """Several manifests in one YAML stream, after a comment header."""
    body = yaml.dump_all(list(documents), Dumper=PlainDumper, sort_keys=False, default_flow_style=False,
                         allow_unicode=True, width=1000)
    return comment_block(header) + body
