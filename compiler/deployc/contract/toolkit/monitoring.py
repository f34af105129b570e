"""``monitoring.md`` and ``prometheus-rules.yaml`` for any engine, from the engine's own metric names.

The signals the articles name (seed 003): evictions together with KV-cache usage (the eviction
cascade of mixed traffic), the prefix-cache hit rate (whether a prefix is really shared), the
queue, latency against the SLO, and GPU thermal throttling (edge deployments).  A backend fills
:class:`EngineMetrics` with the metric names its pinned engine registers (and cites where).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import yaml
from attrs import frozen

from deployc.contract.toolkit.rocm import host_monitoring_markdown

if TYPE_CHECKING:
    from deployc.contract.deployment import Deployment


@frozen(kw_only=True)
class EngineMetrics:
    """One engine's Prometheus metric names and how to read them (PromQL with a ``model_name`` label)."""

    engine: str  # "vLLM 0.33.0"
    alert_prefix: str  # "Vllm"
    metrics_path: str  # "/metrics"
    kv_usage: str  # a 0-1 gauge of KV blocks in use
    evictions: str | None  # a counter of requests evicted for KV space (its rate is taken)
    evictions_text: str
    evictions_label: str  # the engine's word for it: "preemptions", "retractions"
    queue: str  # a gauge of waiting requests
    hit_rate: str | None  # PromQL of the prefix-cache hit rate (0-1), or None when the engine has none
    ttft_histogram: str  # histogram base name (``_bucket`` is appended)
    itl_histogram: str
    notes: tuple[str, ...] = ()  # engine-specific lines for monitoring.md (e.g. a flag that turns metrics on)


def quantile(q: float, metric: str) -> str:
    """PromQL of a histogram's q-quantile (0.99 for p99) per model."""
    return f"histogram_quantile({q:g}, sum(rate({metric}_bucket[5m])) by (le, model_name))"


def p99(metric: str) -> str:
    """PromQL of a histogram's p99 per model."""
    return quantile(0.99, metric)


def expected_hit_rate(deployment: Deployment) -> float:
    """Prompt tokens a prefix cache should serve: the shared prefix over the mean prompt."""
    workload = deployment.workload
    return min(workload.shared_prefix_tokens / workload.prompt_tokens.mean, 1.0)


def alerts(deployment: Deployment, m: EngineMetrics) -> list[dict[str, Any]]:
    """The alert rules of a deployment for an engine."""
    slo = deployment.slo
    out: list[dict[str, Any]] = []
    if m.evictions is not None:
        out.append({"alert": f"{m.alert_prefix}PreemptionsAtFullCache",
                    "expr": f"sum(rate({m.evictions}[5m])) by (model_name) > 0 and on (model_name) "
                            f"max({m.kv_usage}) by (model_name) > 0.9",
                    "for": "5m", "labels": {"severity": "warning"},
                    "annotations": {"summary": "requests are preempted while the KV cache is full: an eviction "
                                               "cascade, not just load (route long requests to their own pool, or "
                                               "add KV capacity)"}})
    out += [
        {"alert": f"{m.alert_prefix}RequestsQueued", "expr": f"max({m.queue}) by (model_name) > 0", "for": "10m",
         "labels": {"severity": "info"},
         "annotations": {"summary": "requests wait for a batch slot or KV blocks: the server is at capacity"}},
        {"alert": "GpuThermalThrottle", "expr": "rate(DCGM_FI_DEV_THERMAL_VIOLATION[5m]) > 0", "for": "5m",
         "labels": {"severity": "warning"},
         "annotations": {"summary": "the GPU is slowed down by temperature (enable DCGM_FI_DEV_THERMAL_VIOLATION in "
                                    "dcgm-exporter's counters); cap the power limit or improve cooling"}},
    ]
    if deployment.gpu.is_amd:  # DCGM is NVIDIA's; AMD hosts are watched with amd-smi (monitoring.md)
        out = [a for a in out if a["alert"] != "GpuThermalThrottle"]
    hit = expected_hit_rate(deployment)
    if m.hit_rate is not None and any(p.knobs.prefix_caching for p in deployment.pools) and hit > 0:
        out.append({"alert": f"{m.alert_prefix}PrefixCacheHitRateLow", "expr": f"{m.hit_rate} < {hit / 2:.3f}",
                    "for": "30m", "labels": {"severity": "info"},
                    "annotations": {"summary": f"prefix cache hit rate below half of the {hit:.0%} the spec's "
                                               "shared prefix implies: the prefix is not really shared"}})
    # The engines' per-output-token histogram observes every token interval: its p99 is the ITL p99 and bounds
    # the TPOT p99 (a request's mean interval) from above, so a TPOT target alerts on it too.
    targets = ((slo.ttft_ms, m.ttft_histogram, "Ttft"), (slo.itl_ms, m.itl_histogram, "Itl"),
               (slo.tpot_ms, m.itl_histogram, "Tpot"))
    for target, metric, name in targets:
        for pct, target_ms in target.given() if target is not None else ():
            if pct == "p50":  # a median target is checked by bench.sh; an alert on it would fire on every blip
                continue
            out.append({"alert": f"{m.alert_prefix}{name}{pct.upper()}AboveSlo",
                        "expr": f"{quantile(int(pct[1:]) / 100, metric)} > {target_ms / 1000:g}",
                        "for": "10m", "labels": {"severity": "warning"},
                        "annotations": {"summary": f"{pct} {name.upper()} above the SLO of {target_ms:g} ms"}})
    return out


