"""A p90 target is checked at p90 everywhere: the verdict, bench.sh's check and the Prometheus alerts."""

from __future__ import annotations

from pathlib import Path

from deployc import api
from deployc.contract.toolkit.bench import bench_words, slo_targets
from deployc.contract.toolkit.monitoring import EngineMetrics, alerts
from tests.contract_helpers import deploy

SPEC = """version = 1
name = "p90-targets"
[model]
id = "meta-llama/Llama-3.1-8B-Instruct"
[hardware]
gpu = "H100 SXM"
[workload]
prompt_tokens = { mean = 1000, p99 = 4000 }
output_tokens = { mean = 300 }
concurrency = 32
[slo]
ttft_ms = { p90 = 100000, p99 = 200000 }
tpot_ms = { p50 = 1000 }
itl_ms = { p90 = 0.5 }
"""

METRICS = EngineMetrics(engine="test", alert_prefix="T", metrics_path="/metrics", kv_usage="kv", evictions=None,
                        evictions_text="", evictions_label="preemptions", queue="queue", hit_rate=None,
                        ttft_histogram="ttft_seconds", itl_histogram="itl_seconds")


def _plan(tmp_path: Path):  # type: ignore[no-untyped-def]
    path = tmp_path / "spec.toml"
    path.write_text(SPEC)
    plan, _ = api.plan(path)
    return plan


def test_the_verdict_checks_p90_targets_at_the_simulated_p90(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    verdict, serving = plan.primary.verdict, plan.primary.serving
    assert verdict is not None and serving is not None
    named = {(c.metric, c.percentile): (c.target_ms, c.simulated_ms) for c in verdict.checks}
    assert named == {("TTFT", "p90"): (100000.0, serving.ttft_ms.p90), ("TTFT", "p99"): (200000.0, serving.ttft_ms.p99),
                     ("TPOT", "p50"): (1000.0, serving.tpot_ms.p50), ("ITL", "p90"): (0.5, serving.itl_ms.p90)}
    # no engine streams tokens 0.5 ms apart: the ITL p90 target is the one missed
    assert verdict.status == "misses_slo"
    assert [(c.metric, c.percentile) for c in verdict.misses()] == [("ITL", "p90")]


def test_bench_checks_every_target_the_spec_names(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    assert slo_targets(deploy(plan)) == [("P90 TTFT (ms):", 100000.0), ("P99 TTFT (ms):", 200000.0),
                                 ("P50 TPOT (ms):", 1000.0), ("P90 ITL (ms):", 0.5)]
    words = [w for line in bench_words(deploy(plan), deploy(plan).primary, 1) for w in line]
    assert words[words.index("--metric-percentiles") + 1] == "50,90,99"


def test_alerts_fire_at_the_percentile_of_the_target(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    slo_alerts = {a["alert"]: a["expr"] for a in alerts(deploy(plan), METRICS) if a["alert"].endswith("AboveSlo")}
    assert slo_alerts == {
        "TTtftP90AboveSlo": "histogram_quantile(0.9, sum(rate(ttft_seconds_bucket[5m])) by (le, model_name)) > 100",
        "TTtftP99AboveSlo": "histogram_quantile(0.99, sum(rate(ttft_seconds_bucket[5m])) by (le, model_name)) > 200",
        "TItlP90AboveSlo": "histogram_quantile(0.9, sum(rate(itl_seconds_bucket[5m])) by (le, model_name)) > 0.0005",
    }
