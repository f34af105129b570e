"""AMD Instinct containers: device files instead of --gpus, in docker run, Compose and Kubernetes."""

from __future__ import annotations

import shlex

from deployc.contract.toolkit.compose import compose_service
from deployc.contract.toolkit.docker import DockerRun, docker_run_groups
from deployc.contract.toolkit.kubernetes import ContainerInput, container
from deployc.contract.toolkit.nccl import nccl_env
from deployc.contract.toolkit.rocm import K8S_GPU_RESOURCE, power_cap_command
from deployc.contract.toolkit.shell import join_words


def _words(run: DockerRun) -> list[str]:
    return shlex.split(" ".join(join_words(g.words) for g in docker_run_groups(run)))


def test_docker_run_on_amd_mounts_kfd_and_dri_and_selects_devices() -> None:
    words = _words(DockerRun(name="srv", image="img:1", gpu_device_ids=(2, 3), gpu_vendor="amd"))
    assert "--gpus" not in words
    assert words[3:15] == ["--name", "srv", "--device", "/dev/kfd", "--device", "/dev/dri", "--group-add", "video",
                           "--security-opt", "seccomp=unconfined", "--env", "HIP_VISIBLE_DEVICES=2,3"]
    everything = _words(DockerRun(name="srv", image="img:1", gpu_device_ids=None, gpu_vendor="amd"))
    assert not any(w.startswith("HIP_VISIBLE_DEVICES") for w in everything)


def test_nvidia_is_unchanged() -> None:
    words = _words(DockerRun(name="srv", image="img:1", gpu_device_ids=(0,)))
    assert words[words.index("--gpus") + 1] == '"device=0"' and "/dev/kfd" not in words


def test_compose_service_on_amd() -> None:
    run = DockerRun(name="srv", image="img:1", gpu_device_ids=(0, 1), gpu_vendor="amd",
                    devices=(("/dev/infiniband", "rdma"),), env_passthrough=(("HF_TOKEN", "token"),))
    service = compose_service(run, ["serve"])
    assert "deploy" not in service
    assert service["devices"] == ["/dev/kfd:/dev/kfd", "/dev/dri:/dev/dri", "/dev/infiniband:/dev/infiniband"]
    assert service["group_add"] == ["video"]
    assert service["security_opt"] == ["seccomp=unconfined"]
    assert service["environment"] == ["HF_TOKEN", "HIP_VISIBLE_DEVICES=0,1"]


def test_kubernetes_limit_names_the_amd_resource() -> None:
    body = container(ContainerInput(name="c", image="i", args=(), gpus=8, port=None, shm_size="16Gi",
                                    gpu_resource=K8S_GPU_RESOURCE))
    assert body["resources"] == {"limits": {"amd.com/gpu": 8}}


def test_roce_gid_index_set_once_for_rccl_and_power_cap() -> None:
    # RCCL reads NCCL's variables: the shared nccl_env sets RoCE v2's GID index for both vendors, once
    names = [v.name for v in nccl_env("roce-400g", None, ())]
    assert names.count("NCCL_IB_GID_INDEX") == 1
    assert "NCCL_IB_GID_INDEX" not in [v.name for v in nccl_env("ib-ndr", None, ())]
    assert power_cap_command(675) == "sudo amd-smi set --power-cap 675"
