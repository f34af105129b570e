"""AMD Instinct facts: Infinity Fabric links, measured RCCL all-reduce, which backends serve each GPU."""

from __future__ import annotations

from pathlib import Path

import pytest
import tomli_w

from deployc.api import plan as make_plan
from deployc.api import resolve_spec
from deployc.catalog import resolve_gpu, resolve_link
from deployc.catalog.interconnects import allreduce_measurements
from deployc.diagnostics import SpecError
from deployc.planner.collectives import allreduce_model
from deployc.render.catalog import catalog_rows

GB = 10**9


def test_each_instinct_gpu_names_its_xgmi_link() -> None:
    assert [resolve_gpu(n).xgmi_link for n in ("MI300X", "MI325X", "MI355X")] == [
        "infinity-fabric", "infinity-fabric", "infinity-fabric4"]
    assert resolve_gpu("H100 SXM").xgmi_link is None and not resolve_gpu("H100 SXM").is_amd
    assert resolve_link("infinity-fabric4").per_direction_bytes_per_s == 76.8 * GB


def test_rccl_rows_are_cited() -> None:
    rows = [r for r in allreduce_measurements() if r.gpu in ("MI300X", "MI325X", "MI355X")]
    assert {(r.gpu, r.nodes, r.bus_bandwidth_bytes_per_s / GB) for r in rows} == {
        ("MI300X", 1, 315.7), ("MI325X", 1, 319.1), ("MI300X", 2, 357.5), ("MI325X", 2, 350.2), ("MI355X", 2, 369.0)}
    assert all(r.source.startswith("github hisohara/ai-scripts @0780bb3") for r in rows)


@pytest.mark.parametrize(("gpu", "link", "gpus", "busbw_gb"), [
    ("MI300X", "infinity-fabric", 8, 315.7),  # measured
    ("MI300X", "infinity-fabric", 2, 315.7 / 7),  # one link of the mesh: ~45 GB/s (AMD: ~48 usable per link)
    ("MI325X", "infinity-fabric", 4, 319.1 * 3 / 7),
])
def test_mesh_all_reduce_scales_with_the_links_a_ring_uses(gpu: str, link: str, gpus: int, busbw_gb: float) -> None:
    model = allreduce_model(resolve_gpu(gpu), resolve_link(link), gpus, cuda_graphs=True)
    assert model.bus_bandwidth_bytes_per_s == pytest.approx(busbw_gb * GB)
    assert model.latency_s == pytest.approx(13.7e-6)


def test_mi355x_estimate_uses_the_measured_mesh_efficiency() -> None:
    model = allreduce_model(resolve_gpu("MI355X"), resolve_link("infinity-fabric4"), 8, cuda_graphs=True)
    efficiency = (315.7 / (64 * 7) + 319.1 / (64 * 7)) / 2
    assert model.bus_bandwidth_bytes_per_s == pytest.approx(7 * 76.8 * GB * efficiency)


def test_catalog_lists_the_backends_that_serve_each_gpu() -> None:
    rows = {r["name"]: r for r in catalog_rows("gpus")}
    assert rows["MI300X"]["backends"] == "sglang, vllm"
    assert rows["MI355X"]["backends"] == "sglang, vllm"
    assert rows["H100 SXM"]["backends"] == "sglang, trtllm, vllm"


@pytest.mark.parametrize(("gpu", "interconnect", "link"), [
    ("MI355X", "auto", "infinity-fabric4"), ("MI300X", "auto", "infinity-fabric"),
    ("MI325X", "infinity-fabric", "infinity-fabric"), ("H100 SXM", "auto", "nvlink4"),
])
def test_interconnect_resolves_by_vendor(tmp_path: Path, gpu: str, interconnect: str, link: str) -> None:
    spec = tmp_path / "s.toml"
    spec.write_text(tomli_w.dumps({
        "version": 1, "name": "s", "model": {"id": "meta-llama/Llama-3.1-8B-Instruct"},
        "hardware": {"gpu": gpu, "gpus_per_node": 8, "interconnect": interconnect},
        "workload": {"prompt_tokens": {"mean": 100}, "output_tokens": {"mean": 100}, "concurrency": 1}}))
    _, target, _ = resolve_spec(spec)
    assert target.intra_node_link.id == link


def test_auto_backend_on_amd_refuses_tensorrt_llm_and_names_the_alternatives(tmp_path: Path) -> None:
    spec = tmp_path / "s.toml"
    spec.write_text(tomli_w.dumps({
        "version": 1, "name": "s", "model": {"id": "meta-llama/Llama-3.1-8B-Instruct"},
        "hardware": {"gpu": "MI300X", "gpus_per_node": 1},
        "workload": {"prompt_tokens": {"mean": 500}, "output_tokens": {"mean": 200}, "concurrency": 8},
        "operations": {"model_change": "rarely", "models": "single"}}))
    p, _ = make_plan(spec, None, display_name="s.toml")
    decision = p.decision("backend")
    assert decision is not None and decision.value == "vllm"
    assert {a.value: a.reason for a in decision.rejected}["trtllm"] == (
        "TensorRT-LLM runs only on NVIDIA GPUs (AMD given); vllm and sglang have ROCm builds for AMD Instinct GPUs")


def test_an_instinct_node_holds_eight_gpus(tmp_path: Path) -> None:
    spec = tmp_path / "s.toml"
    spec.write_text(tomli_w.dumps({
        "version": 1, "name": "s", "model": {"id": "meta-llama/Llama-3.1-8B-Instruct"},
        "hardware": {"gpu": "MI300X", "gpus_per_node": 16},
        "workload": {"prompt_tokens": {"mean": 500}, "output_tokens": {"mean": 200}, "concurrency": 8}}))
    with pytest.raises(SpecError) as exc:
        resolve_spec(spec)
    (diag,) = exc.value.diagnostics
    assert diag.message == ("MI300X nodes hold 8 GPUs in one Infinity Fabric mesh; 16 per node would be a partition "
                            "mode (CPX), which deployc does not plan")
    assert diag.hint == "set gpus_per_node ≤ 8 and add nodes"
