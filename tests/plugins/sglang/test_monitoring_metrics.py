"""SGLang's monitoring files use metric names SGLang 0.5.23 registers (read from the installed engine's source)."""

from __future__ import annotations

import re

from deployc_sglang.manifests import METRICS
from tests.engine_parsers import engine_python, require_or_skip


def _registered() -> set[str]:
    python = engine_python("sglang")
    assert python is not None
    source = next(python.parent.parent.glob("lib/python3*/site-packages/sglang/srt/observability/"
                                            "metrics_collector.py"))
    return set(re.findall(r'name="(sglang:[a-z_]+)"', source.read_text()))


def test_every_queried_metric_is_registered_by_sglang() -> None:
    require_or_skip("sglang")
    registered = _registered()
    assert len(registered) > 50  # the pattern found the collector's metrics
    queried = [METRICS.kv_usage, METRICS.evictions, METRICS.queue, METRICS.ttft_histogram, METRICS.itl_histogram]
    queried += re.findall(r"sglang:[a-z_]+", METRICS.hit_rate or "")
    assert [m for m in queried if m not in registered] == []
    assert "sglang:num_preemptions_total" not in registered  # vLLM's name would match nothing here
