"""The size report: latency columns at the SLO's percentiles; each GPU type that does not serve, its closest miss."""

from __future__ import annotations

from unittest.mock import sentinel

from deployc.catalog import GPU, resolve_gpu
from deployc.sizing.deployment import Deployment
from deployc.sizing.report import closest_per_gpu, latency_columns, table_lines
from deployc.sizing.search import SizeSearch
from deployc.sizing.space import Size, Variant
from deployc.spec.model import Percentiles, SloSection

OWN = Variant(backend="auto", quantization="auto")


def _served(checks: tuple[tuple[str, str, float, float], ...]) -> Deployment:
    return Deployment(gpu="T4", size=Size(gpus_per_node=1, nodes=1), variant=OWN, status="serves", summary="",
                      plan=sentinel.plan, backend="vllm", layout="TP1", weights_format="awq",
                      kv_cache_dtype="float16", output_tokens_per_s=167.0, ttft_p99_ms=695.0, itl_p99_ms=427.4,
                      tpot_p50_ms=44.2, slo_checks=checks)


def test_columns_follow_the_targets_in_metric_then_percentile_order():
    slo = SloSection(ttft_ms=Percentiles(p99=800), itl_ms=Percentiles(p50=40, p90=60), tpot_ms=Percentiles(p99=80))
    assert latency_columns(slo) == ("TTFT p99", "ITL p50", "ITL p90", "TPOT p99")


def test_without_targets_the_table_shows_ttft_and_itl_p99():
    assert latency_columns(SloSection()) == ("TTFT p99", "ITL p99")


def test_a_p50_target_shows_the_simulated_p50_not_the_p99():
    # ITL p99 427.4 ms beside a 40 ms p50 target read as a miss of a deployment that serves.
    row = _served((("TTFT", "p99", 800.0, 695.0), ("ITL", "p50", 40.0, 23.4), ("TPOT", "p99", 80.0, 71.0)))
    slo = SloSection(ttft_ms=Percentiles(p99=800), itl_ms=Percentiles(p50=40), tpot_ms=Percentiles(p99=80))
    header, line = table_lines([row], latency_columns(slo))
    assert header.split()[-6:] == ["TTFT", "p99", "ITL", "p50", "TPOT", "p99"]
    assert line.split()[-6:] == ["695", "ms", "23.4", "ms", "71.0", "ms"]
    assert "427.4" not in line


def _at(gpu: str, gpus: int, status: str, miss: float | None, simulated: bool = True) -> Deployment:
    return Deployment(gpu=gpu, size=Size(gpus_per_node=gpus, nodes=1), variant=OWN, status=status,  # type: ignore[arg-type]
                      summary=f"{status} at {gpus}", plan=sentinel.plan if simulated else None, miss_ratio=miss)


def test_each_gpu_type_that_does_not_serve_gets_its_closest_miss():
    h100, l4, t4 = (_gpu(name) for name in ("H100", "L4", "T4"))
    winner = _at("H100 SXM", 1, "serves", None)
    l4_far, l4_near = _at("L4", 2, "misses_slo", 8.0), _at("L4", 4, "misses_slo", 1.9)
    t4_none = [_at("T4", 1, "does_not_fit", None, simulated=False), _at("T4", 4, "does_not_fit", None, simulated=False)]
    search = SizeSearch(gpus=(h100, l4, t4), sizes=(), evaluated=(winner, l4_far, l4_near, *t4_none),
                        winners=(winner,))
    assert closest_per_gpu(search) == {"L4": l4_near, "T4": t4_none[1]}


def _gpu(name: str) -> GPU:
    return resolve_gpu(name)
