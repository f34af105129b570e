"""The container of one TensorRT-LLM server: image, GPUs, shared memory, limits, volumes, environment.

Shared by ``run.sh`` (docker run) and ``compose.yaml`` so they always agree.  NVIDIA's guide runs
the release image with ``--ipc=host --ulimit memlock=-1 --ulimit stack=67108864`` (TensorRT-LLM
"Build from source / Use the container" and the trtllm-serve quick start): the memlock limit
lets NCCL and the KV-cache transfer pin host memory, the 64 MiB stack is what its MPI workers need.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deployc.contract.toolkit.docker import HF_CACHE_IN_CONTAINER, DockerRun, HealthCheck
from deployc.contract.toolkit.hftoken import HF_TOKEN, token_renamed
from deployc.contract.toolkit.images import pinned_tag_note
from deployc.contract.toolkit.shell import ScriptBuilder
from deployc_trtllm import ENGINE_VERSION
from deployc_trtllm.options import TrtllmOptions
from deployc_trtllm.pytorch import CONFIG_DIR

if TYPE_CHECKING:
    from deployc.contract import Deployment, Server

ULIMITS = (("memlock=-1", "NCCL and the runtime pin (page-lock) host buffers; the default limit makes that fail "
                          "(NVIDIA's docker run for TensorRT-LLM)"),
           ("stack=67108864", "a 64 MiB stack, as NVIDIA's docker run gives TensorRT-LLM's MPI worker processes"))


def image_note(deployment: Deployment) -> str | None:
    """Said in artifact headers when the spec pins a tag other than the one the flags were checked against."""
    return pinned_tag_note(deployment, "every flag and YAML key here was checked against TensorRT-LLM "
                           f"{ENGINE_VERSION}'s manifests", "another version, check them")


def config_host_dir(deployment: Deployment) -> str:
    """Where run.sh puts the options YAML on the host (beside the Hugging Face cache, per deployment)."""
    return f"{deployment.operations.model_cache.rstrip('/')}/deployc-trtllm/{deployment.name}"


def docker_run(deployment: Deployment, server: Server, options: TrtllmOptions, config_source: str) -> DockerRun:
    """The container of a single-node server; ``config_source`` is the host directory holding its YAML."""
    spec = deployment
    shm = f"{options.shm_size_gib:g}g" if options.shm_size_gib else None
    return DockerRun(
        name=server.name, image=deployment.image.reference, gpu_device_ids=server.gpu_ids, shm_size=shm,
        shm_size_why="a private /dev/shm ([backends.trtllm] shm_size_gib): NCCL and the MPI workers exchange "
                     "tensors through it; Docker's 64 MiB default is too small (USER-PAINS #9)",
        ports=(server.port,),
        volumes=((spec.operations.model_cache, HF_CACHE_IN_CONTAINER,
                  "the host's Hugging Face cache: weights download once and survive restarts"),
                 (config_source, CONFIG_DIR, "the LLM-API options YAML of each server")),
        env_passthrough=((HF_TOKEN, "the Hugging Face token, passed by name from this shell's environment; its "
                                    "value is never written into this file"),),
        env_renamed=token_renamed(deployment), ulimits=ULIMITS, health=HealthCheck(port=server.port))


def exists_guard(script: ScriptBuilder, name: str) -> None:
    """Stop with a clear message when a container of that name exists (docker run would fail half-way)."""
    script.raw(f"if docker container inspect {name} >/dev/null 2>&1; then")
    script.raw(f'    echo "a container named {name} exists; remove it first: docker rm -f {name}" >&2')
    script.raw("    exit 1")
    script.raw("fi")
