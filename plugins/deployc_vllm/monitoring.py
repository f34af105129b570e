"""``monitoring.md`` and ``prometheus-rules.yaml``: what to watch once the servers run.

The signals the articles name (seed 003): preemptions together with KV-cache usage (the
eviction cascade of mixed traffic), the prefix-cache hit rate (whether a prefix is really
shared), latency against the SLO, and GPU thermal throttling (edge deployments).  Metric
names are those vLLM 0.33.0 registers (``vllm/v1/metrics/``); counters gain ``_total``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import yaml

from deployc.emitters.rocm import host_monitoring_markdown
from deployc_vllm import ENGINE, ENGINE_VERSION
from deployc_vllm.container import image_ref
from deployc_vllm.placement import Server

if TYPE_CHECKING:
    from deployc.planner.plan import Plan

HIT_RATE = ("sum(rate(vllm:prefix_cache_hits_total[10m])) by (model_name) / "
            "sum(rate(vllm:prefix_cache_queries_total[10m])) by (model_name)")


def _p99(metric: str) -> str:
    return f"histogram_quantile(0.99, sum(rate({metric}_bucket[5m])) by (le, model_name))"


def expected_hit_rate(plan: Plan) -> float:
    """Prompt tokens a prefix cache should serve: the shared prefix over the mean prompt."""
    workload = plan.target.spec.workload
    return min(workload.shared_prefix_tokens / workload.prompt_tokens.mean, 1.0)


def _alerts(plan: Plan) -> list[dict[str, Any]]:
    slo = plan.target.spec.slo
    alerts: list[dict[str, Any]] = [
        {"alert": "VllmPreemptionsAtFullCache",
         "expr": "sum(rate(vllm:num_preemptions_total[5m])) by (model_name) > 0 and on (model_name) "
                 "max(vllm:kv_cache_usage_perc) by (model_name) > 0.9",
         "for": "5m", "labels": {"severity": "warning"},
         "annotations": {"summary": "requests are preempted while the KV cache is full: an eviction cascade, not "
                                    "just load (route long requests to their own pool, or add KV capacity)"}},
        {"alert": "VllmRequestsQueued", "expr": "max(vllm:num_requests_waiting) by (model_name) > 0", "for": "10m",
         "labels": {"severity": "info"},
         "annotations": {"summary": "requests wait for a batch slot or KV blocks: the server is at capacity"}},
        {"alert": "GpuThermalThrottle", "expr": "rate(DCGM_FI_DEV_THERMAL_VIOLATION[5m]) > 0", "for": "5m",
         "labels": {"severity": "warning"},
         "annotations": {"summary": "the GPU is slowed down by temperature (enable DCGM_FI_DEV_THERMAL_VIOLATION in "
                                    "dcgm-exporter's counters); cap the power limit or improve cooling"}},
    ]
    if plan.target.gpu.is_amd:  # DCGM is NVIDIA's; AMD hosts are watched with amd-smi (monitoring.md)
        alerts = [a for a in alerts if a["alert"] != "GpuThermalThrottle"]
    hit = expected_hit_rate(plan)
    if any(p.knobs.prefix_caching for p in plan.pools) and hit > 0:
        alerts.append({"alert": "VllmPrefixCacheHitRateLow", "expr": f"{HIT_RATE} < {hit / 2:.3f}",
                       "for": "30m", "labels": {"severity": "info"},
                       "annotations": {"summary": f"prefix cache hit rate below half of the {hit:.0%} the spec's "
                                                  "shared prefix implies: the prefix is not really shared"}})
    for target, metric, name in ((slo.ttft_ms, "vllm:time_to_first_token_seconds", "Ttft"),
                                 (slo.itl_ms, "vllm:inter_token_latency_seconds", "Itl")):
        if target is not None and target.p99 is not None:
            alerts.append({"alert": f"Vllm{name}P99AboveSlo", "expr": f"{_p99(metric)} > {target.p99 / 1000:g}",
                           "for": "10m", "labels": {"severity": "warning"},
                           "annotations": {"summary": f"p99 {name.upper()} above the SLO of {target.p99:g} ms"}})
    return alerts


def prometheus_rules(plan: Plan) -> str:
    """A Prometheus rule file with the alerts above (load it with ``rule_files``)."""
    doc = {"groups": [{"name": f"deployc-{plan.target.spec.name}", "rules": _alerts(plan)}]}
    header = (f"# prometheus-rules.yaml: alerts for deployment {plan.target.spec.name!r} (deployc "
              f"{plan.deployc_version}, {ENGINE} {ENGINE_VERSION}, image {image_ref(plan)}).\n")
    return header + yaml.safe_dump(doc, sort_keys=False, width=1000, allow_unicode=True)


def monitoring_markdown(plan: Plan, servers: tuple[Server, ...]) -> str:
    """``monitoring.md``: the metrics, the queries, and what each one means for this plan."""
    spec = plan.target.spec
    endpoints = ", ".join(f"`{s.name}` :{s.port}/metrics" for s in servers)
    hit = expected_hit_rate(plan)
    lines = [
        f"# Monitoring {spec.name}", "",
        f"{ENGINE} {ENGINE_VERSION} exposes Prometheus metrics on each server's API port: {endpoints}. "
        "`prometheus-rules.yaml` holds the alerts below.", "",
        "| watch | query | what it means |", "|---|---|---|",
        "| KV-cache usage | `vllm:kv_cache_usage_perc` | fraction of KV blocks in use (0-1). Near 1 with rising "
        "preemptions is the eviction cascade of mixed traffic (seed 003) |",
        "| preemptions | `rate(vllm:num_preemptions_total[5m])` | requests evicted and recomputed from scratch "
        "(vLLM V1 does not swap to CPU): latency spikes without errors |",
        f"| prefix-cache hit rate | `{HIT_RATE}` | share of prompt tokens served from cache; the spec's shared "
        f"prefix implies about {hit:.0%} |",
        "| queue | `vllm:num_requests_waiting` | requests waiting for a batch slot or KV blocks |",
        f"| TTFT p99 | `{_p99('vllm:time_to_first_token_seconds')}` | compare with the SLO |",
        f"| ITL p99 | `{_p99('vllm:inter_token_latency_seconds')}` | compare with the SLO |",
        "| GPU thermal throttling | `rate(DCGM_FI_DEV_THERMAL_VIOLATION[5m])` (dcgm-exporter) | time the GPU "
        "ran slowed by temperature |", "",
        "Without Prometheus, on the host:", "", "```",
        "nvidia-smi --query-gpu=index,temperature.gpu,clocks.sm,power.draw,power.limit,"
        "clocks_event_reasons.sw_thermal_slowdown,clocks_event_reasons.hw_thermal_slowdown --format=csv -l 5",
        "```", "",
        "`Active` in the thermal-slowdown columns means the clocks are cut (reason 0x20 software, 0x40 hardware). "
        "Throttling persists until the GPU cools below its release temperature, so throughput stays low after the "
        "load drops; `nvidia-smi -pl <watts>` caps the power and keeps it below the threshold at a small peak cost.",
    ]
    if plan.target.gpu.is_amd:
        lines = lines[:lines.index("Without Prometheus, on the host:")]
        lines = [line for line in lines if not line.startswith("| GPU thermal throttling")]
        lines += ["", *host_monitoring_markdown(plan.target.gpu.tdp_w)]
    env = spec.environment
    if env.cooling == "passive" or env.ambient_c >= 30:
        lines += ["", f"This site is {env.cooling}-cooled at {env.ambient_c:g} °C ambient: watch the thermal columns "
                      "during the busiest hour first."]
    return "\n".join(lines) + "\n"
