"""vLLM on AMD Instinct: capability read from the 0.33.0 source, ROCm containers, manifests, checks, monitoring."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import tomli_w
import yaml

from deployc.api import plan as make_plan
from deployc.contract.backend import Emission
from deployc.planner.plan import Plan
from deployc_vllm.checks import check_plan
from deployc_vllm.emission import emit
from deployc_vllm.rocm import ROCM_IMAGE, ROCM_IMAGE_TAG, vendor_mismatches
from tests.conftest import REPO
from tests.contract_helpers import deploy
from tests.system_tools import tool_or_none, tool_or_skip

SCHEMAS = REPO / "tests" / "fixtures" / "schemas"
SAMPLES = {"chat": REPO / "samples" / "llama70b-fp8-mi300x-chat.toml",
           "r1": REPO / "samples" / "deepseek-r1-mi300x8.toml"}
MULTI_NODE = {
    "version": 1, "name": "llama405b-two-nodes",
    "model": {"id": "meta-llama/Llama-3.1-405B-Instruct", "quantization": "none"},
    "hardware": {"gpu": "MI300X", "gpus_per_node": 4, "nodes": 2, "network": "roce-400g",
                 "network_interface": "ens1np0", "ib_hcas": ["mlx5_0", "mlx5_1"]},
    "workload": {"prompt_tokens": {"mean": 1000, "p99": 4000}, "output_tokens": {"mean": 1000, "p99": 4000},
                 "concurrency": 128},
    "operations": {"backend": "vllm"},
}


@pytest.fixture(scope="module")
def amd_plans(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Plan]:
    """The two MI300X samples and a two-node MI300X spec (405B BF16 outgrows 4 GPUs), planned with vLLM."""
    spec = tmp_path_factory.mktemp("amd") / "llama405b-two-nodes.toml"
    spec.write_text(tomli_w.dumps(MULTI_NODE))
    plans = {name: make_plan(path, "vllm", display_name=path.name)[0] for name, path in SAMPLES.items()}
    plans["two-nodes"] = make_plan(spec, "vllm", display_name=spec.name)[0]
    return plans


@pytest.fixture(scope="module")
def amd_emissions(amd_plans: dict[str, Plan]) -> dict[str, Emission]:
    """What vLLM emits for each AMD plan."""
    return {name: emit(deploy(p)) for name, p in amd_plans.items()}


def _text(emission: Emission, path: str) -> str:
    return next(a.content for a in emission.artifacts if a.path == path)


def test_rocm_image_pinned_to_the_engine_version(amd_emissions: dict[str, Emission]) -> None:
    assert (ROCM_IMAGE, ROCM_IMAGE_TAG) == ("vllm/vllm-openai-rocm", "v0.33.0")
    run = _text(amd_emissions["chat"], "run.sh")
    assert "    vllm/vllm-openai-rocm:v0.33.0 \\\n" in run
    assert "--gpus" not in run


def test_docker_run_gives_amd_devices_not_gpus(amd_emissions: dict[str, Emission]) -> None:
    run = _text(amd_emissions["r1"], "run.sh")
    for line in ("    --device /dev/kfd \\\n", "    --device /dev/dri \\\n", "    --group-add video \\\n",
                 "    --security-opt seccomp=unconfined \\\n", "    --env HIP_VISIBLE_DEVICES=0,1,2,3,4,5,6,7 \\\n",
                 "    --ipc=host \\\n", "    --env VLLM_ROCM_USE_AITER=1 \\\n"):
        assert line in run
    assert "SYS_PTRACE" not in run.split("docker run", 1)[1].split("#", 1)[0]


def test_compose_uses_devices_and_validates(amd_emissions: dict[str, Emission], tmp_path: Path) -> None:
    (doc,) = yaml.safe_load_all(_text(amd_emissions["chat"], "compose.yaml"))
    service = doc["services"]["llama70b-mi300x-chat"]
    assert "deploy" not in service
    assert service["devices"] == ["/dev/kfd:/dev/kfd", "/dev/dri:/dev/dri"]
    assert service["group_add"] == ["video"] and service["security_opt"] == ["seccomp=unconfined"]
    assert service["environment"] == ["HF_TOKEN", "HIP_VISIBLE_DEVICES=0", "VLLM_ROCM_USE_AITER=1"]
    schema = json.loads((SCHEMAS / "compose-spec.json").read_text())
    assert list(jsonschema.Draft7Validator(schema).iter_errors(doc)) == []
    compose = tool_or_none("docker-compose")
    if compose:
        (tmp_path / "compose.yaml").write_text(_text(amd_emissions["chat"], "compose.yaml"))
        result = subprocess.run([compose, "-f", str(tmp_path / "compose.yaml"), "config"],
                                capture_output=True, text=True, check=False,
                                env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
        assert result.returncode == 0, result.stderr


def test_kubernetes_requests_amd_gpus(amd_emissions: dict[str, Emission]) -> None:
    lws_schema = json.loads((SCHEMAS / "leaderworkerset-v1.schema.json").read_text())
    seen: list[dict[str, Any]] = []
    for emission in amd_emissions.values():
        for artifact in emission.artifacts:
            if artifact.path.startswith("k8s/"):
                for doc in yaml.safe_load_all(artifact.content):
                    if doc["kind"] == "LeaderWorkerSet":
                        assert list(jsonschema.Draft7Validator(lws_schema).iter_errors(doc)) == []
                        seen += [doc["spec"]["leaderWorkerTemplate"][t]["spec"]["containers"][0]
                                 for t in ("leaderTemplate", "workerTemplate")]
                    else:
                        kubernetes_validate.validate(doc, "1.32", strict=True)
                        if doc["kind"] == "Deployment":
                            seen += doc["spec"]["template"]["spec"]["containers"]
    assert [c["resources"]["limits"] for c in seen] == [{"amd.com/gpu": 1}, {"amd.com/gpu": 8}, {"amd.com/gpu": 4},
                                                        {"amd.com/gpu": 4}]
    leader_env = {e["name"]: e.get("value") for e in seen[2]["env"]}
    # no [backends.vllm] k8s_rdma_resource: the pods have no RDMA device and RCCL, like NCCL, runs over TCP
    assert leader_env["NCCL_IB_DISABLE"] == "1" and "NCCL_IB_GID_INDEX" not in leader_env
    assert leader_env["VLLM_ROCM_USE_AITER"] == "1"


def test_amd_scripts_pass_shellcheck(amd_emissions: dict[str, Emission], tmp_path: Path) -> None:
    shellcheck = tool_or_skip("shellcheck")
    paths = []
    for name, emission in amd_emissions.items():
        for artifact in emission.artifacts:
            if artifact.path.endswith(".sh"):
                target = tmp_path / name / artifact.path
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(artifact.content)
                paths.append(str(target))
    assert len(paths) == 8  # run.sh + bench.sh twice; node-0.sh, node-1.sh, preflight-nccl.sh, bench.sh
    result = subprocess.run([shellcheck, "--format=gcc", *paths], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout


def test_preflight_runs_rccl_tests_against_the_measured_mesh(amd_emissions: dict[str, Emission]) -> None:
    preflight = _text(amd_emissions["two-nodes"], "preflight-nccl.sh")
    assert "rccl-tests' all_reduce_perf" in preflight
    assert "# rccl-tests: https://github.com/ROCm/rccl-tests (build with MPI=1)" in preflight
    assert "-x NCCL_IB_GID_INDEX=3" in preflight
    assert "-x NCCL_SOCKET_IFNAME=ens1np0" in preflight


def test_monitoring_uses_amd_smi(amd_emissions: dict[str, Emission]) -> None:
    monitoring = _text(amd_emissions["chat"], "monitoring.md")
    assert "nvidia-smi --query" not in monitoring and "DCGM_FI" not in monitoring
    assert "amd-smi monitor -p -t -u -m -w 5" in monitoring
    assert "`sudo amd-smi set --power-cap 675` caps every GPU at 90% of its board power" in monitoring
    assert "GpuThermalThrottle" not in _text(amd_emissions["chat"], "prometheus-rules.yaml")


def test_rocm_decision_names_fnuz_and_hip_graphs(amd_emissions: dict[str, Emission]) -> None:
    decision = next(d for d in amd_emissions["r1"].decisions if d.id == "vllm.rocm")
    assert decision.value == "ROCm build on gfx942"
    assert "CUDA graphs are HIP graphs on ROCm" in decision.reason
    assert "FP8 is e4m3fnuz on this GPU" in decision.reason
    assert "custom all-reduce" in decision.reason


def test_mi300x_tp8_uses_the_measured_rccl_bus_bandwidth(amd_plans: dict[str, Plan]) -> None:
    from deployc.planner.collectives import allreduce_model

    target = amd_plans["r1"].target  # the simulation may choose a smaller TP; the 8-GPU all-reduce is what is measured
    model = allreduce_model(target.gpu, target.intra_node_link, 8, cuda_graphs=True)
    assert round(model.bus_bandwidth_bytes_per_s / 1e9, 1) == 315.7  # 8x MI300X rccl-tests, hisohara/ai-scripts


def test_vendor_mismatch_in_extra_args(amd_plans: dict[str, Plan]) -> None:
    gpu = amd_plans["chat"].target.gpu
    assert vendor_mismatches(gpu, ("--attention-backend", "FLASHINFER")) == [
        ("--attention-backend FLASHINFER is a CUDA kernel; MI300X is an AMD GPU (ROCm)",
         "drop it (vLLM picks ROCM_ATTN / ROCM_AITER_FA / TRITON_ATTN on ROCm) or name one of those")]
    assert vendor_mismatches(gpu, ("--attention-backend=ROCM_AITER_FA",)) == []
    assert check_plan(deploy(amd_plans["chat"])) == []
