"""TensorRT-LLM backend: capability, memory hook, and every emitted flag / YAML key against data/ manifests."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from deployc.api import plan
from deployc.diagnostics import DeploycError
from deployc.planner.plan import Plan
from deployc_trtllm.capability import weights_capability
from deployc_trtllm.checks import check_plan
from deployc_trtllm.commands import build_command, extra_options, serve_command
from deployc_trtllm.emission import emit
from deployc_trtllm.manifests import check_flags, check_llm_api_yaml
from tests.conftest import REPO
from tests.system_tools import tool_or_skip

SAMPLES = sorted((REPO / "samples").glob("*.toml"))
REFUSED = {  # sample → words of the diagnostic saying why TensorRT-LLM cannot serve it
    "qwen7b-awq-t4-edge": "supports Ampere, Ada, Hopper and Blackwell",
    "gpt-oss-120b-h100": "no mxfp4 path",
    "llama70b-awq-rtx-pro-6000": "already quantized",
    "llama405b-2nodes-16gpu": "single-node deployments",
    "llama70b-fp8-mi300x-chat": "runs only on NVIDIA GPUs; MI300X is not one",
    "deepseek-r1-mi300x8": "runs only on NVIDIA GPUs; MI300X is not one",
}


@pytest.fixture(scope="module")
def plans() -> dict[str, Plan]:
    out: dict[str, Plan] = {}
    for path in SAMPLES:
        try:
            out[path.stem], _ = plan(Path(path), "trtllm", display_name=path.name)
        except DeploycError:
            continue
    return out


@pytest.mark.parametrize("stem", sorted(REFUSED))
def test_refused_samples_say_why(stem: str) -> None:
    path = REPO / "samples" / f"{stem}.toml"
    try:
        p, _ = plan(path, "trtllm", display_name=path.name)
    except DeploycError as exc:
        text = " ".join(f"{d.message} {d.hint or ''}" for d in exc.diagnostics)
    else:
        text = " ".join(d.message for d in check_plan(p))
    assert REFUSED[stem] in text


def test_every_other_sample_passes_the_manifest_checks(plans: dict[str, Plan]) -> None:
    assert set(plans) | set(REFUSED) >= {p.stem for p in SAMPLES}
    for name, p in plans.items():
        if name in REFUSED:
            continue
        assert check_plan(p) == [], name
        for artifact in emit(p).artifacts:
            if artifact.path.endswith(".yaml"):
                assert check_llm_api_yaml(yaml.safe_load(artifact.content)) == []


def test_build_limits_come_from_the_plan_and_size_memory(plans: dict[str, Plan]) -> None:
    p = plans["llama8b-fp8-h100-stable"]
    pool = p.primary
    args = build_command(p, pool).args
    assert args[args.index("--max_batch_size") + 1] == str(pool.knobs.max_num_seqs)
    assert args[args.index("--max_num_tokens") + 1] == str(pool.knobs.max_num_batched_tokens)
    assert "--tp_size" not in args  # fixed at quantization in TensorRT-LLM
    assert pool.memory.memory_fraction_kind == "free_after_load"
    assert any("build limits" in a for a in pool.memory.assumptions)


def test_serve_uses_underscore_flags_and_free_memory_fraction(plans: dict[str, Plan]) -> None:
    p = plans["llama70b-a100-nvlink"]
    args = serve_command(p, p.primary, 8000).args
    assert "--kv_cache_free_gpu_memory_fraction" in args and "--tp_size" in args
    assert extra_options(p.primary)["kv_cache_config"]["free_gpu_memory_fraction"] == 0.9


def test_manifest_checks_reject_wrong_spellings() -> None:
    assert check_flags("build", ["--tp_size", "2"]) == [
        "--tp_size is not a flag of trtllm-build (manifest tensorrt-llm 1.2.1)"]
    assert check_flags("build", ["--use_paged_context_fmha", "true"])[0].startswith("--use_paged_context_fmha 'true'")
    assert check_flags("serve", ["m", "--tp-size", "2"], positionals=1)[0].startswith("--tp-size is not a flag")
    assert check_llm_api_yaml({"cuda_graph_config": {"batch_sizes": [1, 2]}}) == [
        "cuda_graph_config is not a field of TrtLlmArgs"]
    assert check_llm_api_yaml({"kv_cache_config": {"free_gpu_mem_fraction": 0.9}}) == [
        "kv_cache_config.free_gpu_mem_fraction is not a field of KvCacheConfig"]


def test_capability_matrix() -> None:
    assert not weights_capability((8, 0), "fp8", False).supported
    assert weights_capability((8, 9), "fp8", False).supported
    assert not weights_capability((9, 0), "nvfp4", False).supported
    assert weights_capability((8, 0), "awq", False).supported  # quantize.py --qformat int4_awq


def test_build_note_and_shellcheck(plans: dict[str, Plan], tmp_path: Path) -> None:
    files = []
    for name, p in plans.items():
        for artifact in emit(p).artifacts:
            if artifact.path.endswith(".sh"):
                assert "10-30 minutes" in artifact.content and "tied to this GPU architecture" in artifact.content
                path = tmp_path / f"{name}-{artifact.path}"
                path.write_text(artifact.content)
                files.append(str(path))
    result = subprocess.run([tool_or_skip("shellcheck"), *files], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout
