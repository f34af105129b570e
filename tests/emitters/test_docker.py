"""docker run options from DockerRun data."""

from __future__ import annotations

import shlex

from deployc.contract.toolkit.docker import DockerRun, HealthCheck, docker_run_groups, gpus_value
from deployc.contract.toolkit.shell import join_words


def _words(run: DockerRun) -> list[str]:
    return shlex.split(" ".join(join_words(g.words) for g in docker_run_groups(run)))


def test_gpus_value() -> None:
    assert gpus_value((0, 1)) == '"device=0,1"'
    assert gpus_value(None) == "all"


def test_options_and_order() -> None:
    run = DockerRun(name="srv", image="reg.example/v:1;x", gpu_device_ids=(2, 3), ports=(8000,),
                    volumes=(("/host dir", "/root/.cache/huggingface", "cache"),),
                    env_passthrough=(("HF_TOKEN", "token"),), env=(("NCCL_IB_DISABLE", "1", "eth"),),
                    health=HealthCheck(port=8000))
    words = _words(run)
    assert words[:5] == ["docker", "run", "--detach", "--name", "srv"]
    assert words[words.index("--gpus") + 1] == '"device=2,3"'
    assert "--ipc=host" in words
    assert words[words.index("--publish") + 1] == "8000:8000"
    assert words[words.index("--volume") + 1] == "/host dir:/root/.cache/huggingface"
    assert words[words.index("--env") + 1] == "HF_TOKEN"
    assert "NCCL_IB_DISABLE=1" in words
    assert words[words.index("--restart") + 1] == "unless-stopped"
    assert words[words.index("--health-start-period") + 1] == "900s"
    assert words[-1] == "reg.example/v:1;x"


def test_sized_shm_and_host_network() -> None:
    run = DockerRun(name="s", image="i", gpu_device_ids=None, shm_size="16g", shm_size_why="private",
                    network_host=True, ports=(8000,))
    words = _words(run)
    assert "--ipc=host" not in words and words[words.index("--shm-size") + 1] == "16g"
    assert words[words.index("--network") + 1] == "host"
    assert "--publish" not in words  # the host network has no port mapping
