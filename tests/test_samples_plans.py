"""The samples as acceptance tests: each scenario gets the plan an expert would sign."""

from __future__ import annotations

from pathlib import Path

import pytest

from deployc.api import plan
from deployc.diagnostics import PlanError
from deployc.planner.plan import Plan
from deployc.plugins import default_registry
from tests.conftest import MINIMAL_SPEC, REPO

INSTALLED = default_registry().names()


def _plan(name: str, backend: str | None = None) -> Plan:
    result, _ = plan(REPO / "samples" / f"{name}.toml", backend=backend)
    return result


def _value(p: Plan, decision: str) -> object:
    found = p.decision(decision)
    assert found is not None, f"no decision {decision!r}: {[d.id for d in p.decisions]}"
    return found.value


def test_70b_on_4_a100_nvlink_uses_tensor_parallel_4():
    p = _plan("llama70b-a100-nvlink")
    assert (p.primary.layout.tp, p.primary.layout.pp, p.primary.layout.dp) == (4, 1, 1)
    assert p.primary.knobs.weights_format == "bf16"
    assert p.primary.memory.kv_bytes_per_token_model == 327_680  # the seeds' erratum: not 32 KB
    assert p.primary.memory.fits


def test_70b_fp8_h100_prefix_caching_pays_with_its_ttft_effect():
    p = _plan("llama70b-fp8-h100-prefix")
    assert p.primary.knobs.weights_format == "fp8"
    assert p.primary.knobs.prefix_caching is True
    reason = p.decision("prefix_caching").reason  # type: ignore[union-attr]
    assert "1,800 of 2,500 prompt tokens (72%)" in reason and "TTFT" in reason
    assert p.primary.layout.tp <= 8 and p.primary.layout.gpus_used == 8


def test_t4_edge_site_gets_fp16_awq_and_a_power_cap():
    p = _plan("qwen7b-awq-t4-edge")
    assert p.primary.knobs.dtype == "float16"  # no BF16 on Turing
    assert p.primary.knobs.weights_format == "awq"
    assert _value(p, "power_limit") == 60  # 6/7 of the T4's 70 W, seed 003
    assert "nvidia-smi -pl 60" in p.decision("power_limit").reason  # type: ignore[union-attr]
    assert any(d.rule == "DPC306" for d in p.diagnostics)
    assert p.backend.name != "trtllm"  # models change weekly: no compile step


def test_stable_high_volume_model_prefers_tensorrt_llm():
    p = _plan("llama8b-fp8-h100-stable")
    assert p.primary.knobs.weights_format == "fp8"
    if "trtllm" in INSTALLED:
        assert p.backend.name == "trtllm"
    else:
        assert "trtllm would be preferred" in p.decision("backend").reason  # type: ignore[union-attr]


def test_agent_platform_prefers_sglang():
    p = _plan("agent-platform-qwen3-32b")
    assert p.primary.knobs.prefix_caching is True
    if "sglang" in INSTALLED:
        assert p.backend.name == "sglang"
    else:
        assert "sglang would be preferred" in p.decision("backend").reason  # type: ignore[union-attr]


def test_405b_on_8_h100_needs_fp8():
    p = _plan("llama405b-h100x8")
    assert p.primary.knobs.weights_format == "fp8"
    assert p.primary.layout.tp == 8


def test_70b_awq_on_one_rtx_pro_6000():
    p = _plan("llama70b-awq-rtx-pro-6000")
    assert p.primary.layout.gpus_used == 1
    assert p.primary.knobs.weights_format == "awq"
    assert p.primary.memory.fits


def test_two_pcie_gpus_keep_custom_all_reduce_at_tp2_and_explain_the_alternative():
    p = _plan("qwen32b-2x-pcie-multiuser")
    assert p.primary.layout.gpus_used == 2
    assert p.target.intra_node_link.id == "pcie5"
    rejected = {a.value for a in p.decision("parallelism").rejected}  # type: ignore[union-attr]
    assert {"TP2", "TP1×DP2"} - {p.primary.layout.label()} <= rejected


def test_405b_over_two_nodes_never_runs_tensor_parallel_across_nodes():
    p = _plan("llama405b-2nodes-16gpu")
    assert p.primary.layout.tp <= 8
    assert p.primary.layout.gpus_used == 16
    if p.primary.layout.pp > 1:
        assert _value(p, "pp_layer_split") == "63 / 63"


def test_mixed_traffic_gets_a_pool_per_class():
    p = _plan("mixed-short-long-a100")
    assert [pool.name for pool in p.pools] == ["short", "long"]
    assert sum(pool.layout.gpus_used for pool in p.pools) <= 4
    assert "evict" in p.decision("pools").reason  # type: ignore[union-attr]
    long = p.pools[1]
    assert long.knobs.max_model_len >= 61_000


def test_gpt_oss_serves_its_mxfp4_checkpoint():
    p = _plan("gpt-oss-120b-h100")
    assert p.primary.knobs.weights_format == "mxfp4"
    assert p.primary.layout.gpus_used == 1


def test_oversized_model_gets_ranked_fixes(tmp_path: Path):
    spec = tmp_path / "big.toml"
    spec.write_text(MINIMAL_SPEC.replace("meta-llama/Llama-3.1-8B-Instruct", "meta-llama/Llama-3.1-70B-Instruct")
                    .replace('gpu = "H100 SXM"', 'gpu = "L40S"\ngpus_per_node = 2')
                    .replace("[model]\n", '[model]\nquantization = "none"\n'))
    with pytest.raises(PlanError) as exc:
        plan(spec)
    (diag,) = exc.value.diagnostics
    assert diag.rule == "DPC301"
    assert "does not fit on 2 × L40S" in diag.message
    assert diag.hint is not None and diag.hint.startswith("try, cheapest first: ")
    fixes = diag.hint.removeprefix("try, cheapest first: ").split("; ")
    assert any("fits with" in f for f in fixes)
    # The fixes that work come before the ones that do not.
    works = [("fits with" in f) for f in fixes if "requests of at most" not in f]
    assert works == sorted(works, reverse=True)
