"""A model given as a local config.json of each supported architecture plans end to end."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from deployc.api import plan
from deployc.catalog import resolve_model
from deployc.planner.kv import kv_bytes_per_token_model
from tests.conftest import MINIMAL_SPEC, REPO

CONFIGS = REPO / "tests" / "fixtures" / "hf_configs"
FAMILIES = ["llama", "mistral", "qwen2", "qwen3", "mixtral", "qwen3_moe", "deepseek_v2", "deepseek_v3", "gpt_oss",
            "gemma2", "gemma3", "phi3", "qwen2_5_7b_instruct_awq", "llama_fp8_block", "llama_gptq"]


@pytest.mark.parametrize("name", FAMILIES)
def test_local_config_plans(name: str, tmp_path: Path) -> None:
    shutil.copy(CONFIGS / f"{name}.json", tmp_path / "config.json")
    spec = tmp_path / "spec.toml"
    spec.write_text(MINIMAL_SPEC.replace('[model]\n', '[model]\nconfig = "config.json"\n')
                    .replace('gpu = "H100 SXM"', 'gpu = "H200 SXM"\ngpus_per_node = 8')
                    .replace("[workload]", '[operations]\nbackend = "vllm"\n\n[workload]'))
    result, _ = plan(spec)
    arch = resolve_model("config.json", base_dir=tmp_path, allow_download=False)
    memory = result.primary.memory
    assert memory.fits
    kv_dtype = 1.0 if result.primary.knobs.kv_cache_dtype == "fp8" else 2.0
    assert memory.kv_bytes_per_token_model == kv_bytes_per_token_model(arch, kv_dtype)
    assert memory.kv_capacity_tokens >= 4000 + 800
