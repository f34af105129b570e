"""``monitoring.md`` and ``prometheus-rules.yaml`` for vLLM (rendered by :mod:`deployc.contract.toolkit.monitoring`).

Metric names are those vLLM 0.33.0 registers (``vllm/v1/metrics/``); counters gain ``_total``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deployc.contract import Server
from deployc.contract.toolkit import monitoring
from deployc.contract.toolkit.monitoring import EngineMetrics
from deployc_vllm import ENGINE, ENGINE_VERSION

if TYPE_CHECKING:
    from deployc.contract import Deployment

HIT_RATE = ("sum(rate(vllm:prefix_cache_hits_total[10m])) by (model_name) / "
            "sum(rate(vllm:prefix_cache_queries_total[10m])) by (model_name)")
METRICS = EngineMetrics(
    engine=f"{ENGINE} {ENGINE_VERSION}", alert_prefix="Vllm", metrics_path="/metrics",
    kv_usage="vllm:kv_cache_usage_perc", evictions="vllm:num_preemptions_total", evictions_label="preemptions",
    evictions_text="requests evicted and recomputed from scratch (vLLM V1 does not swap to CPU): latency spikes "
                   "without errors",
    queue="vllm:num_requests_waiting", hit_rate=HIT_RATE, ttft_histogram="vllm:time_to_first_token_seconds",
    itl_histogram="vllm:inter_token_latency_seconds")
expected_hit_rate = monitoring.expected_hit_rate


def prometheus_rules(deployment: Deployment) -> str:
    """A Prometheus rule file with vLLM's alerts (load it with ``rule_files``)."""
    return monitoring.prometheus_rules(deployment, METRICS, deployment.image.reference)


def monitoring_markdown(deployment: Deployment, servers: tuple[Server, ...]) -> str:
    """``monitoring.md``: the metrics, the queries, and what each one means for this plan."""
    return monitoring.monitoring_markdown(deployment, METRICS, [(s.name, s.port) for s in servers])
