"""What `deployc size` searches, how it ranks, the Pareto frontier and its chart (no planning here)."""

from __future__ import annotations

from pathlib import Path
from unittest.mock import sentinel

import pytest
from attrs import evolve

from deployc.api import load_spec
from deployc.catalog import resolve_gpu, resolve_model
from deployc.planner.backend_choice import rank_backends
from deployc.plugins import default_registry
from deployc.sizing.deployment import Deployment
from deployc.sizing.frontier import CHART_HEIGHT, CHART_WIDTH, frontier_chart, pareto_frontier
from deployc.sizing.search import cost_key
from deployc.sizing.space import (
    DEFAULT_GPUS,
    Size,
    SizeUsageError,
    Variant,
    default_gpus,
    parse_gpus,
    same_choice,
    sized_spec,
    sizes,
    variants,
)
from deployc.sizing.write import resized_document
from tests.conftest import MINIMAL_SPEC

OWN = Variant(backend="auto", quantization="auto")
INSTALLED = default_registry().models().infos()


def _labels(found: tuple[Size, ...]) -> list[str]:
    return [s.label() for s in found]


def test_sizes_single_node_then_whole_nodes_with_a_network():
    assert _labels(sizes(16, has_network=False)) == ["1", "2", "4", "8"]
    assert _labels(sizes(16, has_network=True)) == ["1", "2", "4", "8", "2×8"]
    assert _labels(sizes(32, has_network=True)) == ["1", "2", "4", "8", "2×8", "3×8", "4×8"]
    assert _labels(sizes(3, has_network=True)) == ["1", "2"]
    assert sizes(24, has_network=True)[-1] == Size(gpus_per_node=8, nodes=3)


def test_max_gpus_below_one_is_a_usage_error():
    with pytest.raises(SizeUsageError) as exc:
        sizes(0, has_network=False)
    assert str(exc.value) == "--max-gpus: expected a positive number of GPUs, got 0"


def test_parse_gpus_resolves_aliases_in_order_without_duplicates():
    assert [g.name for g in parse_gpus("H100,A100-80GB, L40S,H100 SXM")] == ["H100 SXM", "A100 80GB SXM", "L40S"]


@pytest.mark.parametrize(("text", "message"), [
    ("H1000", "--gpus: unknown GPU 'H1000'; did you mean 'H100'?"),
    ("H100,,L4", "--gpus: expected comma-separated GPU names, got 'H100,,L4'"),
    ("", "--gpus: expected comma-separated GPU names, got ''"),
])
def test_parse_gpus_errors_exactly(text: str, message: str):
    with pytest.raises(SizeUsageError) as exc:
        parse_gpus(text)
    assert str(exc.value) == message


