"""The catalog matrix in CI: no internal error, no plugin failure, and every plan that succeeds builds.

A fixed-seed sample of ``tests/reliability/matrix.py`` (``bench/matrix.py`` runs all of it), and
the crashes the matrix found, each pinned by a case that failed before its fix.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import types
from pathlib import Path

import pytest

from deployc import api
from deployc.contract.backend import Capability
from deployc.diagnostics import PlanError
from deployc.planner.types import Layout
from deployc.plugins import PluginRegistry, default_registry, module_source
from tests.reliability._support import run_cli
from tests.reliability.matrix import SIZES, WORKLOADS, Case, run_case, sample_cases

SEED = 11
SAMPLE = 120  # ~0.1 s each in-process; the whole matrix is bench/matrix.py
CHAT = WORKLOADS[0]


def test_a_fixed_seed_sample_of_the_matrix_never_crashes_and_builds_what_it_plans(tmp_path: Path) -> None:
    cases = sample_cases(SAMPLE, SEED)
    assert len({c.backend for c in cases}) == len(default_registry().names()) + 1, "forced and auto both drawn"
    outcomes = [run_case(case, tmp_path) for case in cases]
    failed = [f"{o.case.label()}: {o.status}: {o.detail}" for o in outcomes if o.failed]
    assert failed == []
    assert sum(o.status == "built" for o in outcomes) > SAMPLE // 3, "most of the sample plans and builds"


def test_the_matrix_is_what_the_issue_asks() -> None:
    assert SIZES == ((1, 1), (2, 1), (4, 1), (8, 1), (8, 2))
    assert [w.kind for w in WORKLOADS] == ["chat", "rag", "agent", "batch"]


@pytest.mark.parametrize("case", [
    Case("A10G", "Llama-3.1-8B", 1, 1, CHAT, "latency", "auto"),
    Case("A10G", "Qwen3-32B", 8, 2, WORKLOADS[2], "throughput", "vllm"),
    Case("H100 SXM", "DeepSeek-R1", 8, 2, WORKLOADS[1], "throughput", "auto"),
    Case("GB200", "DeepSeek-V3", 8, 2, WORKLOADS[1], "throughput", "auto"),
    Case("RTX 3090", "Mixtral-8x7B", 8, 2, WORKLOADS[1], "throughput", "vllm"),
], ids=lambda c: c.label())
def test_cases_that_crashed_now_build(case: Case, tmp_path: Path) -> None:
    outcome = run_case(case, tmp_path)
    assert (outcome.status, outcome.detail) == ("built", "")


@pytest.mark.parametrize(("model", "gpu", "per_node"), [
    ("Llama-3.1-405B", "RTX 4090", 1), ("DeepSeek-V3", "H100 SXM", 8)])
def test_a_model_too_big_for_one_node_gets_ranked_fixes_not_a_crash(model: str, gpu: str, per_node: int,
                                                                     tmp_path: Path) -> None:
    spec = tmp_path / "big.toml"
    spec.write_text(Case(gpu, model, per_node, 1, CHAT, "latency", "vllm").spec_text())
    run = run_cli(["plan", str(spec)])
    assert run.code == 1, run.err
    assert f"error: model.id: {model} does not fit on {per_node} × {gpu}" in run.err
    assert "nodes; set hardware.network, sized here over ib-ndr): fits with" in run.err
    assert "[DPC301]" in run.err


def test_the_a10g_plans_with_its_catalog_rates(tmp_path: Path) -> None:
    spec = tmp_path / "a10g.toml"
    spec.write_text(Case("A10G", "Llama-3.1-8B", 1, 1, CHAT, "throughput", "vllm").spec_text())
    plan, _ = api.plan(spec)
    assert plan.target.gpu.dense_tflops["bf16"] == 70
    assert plan.pools[0].performance.tokens_per_s > 0


def test_the_cli_builds_deepseek_r1_on_two_nodes_with_auto(tmp_path: Path) -> None:
    spec = tmp_path / "r1.toml"
    spec.write_text(Case("H100 SXM", "DeepSeek-R1", 8, 2, CHAT, "throughput", "auto").spec_text())
    done = subprocess.run([sys.executable, "-m", "deployc", "build", str(spec), "-o", str(tmp_path / "out")],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "node-1.sh").is_file()


# -- the layout contract (deployc_layout_support) --------------------------------------------------

def _refusing(plugin_module: str, name: str, reason: str) -> types.ModuleType:
    """A copy of a built-in backend plugin whose emitter refuses every layout."""
    base = __import__(plugin_module, fromlist=["plugin"])
    module = types.ModuleType(f"{name}_refusing")
    for attr in dir(base):
        if attr.startswith("deployc_"):
            setattr(module, attr, getattr(base, attr))

    def deployc_layout_support(backend: str, target: object, layout: Layout, gpus_per_node: int,
                               nodes: int) -> Capability:
        return Capability(supported=False, reason=reason, alternative="use another backend")

    module.deployc_layout_support = deployc_layout_support  # type: ignore[attr-defined]
    return module


def _registry_with_refusing_vllm() -> PluginRegistry:
    vllm = _refusing("deployc_vllm.plugin", "vllm", "no launcher for this layout")
    sglang = __import__("deployc_sglang.plugin", fromlist=["plugin"])
    return PluginRegistry([(module_source(vllm, "vllm"), vllm), (module_source(sglang, "sglang"), sglang)])


def test_auto_skips_a_backend_whose_emitter_refuses_every_layout_and_says_why(tmp_path: Path) -> None:
    spec = tmp_path / "s.toml"
    spec.write_text(Case("H100 SXM", "Llama-3.1-8B", 2, 1, CHAT, "throughput", "auto").spec_text())
    plan, _ = api.plan(spec, registry=_registry_with_refusing_vllm())
    assert plan.backend.name == "sglang"
    decision = next(d for d in plan.decisions if d.id == "backend")
    assert [(a.value, a.reason) for a in decision.rejected] == [
        ("vllm", "its emitter cannot deploy any valid layout: no launcher for this layout (use another backend)")]
    assert decision.reason == ("vllm is preferred (no compile step, fast model iteration, widest model and hardware "
                               "support) but cannot serve this plan; next in order")


def test_a_forced_backend_that_cannot_emit_any_layout_is_exit_1_not_a_plugin_failure(tmp_path: Path) -> None:
    spec = tmp_path / "s.toml"
    spec.write_text(Case("H100 SXM", "Llama-3.1-8B", 2, 1, CHAT, "throughput", "vllm").spec_text())
    with pytest.raises(PlanError) as exc:
        api.plan(spec, registry=_registry_with_refusing_vllm())
    (diag,) = exc.value.diagnostics
    assert (diag.rule, diag.message, diag.hint) == (
        "DPC401", "the vllm backend cannot serve this spec",
        "its emitter cannot deploy any valid layout: no launcher for this layout (use another backend)")
    assert exc.value.exit_code == 1


def test_trtllm_engine_flow_on_two_nodes_is_refused_at_plan_time_with_its_reason(tmp_path: Path) -> None:
    spec = tmp_path / "s.toml"
    spec.write_text(Case("H100 SXM", "Llama-3.1-8B", 8, 2, CHAT, "throughput", "trtllm").spec_text()
                    + '[backends.trtllm]\nflow = "engine"\n')
    run = run_cli(["plan", str(spec)])
    assert run.code == 1
    assert "the trtllm backend cannot serve this spec [DPC401]" in run.err
    assert ("hint: its emitter cannot deploy any valid layout: the TensorRT-LLM engine flow is emitted for one node "
            '(remove flow = "engine" from [backends.trtllm]: the PyTorch flow runs across nodes)') in run.err


def test_trtllm_layout_support_follows_its_placement() -> None:
    from deployc_trtllm.layouts import layout_support

    target = types.SimpleNamespace(options={}, nodes=2)
    assert layout_support(target, Layout(tp=8, pp=1, dp=2), 8, 2) is None  # type: ignore[arg-type]
    assert layout_support(target, Layout(tp=8, pp=1, dp=2, ep=16), 8, 2) is None  # type: ignore[arg-type]
    assert layout_support(target, Layout(tp=2, pp=3, dp=1), 4, 3).reason == (  # type: ignore[arg-type, union-attr]
        "a server of 6 GPUs is not a whole number of 4-GPU nodes")


def test_a_layout_vllm_refuses_is_listed_among_the_rejected_layouts(tmp_path: Path) -> None:
    spec = tmp_path / "s.toml"
    spec.write_text(Case("H100 SXM", "DeepSeek-R1", 8, 2, CHAT, "throughput", "vllm").spec_text())
    plan, _ = api.plan(spec)
    layout = plan.pools[0].layout
    if layout.ep > 1 and layout.gpus_used > 8:  # one engine over both nodes: one data-parallel rank per node
        assert layout.dp <= 2, layout.label()
    parallelism = next(d for d in plan.decisions if d.id.startswith("parallelism"))
    refused = [a for a in parallelism.rejected if "vllm cannot emit it" in a.reason]
    assert refused, [a.reason for a in parallelism.rejected]
    assert any(a.value == "TP1×DP16×EP16" for a in refused)


def test_vllm_layout_support_follows_its_placement() -> None:
    from deployc_vllm.layouts import layout_support

    target = types.SimpleNamespace(options={})
    ray = types.SimpleNamespace(options={"distributed_executor_backend": "ray"})
    wide = Layout(tp=1, pp=1, dp=16, ep=16)
    verdict = layout_support(target, wide, 8, 2)  # type: ignore[arg-type]
    assert verdict is not None and not verdict.supported
    assert verdict.reason.startswith("one expert-parallel engine of 16 data-parallel ranks over 2 nodes puts 8 ranks")
    assert layout_support(ray, wide, 8, 2) is None  # type: ignore[arg-type]
    assert layout_support(target, Layout(tp=8, pp=1, dp=2, ep=16), 8, 2) is None  # type: ignore[arg-type]
    assert layout_support(target, Layout(tp=2, pp=3, dp=1), 4, 3).reason == (  # type: ignore[arg-type, union-attr]
        "a server of 6 GPUs is not a whole number of 4-GPU nodes")


def test_many_plans_reuse_one_plugin_worker_thread(tmp_path: Path) -> None:
    spec = tmp_path / "s.toml"
    spec.write_text(Case("L4", "Llama-3.1-8B", 1, 1, CHAT, "throughput", "vllm").spec_text())
    api.plan(spec)
    before = threading.active_count()
    for _ in range(30):
        api.plan(spec)
    assert threading.active_count() == before