def prometheus_rules(deployment: Deployment, m: EngineMetrics, image: str) -> str:
    """A Prometheus rule file with the alerts (load it with ``rule_files``)."""
    doc = {"groups": [{"name": f"deployc-{deployment.name}", "rules": alerts(deployment, m)}]}
    header = (f"# prometheus-rules.yaml: alerts for deployment {deployment.name!r} (deployc "
              f"{deployment.deployc_version}, {m.engine}, image {image}).\n")
    return header + yaml.safe_dump(doc, sort_keys=False, width=1000, allow_unicode=True)


def monitoring_markdown(deployment: Deployment, m: EngineMetrics, endpoints: Sequence[tuple[str, int]]) -> str:
    """``monitoring.md``: the metrics, the queries, and what each one means for this deployment.

    On several nodes, each endpoint names the node its server listens on (its first node), as the
    load-balancer note does: a port alone does not say which host to scrape.
    """
    node_of = {s.name: s.nodes[0] for s in deployment.servers} if deployment.hardware.nodes > 1 else {}
    where = ", ".join(f"`{name}` {f'node-{node_of[name]}' if name in node_of else ''}:{port}{m.metrics_path}"
                      for name, port in endpoints)
    hit = expected_hit_rate(deployment)
    lines = [
        f"# Monitoring {deployment.name}", "",
        f"{m.engine} exposes Prometheus metrics on each server's API port: {where}. "
        "`prometheus-rules.yaml` holds the alerts below.", *(["", *m.notes] if m.notes else []), "",
        "| watch | query | what it means |", "|---|---|---|",
        f"| KV-cache usage | `{m.kv_usage}` | fraction of KV blocks in use (0-1). Near 1 with rising "
        f"{m.evictions_label} is the eviction cascade of mixed traffic (seed 003) |",
    ]
    if m.evictions is not None:
        lines.append(f"| {m.evictions_label} | `rate({m.evictions}[5m])` | {m.evictions_text} |")
    if m.hit_rate is not None:
        lines.append(f"| prefix-cache hit rate | `{m.hit_rate}` | share of prompt tokens served from cache; the "
                     f"spec's shared prefix implies about {hit:.0%} |")
    lines += [
        f"| queue | `{m.queue}` | requests waiting for a batch slot or KV blocks |",
        f"| TTFT p99 | `{p99(m.ttft_histogram)}` | compare with the SLO |",
        f"| ITL p99 | `{p99(m.itl_histogram)}` | compare with the SLO |",
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
    if deployment.gpu.is_amd:  # no DCGM and no nvidia-smi on Instinct hosts: amd-smi/rocm-smi instead
        lines = lines[:lines.index("Without Prometheus, on the host:")]  # keeps the blank line after the table
        lines = [line for line in lines if not line.startswith("| GPU thermal throttling")]
        lines += host_monitoring_markdown(deployment.gpu.tdp_w)
    hw = deployment.hardware
    if hw.cooling == "passive" or hw.ambient_c >= 30:
        lines += ["", f"This site is {hw.cooling}-cooled at {hw.ambient_c:g} °C ambient: watch the thermal columns "
                      "during the busiest hour first."]
    return "\n".join(lines) + "\n"
