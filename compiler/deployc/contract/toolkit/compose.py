"""``compose.yaml`` from the same :class:`~deployc.contract.toolkit.docker.DockerRun` data as ``run.sh``.

Built as Python data and dumped with PyYAML, never from text templates.  Compose
interpolates ``$`` in every string, so literal dollars are doubled; environment references
become ``${NAME:?hint}``.  Bind mounts use the long syntax so a colon in a path is harmless.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml

from deployc.contract.toolkit import EnvRef, PlainDumper, Word, comment_block
from deployc.contract.toolkit.docker import DockerRun
from deployc.contract.toolkit.rocm import compose_gpu_keys, gpu_select_env


def escape(text: str) -> str:
    """A literal string for Compose: ``$`` doubled so it is never interpolated."""
    return text.replace("$", "$$")


def compose_word(word: Word) -> str:
    """One command word: literal (escaped) or ``${NAME:?hint}``."""
    if isinstance(word, EnvRef):
        return f"${{{word.name}:?{word.hint or 'set ' + word.name}}}"
    return escape(word)


def _gpus(run: DockerRun) -> dict[str, Any]:
    device: dict[str, Any] = {"driver": "nvidia", "capabilities": ["gpu"]}
    if run.gpu_device_ids is None:
        device["count"] = "all"
    else:
        device["device_ids"] = [str(i) for i in run.gpu_device_ids]
    return {"resources": {"reservations": {"devices": [device]}}}


def _ulimits(run: DockerRun) -> dict[str, int]:
    limits: dict[str, int] = {}
    for spec, _why in run.ulimits:
        name, _, value = spec.partition("=")
        limits[name] = int(value)
    return limits


def compose_service(run: DockerRun, command: Sequence[Word]) -> dict[str, Any]:
    """One service: image, command, GPUs, shared memory, network, volumes, environment, health."""
    service: dict[str, Any] = {"image": escape(run.image), "container_name": run.name}
    if run.entrypoint is not None:
        service["entrypoint"] = [escape(run.entrypoint)]
    service["command"] = [compose_word(w) for w in command]
    service.update(compose_gpu_keys(run.gpu_device_ids) if run.gpu_vendor == "amd" else {"deploy": _gpus(run)})
    if run.shm_size:
        service["shm_size"] = run.shm_size
    else:
        service["ipc"] = "host"
    if run.network_host:
        service["network_mode"] = "host"
    elif run.ports:
        service["ports"] = [f"{port}:{port}" for port in run.ports]
    if run.volumes:
        service["volumes"] = [{"type": "bind", "source": escape(host), "target": inside}
                              for host, inside, _why in run.volumes]
    renamed = dict(run.env_renamed)
    # Compose interpolates ${VAR} from the shell running it: the value is never written into the file.
    environment = [f"{name}=${{{renamed[name]}:-}}" if name in renamed else name for name, _why in run.env_passthrough]
    environment += gpu_select_env(run.gpu_device_ids) if run.gpu_vendor == "amd" else []
    environment += [escape(f"{name}={value}") for name, value, _why in run.env]
    if environment:
        service["environment"] = environment
    if run.devices:
        service["devices"] = [*service.get("devices", []), *(f"{path}:{path}" for path, _why in run.devices)]
    if run.ulimits:
        service["ulimits"] = _ulimits(run)
    if run.cap_add:
        service["cap_add"] = [cap for cap, _why in run.cap_add]
    service["restart"] = run.restart
    if run.health is not None:
        h = run.health
        service["healthcheck"] = {"test": ["CMD", "python3", "-c", h.python_probe()],
                                  "interval": f"{h.interval_s}s", "timeout": f"{h.timeout_s}s",
                                  "retries": h.retries, "start_period": f"{h.start_period_s}s"}
    return service


def compose_document(services: dict[str, dict[str, Any]], header: Sequence[str] = ()) -> str:
    """The whole file: comment header, then ``services``.

    No top-level ``name``: Compose takes the project name from the directory (or ``-p``), and the
    docker-compose 1.x that Debian ships rejects the key.
    """
    body = yaml.dump({"services": services}, Dumper=PlainDumper, sort_keys=False,
                     default_flow_style=False, allow_unicode=True, width=1000)
    return comment_block(header) + body