def test_default_gpus_without_catalog_prices_is_the_documented_list_plus_the_specs(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr("deployc.sizing.space.catalog_prices", dict)
    found, source = default_gpus(resolve_gpu("T4"))
    assert [g.name for g in found] == ["T4", *DEFAULT_GPUS]
    assert source == ("deployc's default list (H100 SXM, A100 80GB SXM, L40S, L4; the catalog lists no prices) "
                      "and the spec's T4")
    found, _ = default_gpus(resolve_gpu("L4"))
    assert [g.name for g in found] == list(DEFAULT_GPUS)


def test_default_gpus_with_catalog_prices_are_the_priced_ones(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr("deployc.sizing.space.catalog_prices", lambda: {"L40S": 1.0, "B200": 2.0})
    found, source = default_gpus(resolve_gpu("L40S"))
    assert [g.name for g in found] == ["B200", "L40S"]
    assert source == "the catalog GPUs with a listed price"


def _spec(path: Path, extra: str = ""):
    path.write_text(MINIMAL_SPEC + extra)
    return load_spec(path).spec


def test_variants_put_the_spec_as_written_first(tmp_path: Path):
    spec = _spec(tmp_path / "s.toml", '[slo]\ngoal = "cost"\n')
    model = resolve_model("meta-llama/Llama-3.1-8B-Instruct", base_dir=tmp_path)
    found = variants(spec, resolve_gpu("H100"), model, INSTALLED)
    assert found[0] == OWN
    # every backend the rules allow, in their order; FP8 first on an FP8 GPU for the cost goal
    order = rank_backends(spec, INSTALLED, "NVIDIA").order
    assert len(order) >= 2
    assert found[1:] == tuple(Variant(backend=b, quantization=q) for q in ("fp8", "none") for b in order)
    on_a100 = variants(spec, resolve_gpu("A100-80GB"), model, INSTALLED)
    assert on_a100[1] == Variant(backend="vllm", quantization="none")


def test_variants_keep_what_the_spec_pins(tmp_path: Path):
    spec = _spec(tmp_path / "s.toml", '[operations]\nbackend = "sglang"\n')
    spec = evolve(spec, model=evolve(spec.model, quantization="fp8"))
    model = resolve_model("meta-llama/Llama-3.1-8B-Instruct", base_dir=tmp_path)
    found = variants(spec, resolve_gpu("L40S"), model, ["vllm", "sglang"])
    assert found == (Variant(backend="sglang", quantization="fp8"),)


def test_same_choice():
    assert same_choice(Variant(backend="vllm", quantization="none"), "vllm", "bf16")
    assert same_choice(Variant(backend="auto", quantization="auto"), "sglang", "fp8")
    assert not same_choice(Variant(backend="vllm", quantization="fp8"), "vllm", "bf16")
    assert not same_choice(Variant(backend="sglang", quantization="fp8"), "vllm", "fp8")


def test_sized_spec_keeps_the_price_and_link_only_for_the_specs_gpu(tmp_path: Path):
    spec = _spec(tmp_path / "s.toml", '[slo]\ngpu_hour_usd = 3.5\n')
    spec = evolve(spec, hardware=evolve(spec.hardware, interconnect="nvlink4", gpu_ids=(0,)))
    h100, l40s = resolve_gpu("H100"), resolve_gpu("L40S")
    same = sized_spec(spec, h100, h100, Size(gpus_per_node=1, nodes=1), Variant(backend="vllm", quantization="fp8"))
    assert (same.hardware.interconnect, same.hardware.gpu_ids, same.slo.gpu_hour_usd) == ("nvlink4", (0,), 3.5)
    assert (same.operations.backend, same.model.quantization) == ("vllm", "fp8")
    other = sized_spec(spec, l40s, h100, Size(gpus_per_node=8, nodes=2), OWN)
    assert (other.hardware.gpu, other.hardware.gpus_per_node, other.hardware.nodes) == ("L40S", 8, 2)
    assert (other.hardware.interconnect, other.hardware.gpu_ids, other.slo.gpu_hour_usd) == ("auto", None, None)
    bigger = sized_spec(spec, h100, h100, Size(gpus_per_node=4, nodes=1), OWN)
    assert (bigger.hardware.gpu_ids, bigger.slo.gpu_hour_usd) == (None, 3.5)


def _deployment(gpu: str, gpus: int, tok_gpu: float, tpot_ms: float, status: str = "serves",
                usd: float | None = None) -> Deployment:
    return Deployment(gpu=gpu, size=Size(gpus_per_node=gpus, nodes=1), variant=OWN, status=status,  # type: ignore[arg-type]
                      summary="", plan=sentinel.plan, backend="vllm", layout=f"TP{gpus}", weights_format="bf16",
                      output_tokens_per_s=tok_gpu * gpus, tpot_p50_ms=tpot_ms, usd_per_hour=usd)


def test_pareto_frontier_drops_dominated_points_and_keeps_the_first_duplicate():
    a = _deployment("H100 SXM", 1, 5000, 40)  # 25 tok/s/user
    b = _deployment("H100 SXM", 2, 3000, 10)  # 100 tok/s/user
    c = _deployment("L40S", 1, 2000, 20)  # 50: beaten by b on both
    d = _deployment("L4", 1, 5000, 40)  # the same point as a
    e = _deployment("L4", 2, 1000, 5, status="misses_slo")  # 200 tok/s/user: on the frontier
    assert pareto_frontier([a, b, c, d, e]) == (a, b, e)


def test_chart_is_fixed_size_deterministic_and_lettered():
    points = [_deployment("H100 SXM", 1, 5000, 40), _deployment("H100 SXM", 2, 3000, 10),
              _deployment("L40S", 1, 2000, 20), _deployment("L4", 2, 1000, 5, status="misses_slo")]
    frontier = pareto_frontier(points)
    lines = frontier_chart(points, frontier)
    assert lines == frontier_chart(points, frontier)
    plot = lines[1:1 + CHART_HEIGHT]
    assert plot[0].startswith("5,000 +") and plot[0].endswith("A")  # the top row holds the most tokens/s per GPU
    assert plot[-1].startswith("    0 +")
    assert lines[1 + CHART_HEIGHT] == "      +" + "-" * CHART_WIDTH
    assert lines[2 + CHART_HEIGHT].endswith(" 200")  # the x axis ends at the most tokens/s per user
    body = "".join(plot)
    assert body.count("A") == body.count("B") == body.count("c") == 1 and body.count("*") == 1
    legend = lines[lines.index("") + 1:]
    assert legend[0] == "  A  1 × H100 SXM, TP1, vllm, bf16: 5,000 tokens/s per GPU, 25.0 tokens/s per user, serves"
    assert legend[2] == "  c  2 × L4, TP2, vllm, bf16: 1,000 tokens/s per GPU, 200.0 tokens/s per user, misses the SLO"
    assert legend[3] == "  * serves, o misses: 1 other simulated deployment below the frontier"


def test_cost_order_prices_first_then_gpu_count():
    cheap = _deployment("L4", 2, 500, 30, usd=1.6)
    dear = _deployment("H100 SXM", 1, 5000, 20, usd=3.99)
    unpriced_small = _deployment("L40S", 1, 2000, 20)
    unpriced_big = _deployment("A100 80GB SXM", 2, 3000, 20)
    ordered = sorted([unpriced_big, dear, unpriced_small, cheap], key=cost_key)
    assert ordered == [cheap, dear, unpriced_small, unpriced_big]


def test_resized_document_drops_the_old_gpus_link_price_and_devices(tmp_path: Path):
    path = tmp_path / "s.toml"
    path.write_text(MINIMAL_SPEC.replace('gpu = "H100 SXM"', 'gpu = "H100 SXM"\ninterconnect = "nvlink4"\n'
                                         'gpu_ids = [0]') + '[slo]\ngpu_hour_usd = 3.5\n')
    loaded = load_spec(path)
    chosen = evolve(_deployment("L40S", 4, 1000, 20), variant=Variant(backend="vllm", quantization="fp8"), plan=None)
    raw = resized_document(loaded.document, loaded.spec, "H100 SXM", chosen)
    assert raw["hardware"] == {"gpu": "L40S", "gpus_per_node": 4, "nodes": 1}
    assert raw["slo"] == {}
    assert raw["model"]["quantization"] == "fp8" and "plan" not in raw  # no plan: nothing to pin
    assert loaded.document.raw["hardware"]["gpu"] == "H100 SXM"  # the loaded document is not changed
    same = resized_document(loaded.document, loaded.spec, "H100 SXM",
                            evolve(_deployment("H100 SXM", 1, 1000, 20), plan=None))
    assert same["hardware"] == {"gpu": "H100 SXM", "interconnect": "nvlink4", "gpu_ids": [0], "gpus_per_node": 1,
                                "nodes": 1}
    assert same["slo"] == {"gpu_hour_usd": 3.5} and "operations" not in same


def test_the_written_header_cannot_start_a_toml_line(tmp_path: Path):
    from deployc.sizing.write import resized_text

    path = tmp_path / "s.toml"
    path.write_text(MINIMAL_SPEC)
    loaded = load_spec(path, display_name="evil\n[plan]\ntp = 8\u2028.toml")
    text = resized_text(loaded.document, loaded.spec, "H100 SXM", evolve(_deployment("H100 SXM", 1, 1000, 20),
                                                                          plan=None))
    assert text.splitlines()[0] == ("# Written by `deployc size evil?[plan]?tp = 8?.toml`: 1 × H100 SXM, TP1, vllm, "
                                    "bf16, the cheapest deployment")
    assert "[plan]" not in text.split("\n", 3)[3]
