"""AMD Instinct (ROCm) containers: devices, groups, seccomp, GPU selection, RCCL and the tools that watch them.

ROCm has no container runtime hook like NVIDIA's ``--gpus``: a container sees the GPUs through
two kinds of device files, ``/dev/kfd`` (the compute interface every GPU shares) and
``/dev/dri/renderD*`` (one render node per GPU), and its user must be in the group that owns
them.  The settings are AMD's documented ``docker run`` for vLLM and SGLang on Instinct GPUs
(ROCm docs "vLLM inference" and "SGLang inference", https://rocm.docs.amd.com/projects/ai-ecosystem/
en/latest/inference/vllm.html: ``--device /dev/kfd --device /dev/dri --group-add=video --ipc=host
--security-opt seccomp=unconfined``).  RCCL, ROCm's NCCL, reads the same ``NCCL_*`` variables, so
:func:`deployc.contract.toolkit.nccl.nccl_env` serves both (RoCE's ``NCCL_IB_GID_INDEX`` included).
Nothing here knows an engine.
"""

from __future__ import annotations

from collections.abc import Sequence

from deployc.contract.toolkit.shell import ArgGroup, group

KFD = "/dev/kfd"
DRI = "/dev/dri"
VIDEO_GROUP = "video"
SECCOMP = "seccomp=unconfined"
K8S_GPU_RESOURCE = "amd.com/gpu"  # ROCm/k8s-device-plugin's extended resource
GPU_SELECT_VAR = "HIP_VISIBLE_DEVICES"
RCCL_TESTS = "https://github.com/ROCm/rccl-tests"

KFD_WHY = ("the ROCm compute interface (Kernel Fusion Driver): every HIP process opens it to create queues and "
           "map GPU memory; without it the engine finds no GPU")
DRI_WHY = ("the GPUs' render nodes (/dev/dri/renderD*, one per GPU); which of them the server uses is chosen with "
           f"{GPU_SELECT_VAR} below")
VIDEO_WHY = ("/dev/kfd and the render nodes belong to the video (and, on newer distributions, render) group; the "
             "container's user must be in it to open them")
SECCOMP_WHY = ("AMD's documented setting for ROCm inference containers: Docker's default seccomp profile can refuse "
               "the memory-mapping and NUMA system calls the ROCm runtime makes. SYS_PTRACE, also in AMD's example, "
               "is left out: only debuggers and profilers need it")


def gpu_select_why(device_ids: Sequence[int]) -> str:
    """Why ``HIP_VISIBLE_DEVICES`` carries these device ids."""
    ids = ",".join(str(i) for i in device_ids)
    return (f"only GPUs {ids} (the plan's devices for this server, numbered as `amd-smi list` shows them): the "
            "container sees every render node, and the HIP runtime hides the others. HIP_VISIBLE_DEVICES rather "
            "than ROCR_VISIBLE_DEVICES because the engines copy it into CUDA_VISIBLE_DEVICES and Ray honours it")


def docker_device_groups(device_ids: Sequence[int] | None) -> list[ArgGroup]:
    """``docker run`` options that give a container AMD GPUs (instead of ``--gpus``)."""
    groups = [group("--device", KFD, why=KFD_WHY), group("--device", DRI, why=DRI_WHY),
              group("--group-add", VIDEO_GROUP, why=VIDEO_WHY), group("--security-opt", SECCOMP, why=SECCOMP_WHY)]
    if device_ids is not None:
        groups.append(group("--env", f"{GPU_SELECT_VAR}={','.join(str(i) for i in device_ids)}",
                            why=gpu_select_why(device_ids)))
    return groups


def compose_gpu_keys(device_ids: Sequence[int] | None) -> dict[str, object]:
    """Compose keys that give a service AMD GPUs: devices, group_add, security_opt (GPU selection is in env)."""
    del device_ids  # selected through HIP_VISIBLE_DEVICES in the environment list
    return {"devices": [f"{KFD}:{KFD}", f"{DRI}:{DRI}"], "group_add": [VIDEO_GROUP], "security_opt": [SECCOMP]}


def gpu_select_env(device_ids: Sequence[int] | None) -> list[str]:
    """The ``NAME=value`` environment entry that selects the devices (none when all are used)."""
    if device_ids is None:
        return []
    return [f"{GPU_SELECT_VAR}={','.join(str(i) for i in device_ids)}"]


def monitoring_commands() -> list[tuple[str, str]]:
    """(command, what it shows) for watching Instinct GPUs, in place of nvidia-smi."""
    return [
        ("amd-smi monitor -p -t -u -m -w 5",
         "power, temperature, GPU and memory use of every GPU every 5 s (amd-smi, ROCm 6.1 and newer)"),
        ("amd-smi metric --power --temperature --clock",
         "current power against the cap, edge/hotspot/HBM temperatures and clocks; falling clocks at full "
         "power or high hotspot temperature mean throttling"),
        ("rocm-smi --showtemp --showpower --showuse --showmemuse",
         "the same from rocm-smi, on hosts with an older ROCm"),
        ("amd-smi xgmi -m",
         "Infinity Fabric (xGMI) link status between the GPUs: a link down halves tensor-parallel bandwidth"),
    ]


def power_cap_command(watts: int) -> str:
    """The command that caps every GPU's power (amd-smi takes watts)."""
    return f"sudo amd-smi set --power-cap {watts}"


def host_monitoring_markdown(tdp_w: float) -> list[str]:
    """Markdown lines for monitoring.md on an AMD host: the amd-smi/rocm-smi commands and the power advice."""
    lines = ["Without Prometheus, on the host (AMD Instinct: amd-smi and rocm-smi, not nvidia-smi):", "", "```"]
    lines += [command for command, _what in monitoring_commands()]
    lines += ["```", ""]
    lines += [f"- `{command}`: {what}." for command, what in monitoring_commands()]
    lines += ["", f"Each GPU may draw up to {tdp_w:g} W. A node that runs hot throttles its clocks (watch the hotspot "
              "and HBM temperatures in `amd-smi metric`); capping the power keeps it below the threshold at a small "
              f"peak cost: `{power_cap_command(int(tdp_w * 0.9))}` caps every GPU at 90% of its board power. GPU "
              "metrics for Prometheus come from AMD's device-metrics-exporter (ROCm/device-metrics-exporter) instead "
              "of dcgm-exporter."]
    return lines
