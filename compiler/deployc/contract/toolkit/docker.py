"""``docker run`` for a GPU inference server, with the settings that prevent the classic failures.

:class:`DockerRun` is plain data a backend fills in; :func:`docker_run_groups` turns it into
argument groups (each with its reason) for :class:`~deployc.contract.toolkit.shell.ScriptBuilder`,
and the Compose renderer reads the same data, so both artifacts always agree.
"""

from __future__ import annotations

from attrs import frozen

from deployc.contract.toolkit.rocm import docker_device_groups
from deployc.contract.toolkit.shell import ArgGroup, group

HF_CACHE_IN_CONTAINER = "/root/.cache/huggingface"
IPC_HOST_WHY = ("share the host's IPC namespace: NCCL and PyTorch worker processes exchange tensors through "
                "/dev/shm, and Docker's default 64 MiB /dev/shm makes them fail or hang (USER-PAINS #9)")


@frozen(kw_only=True)
class HealthCheck:
    """An HTTP health endpoint probed inside the container."""

    port: int
    path: str = "/health"
    interval_s: int = 30
    timeout_s: int = 10
    start_period_s: int = 900
    retries: int = 3

    def url(self) -> str:
        """The URL probed from inside the container."""
        return f"http://127.0.0.1:{self.port}{self.path}"

    def python_probe(self) -> str:
        """A probe command that needs only Python (present in every inference image; curl is not)."""
        return f"import urllib.request; urllib.request.urlopen('{self.url()}', timeout={self.timeout_s})"


@frozen(kw_only=True)
class DockerRun:
    """One container: identity, GPUs, shared memory, network, volumes, environment and health."""

    name: str
    image: str
    gpu_device_ids: tuple[int, ...] | None  # None: all GPUs
    shm_size: str | None = None  # None: --ipc=host
    shm_size_why: str = ""
    network_host: bool = False
    network_host_why: str = ""
    ports: tuple[int, ...] = ()
    volumes: tuple[tuple[str, str, str], ...] = ()  # host path, container path, why
    env_passthrough: tuple[tuple[str, str], ...] = ()  # name, why: the value comes from the caller's environment
    env: tuple[tuple[str, str, str], ...] = ()  # name, literal value, why
    # name, the caller's variable it takes its value from: scripts export the name first (docker run passes it
    # by name), Compose interpolates the variable; a passthrough name listed here is not passed through again
    env_renamed: tuple[tuple[str, str], ...] = ()
    devices: tuple[tuple[str, str], ...] = ()  # device path, why
    ulimits: tuple[tuple[str, str], ...] = ()  # "memlock=-1", why
    cap_add: tuple[tuple[str, str], ...] = ()  # capability, why
    restart: str = "unless-stopped"
    health: HealthCheck | None = None
    entrypoint: str | None = None
    detach: bool = True
    gpu_vendor: str = "nvidia"  # "amd": ROCm device files instead of --gpus (emitters/rocm.py)


def gpus_value(device_ids: tuple[int, ...] | None) -> str:
    """``--gpus`` value: ``all`` or ``"device=0,1"`` (the inner quotes keep Docker from splitting on the comma)."""
    if device_ids is None:
        return "all"
    return '"device=' + ",".join(str(i) for i in device_ids) + '"'


def docker_run_groups(run: DockerRun) -> list[ArgGroup]:
    """``docker run`` options as argument groups, the image last (the command follows it)."""
    groups = [group("docker", "run", *(["--detach"] if run.detach else [])),
              group("--name", run.name, why="a fixed name: `docker logs`, `docker stop` and the health status "
                                               "refer to it; a second start fails instead of duplicating the server"),
              ]
    if run.gpu_vendor == "amd":
        groups += docker_device_groups(run.gpu_device_ids)
    else:
        groups.append(group("--gpus", gpus_value(run.gpu_device_ids), why="only the GPUs the plan assigned to this "
                                                                          "server"))
    if run.shm_size:
        groups.append(group("--shm-size", run.shm_size, why=run.shm_size_why))
    else:
        groups.append(group("--ipc=host", why=IPC_HOST_WHY))
    if run.network_host:
        groups.append(group("--network", "host", why=run.network_host_why))
    groups += [group("--publish", f"{port}:{port}", why="the OpenAI-compatible API port")
               for port in run.ports if not run.network_host]
    groups += [group("--volume", f"{host}:{inside}", why=why) for host, inside, why in run.volumes]
    groups += [group("--env", name, why=why) for name, why in run.env_passthrough]
    groups += [group("--env", f"{name}={value}", why=why) for name, value, why in run.env]
    groups += [group("--device", path, why=why) for path, why in run.devices]
    groups += [group("--ulimit", limit, why=why) for limit, why in run.ulimits]
    groups += [group("--cap-add", cap, why=why) for cap, why in run.cap_add]
    groups.append(group("--restart", run.restart, why="come back after a crash or a host reboot, but stay down "
                                                      "after `docker stop`"))
    if run.health is not None:
        groups += health_groups(run.health)
    if run.entrypoint is not None:
        groups.append(group("--entrypoint", run.entrypoint))
    groups.append(group(run.image, why="the pinned image"))
    return groups


def health_groups(health: HealthCheck) -> list[ArgGroup]:
    """``--health-*`` options: Docker marks the container unhealthy when the server stops answering."""
    return [
        group("--health-cmd", f'python3 -c "{health.python_probe()}"',
              why=f"healthy when {health.path} answers 200 (the server is up and the engine is alive)"),
        group("--health-interval", f"{health.interval_s}s"),
        group("--health-timeout", f"{health.timeout_s}s"),
        group("--health-retries", str(health.retries)),
        group("--health-start-period", f"{health.start_period_s}s",
              why="loading weights and capturing CUDA graphs can take minutes; failures then do not count"),
    ]
