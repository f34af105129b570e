"""TensorRT-LLM's Prometheus metrics for ``monitoring.md`` and ``prometheus-rules.yaml``.

``trtllm-serve`` serves Prometheus text on ``/prometheus/metrics`` (``/metrics`` is JSON
iteration stats), with the ``trtllm_`` prefix and a ``model_name`` label
(``tensorrt_llm/metrics/collector.py`` ``MetricsCollector``; ``tensorrt_llm/serve/openai_server.py``).
Per-request histograms need ``return_perf_metrics`` and the KV-cache gauges iteration stats
(``enable_iter_perf_stats``), both set in the options YAML.  It has no preemption counter.
"""

from __future__ import annotations

from deployc.contract.toolkit.monitoring import EngineMetrics
from deployc_trtllm import ENGINE, ENGINE_VERSION

# Metric names MetricsCollector registers (tensorrt_llm/metrics/collector.py, code-index revision 050f80de, whose
# docstring lists them; the queries below use only these, and only ones the 1.1 collector already had).
COLLECTOR_METRICS = frozenset({
    "trtllm_request_success_total", "trtllm_e2e_request_latency_seconds", "trtllm_time_to_first_token_seconds",
    "trtllm_time_per_output_token_seconds", "trtllm_request_queue_time_seconds", "trtllm_prompt_tokens_total",
    "trtllm_generation_tokens_total", "trtllm_kv_cache_hit_rate", "trtllm_kv_cache_utilization",
    "trtllm_num_requests_running", "trtllm_num_requests_waiting",
})
METRICS = EngineMetrics(
    engine=f"{ENGINE} {ENGINE_VERSION}", alert_prefix="Trtllm", metrics_path="/prometheus/metrics",
    kv_usage="trtllm_kv_cache_utilization", evictions=None, evictions_label="queueing",
    evictions_text="", queue="trtllm_num_requests_waiting",
    hit_rate="max(trtllm_kv_cache_hit_rate) by (model_name)",
    ttft_histogram="trtllm_time_to_first_token_seconds", itl_histogram="trtllm_time_per_output_token_seconds",
    notes=("The options YAML turns on what these come from (`return_perf_metrics`, `enable_iter_perf_stats`). "
           "TensorRT-LLM reports time per output token, not inter-token latency: the ITL rows use it.",))
