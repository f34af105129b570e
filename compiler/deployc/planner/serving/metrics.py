"""Latency percentiles and throughput from a simulated trace, as a benchmark client would measure them.

Definitions follow ``vllm bench serve`` (``benchmarks/serve.py calculate_metrics``): TTFT from send
to the first token; ITL per gap between two tokens of a request (every token streamed); TPOT per
request, (end-to-end − TTFT) / (output tokens − 1); percentiles interpolated linearly between
order statistics, as NumPy's default.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from deployc.contract.deployment import Latency  # one latency type: the planner's result is the Deployment's

EMPTY = Latency(p50=0.0, p90=0.0, p95=0.0, p99=0.0, mean=0.0)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) of sorted values, linearly interpolated (NumPy's default)."""
    if not sorted_values:
        return 0.0
    position = (len(sorted_values) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def summarise_ms(values_s: Sequence[float]) -> Latency:
    """p50/p90/p95/p99/mean in ms of values in seconds."""
    if not values_s:
        return EMPTY
    ordered = sorted(values_s)
    return Latency(p50=percentile(ordered, 50) * 1e3, p90=percentile(ordered, 90) * 1e3,
                   p95=percentile(ordered, 95) * 1e3, p99=percentile(ordered, 99) * 1e3,
                   mean=sum(ordered) / len(ordered) * 1e3)


def weighted_ms(samples: Sequence[tuple[float, int]]) -> Latency:
    """Percentiles of values given as (value in s, count) pairs sorted by value (lower order statistic)."""
    total = sum(count for _, count in samples)
    if total == 0:
        return EMPTY
    mean = sum(value * count for value, count in samples) / total

    def at(q: float) -> float:
        rank = (total - 1) * q / 100
        seen = 0
        for value, count in samples:
            seen += count
            if seen > rank:
                return value
        return samples[-1][0]

    return Latency(p50=at(50) * 1e3, p90=at(90) * 1e3, p95=at(95) * 1e3, p99=at(99) * 1e3, mean=mean * 1e3)
