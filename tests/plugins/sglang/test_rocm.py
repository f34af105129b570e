"""SGLang 0.5.23 on AMD Instinct: capability, images per GPU family, AITER and its memory-fraction rule, manifests."""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import tomli_w
import yaml

from deployc.api import plan as make_plan
from deployc.catalog import resolve_gpu
from deployc.contract.backend import OverheadQuery
from deployc_sglang.capability import capability
from deployc_sglang.command import NodeRole, launch_command
from deployc_sglang.emission import emit
from deployc_sglang.options import parse_options
from deployc_sglang.overheads import emitted_mem_fraction_cap, runtime_overheads
from deployc_sglang.rocm import rocm_image_tag
from tests.conftest import REPO
from tests.contract_helpers import deploy
from tests.system_tools import tool_or_none

GIB = 1 << 30


def _target(gpu: str, checkpoint: bool = False) -> Any:
    model = SimpleNamespace(checkpoint_quant=object() if checkpoint else None)
    return SimpleNamespace(gpu=resolve_gpu(gpu), model=model, options={})


def _query(**changes: object) -> OverheadQuery:
    base: dict[str, object] = {
        "model_name": "m", "num_layers": 80, "hidden_size": 8192, "intermediate_size": 28672, "vocab_size": 128256,
        "num_attention_heads": 64, "is_moe": False, "gpu_name": "MI300X", "gpu_memory_bytes": 192 * GIB, "tp": 1,
        "pp": 1, "activation_dtype_bytes": 2, "max_num_batched_tokens": 8192, "max_num_seqs": 64,
        "cuda_graphs": True, "weights_bytes_per_gpu": 70 * GIB, "gpu_vendor": "AMD", "max_model_len": 32768}
    base.update(changes)
    return OverheadQuery(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(("gpu", "fmt", "kernel"), [
    ("MI300X", "fp8", "AITER/hipBLASLt FP8 GEMM (W8A8, e4m3fnuz)"),
    ("MI355X", "fp8", "AITER/hipBLASLt FP8 GEMM (W8A8, e4m3fn)"),
    ("MI300X", "awq", "Triton AWQ dequantize + GEMM (W4A16)"),
    ("MI355X", "mxfp4", "AITER MXFP4 (W4A4) MoE"),
    ("MI325X", "mxfp4", "AITER MXFP4 (W4A16)"),
])
def test_supported(gpu: str, fmt: str, kernel: str) -> None:
    verdict = capability(_target(gpu, checkpoint=fmt in ("awq", "mxfp4")), fmt, "fp8")
    assert verdict.supported
    assert verdict.kernel == f"{kernel}; attention: AITER (SGLang's default on ROCm)"


def test_gptq_has_no_rocm_kernel() -> None:
    verdict = capability(_target("MI300X", checkpoint=True), "gptq", "auto")
    assert not verdict.supported
    assert verdict.reason == ("SGLang 0.5.23 removed its non-Marlin GPTQ kernel (gptq_linear.py) and Marlin is "
                              "CUDA-only: no GPTQ on ROCm")
    assert verdict.alternative == "use vllm (Triton W4A16 GPTQ on ROCm) or an AWQ checkpoint"


def test_image_per_gpu_family() -> None:
    assert rocm_image_tag("gfx942") == "v0.5.23-rocm720-mi30x"
    assert rocm_image_tag(resolve_gpu("MI325X").gfx_target) == "v0.5.23-rocm720-mi30x"
    assert rocm_image_tag(resolve_gpu("MI355X").gfx_target) == "v0.5.23-rocm720-mi35x"


def test_aiter_scales_the_emitted_fraction_cap_above_8k_context() -> None:
    unscaled = emitted_mem_fraction_cap(_query())
    assert runtime_overheads(_query()).default_memory_fraction == round(unscaled * 0.85, 3)
    assert runtime_overheads(_query(max_model_len=8192)).default_memory_fraction == unscaled
    assert runtime_overheads(_query(gpu_vendor="NVIDIA")).default_memory_fraction == unscaled


def test_emitted_fraction_is_divided_so_the_engine_lands_on_the_plan() -> None:
    p, _ = make_plan(REPO / "samples" / "deepseek-r1-mi300x8.toml", "sglang", display_name="r1")
    (pool,) = p.pools
    assert pool.knobs.max_model_len > 8192
    argv = launch_command(deploy(p), deploy(p).servers[0], parse_options(None), NodeRole()).argv
    emitted = float(argv[argv.index("--mem-fraction-static") + 1])
    assert emitted * 0.85 == pytest.approx(pool.knobs.memory_fraction, abs=0.001)
    assert emitted * 0.85 <= pool.knobs.memory_fraction
    run = next(a.content for a in emit(deploy(p)).artifacts if a.path == "run.sh")
    assert "    lmsysorg/sglang:v0.5.23-rocm720-mi30x \\\n" in run
    assert "    --env SGLANG_USE_AITER=1 \\\n" in run and "    --device /dev/kfd \\\n" in run


def test_two_node_mi300x_scripts_and_rccl_preflight(tmp_path: Path) -> None:
    spec = tmp_path / "two-nodes.toml"
    spec.write_text(tomli_w.dumps({
        "version": 1, "name": "llama405b-two-nodes",
        "model": {"id": "meta-llama/Llama-3.1-405B-Instruct", "quantization": "none"},
        "hardware": {"gpu": "MI300X", "gpus_per_node": 4, "nodes": 2, "network": "roce-400g",
                     "network_interface": "ens1np0", "ib_hcas": ["rocep9s0", "rocep25s0"]},
        "workload": {"prompt_tokens": {"mean": 1000}, "output_tokens": {"mean": 500}, "concurrency": 32},
        "operations": {"backend": "sglang"}}))
    p, _ = make_plan(spec, "sglang", display_name=spec.name)
    files = {a.path: a.content for a in emit(deploy(p)).artifacts}
    assert {"node-0.sh", "node-1.sh", "preflight-nccl.sh"} <= set(files)
    assert "rccl-tests' all_reduce_perf" in files["preflight-nccl.sh"]
    assert "-x NCCL_IB_HCA=rocep9s0,rocep25s0" in files["preflight-nccl.sh"]
    (manifest,) = (text for name, text in files.items() if name.startswith("k8s/"))
    lws = next(d for d in yaml.safe_load_all(manifest) if d["kind"] == "LeaderWorkerSet")
    template = lws["spec"]["leaderWorkerTemplate"]
    for pod in (template["leaderTemplate"], template["workerTemplate"]):
        (container,) = pod["spec"]["containers"]
        assert container["resources"]["limits"] == {"amd.com/gpu": 4}
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["NCCL_IB_GID_INDEX"] == "3" and env["SGLANG_USE_AITER"] == "1"
        assert "HIP_VISIBLE_DEVICES" not in env  # the device plugin hands the pod its GPUs
    for node in ("node-0.sh", "node-1.sh"):
        assert "    --env HIP_VISIBLE_DEVICES=0,1,2,3 \\\n" in files[node]
        assert "    --env NCCL_IB_GID_INDEX=3 \\\n" in files[node]
        assert "    --device /dev/infiniband \\\n" in files[node]
    shellcheck = tool_or_none("shellcheck")
    if shellcheck:
        paths = []
        for name, text in files.items():
            if name.endswith(".sh"):
                (tmp_path / name).write_text(text)
                paths.append(str(tmp_path / name))
        result = subprocess.run([shellcheck, "--severity=style", *paths], capture_output=True, text=True,
                                check=False)
        assert result.returncode == 0, result.stdout


def test_single_node_compose_kubernetes_and_monitoring_on_mi300x() -> None:
    p, _ = make_plan(REPO / "samples" / "llama70b-fp8-mi300x-chat.toml", "sglang", display_name="chat")
    files = {a.path: a.content for a in emit(deploy(p)).artifacts}
    (service,) = yaml.safe_load(files["compose.yaml"])["services"].values()
    assert "deploy" not in service  # no NVIDIA device reservation
    assert service["devices"] == ["/dev/kfd:/dev/kfd", "/dev/dri:/dev/dri"]
    assert service["group_add"] == ["video"] and service["security_opt"] == ["seccomp=unconfined"]
    assert "HIP_VISIBLE_DEVICES=0" in service["environment"] and "SGLANG_USE_AITER=1" in service["environment"]
    (manifest,) = (text for name, text in files.items() if name.startswith("k8s/"))
    deployment = next(d for d in yaml.safe_load_all(manifest) if d["kind"] == "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["limits"] == {"amd.com/gpu": 1}
    assert {"name": "SGLANG_USE_AITER", "value": "1"} in container["env"]
    assert not any(e["name"].startswith("NCCL_") for e in container["env"])
    monitoring = files["monitoring.md"]
    assert "nvidia-smi --query" not in monitoring and "DCGM_FI" not in monitoring
    assert "amd-smi monitor -p -t -u -m -w 5" in monitoring
    assert "\n\n\n" not in monitoring
    assert "GpuThermalThrottle" not in files["prometheus-rules.yaml"]
    assert "SglangRequestsQueued" in files["prometheus-rules.yaml"]
