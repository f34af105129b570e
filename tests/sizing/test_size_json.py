"""``deployc size --format json`` deployments go through the one serialisation path (deployc.serialise)."""

from __future__ import annotations

import json

import attrs

from deployc.serialise import to_data
from deployc.sizing.deployment import Deployment, unplanned
from deployc.sizing.space import Size, Variant

KEYS = ["gpu", "gpus", "gpus_per_node", "nodes", "status", "summary", "spec_backend", "spec_quantization", "backend",
        "layout", "weights_format", "kv_cache_dtype", "usd_per_hour", "usd_per_million_output_tokens", "price_source",
        "output_tokens_per_s", "output_tokens_per_s_per_gpu", "output_tokens_per_s_per_user", "ttft_p99_ms",
        "itl_p99_ms", "miss_ratio", "screened", "slo_checks"]


def test_a_sized_deployment_has_the_documented_keys_and_rounding() -> None:
    base = unplanned("L4", Size(gpus_per_node=2, nodes=1), Variant(backend="auto", quantization="auto"),
                     "does_not_fit", "needs 3.2 GiB more per GPU")
    data = to_data(base)
    assert list(data) == KEYS
    assert (data["gpus"], data["status"], data["usd_per_hour"], data["screened"]) == (2, "does_not_fit", None, False)
    served = attrs.evolve(base, status="serves", usd_per_hour=1.23456, output_tokens_per_s=1000.06, tpot_p50_ms=12.5,
                          ttft_p99_ms=201.26, itl_p99_ms=13.456, miss_ratio=0.12345)
    data = to_data(served)
    assert (data["usd_per_hour"], data["output_tokens_per_s"], data["output_tokens_per_s_per_gpu"]) == (
        1.23, 1000.1, 500.0)
    assert (data["output_tokens_per_s_per_user"], data["ttft_p99_ms"], data["itl_p99_ms"], data["miss_ratio"]) == (
        80.0, 201.3, 13.46, 0.123)
    assert data["usd_per_million_output_tokens"] == round(1.23456 / (1000.06 * 3600) * 1e6, 3)
    checked = to_data(attrs.evolve(served, slo_checks=(("itl", "p99", 60.0, 61.234),)))["slo_checks"]
    assert checked == [{"metric": "itl", "percentile": "p99", "target_ms": 60.0, "simulated_ms": 61.23}]
    assert to_data(Size(gpus_per_node=8, nodes=2)) == {"gpus_per_node": 8, "nodes": 2, "gpus": 16}


def test_sizing_has_no_serialiser_of_its_own() -> None:
    assert not hasattr(Deployment, "to_json")


def test_a_deployment_that_refuses_requests_has_a_null_miss_ratio_in_valid_json() -> None:
    # Its miss ratio is infinite (no latency makes up for refused requests); JSON has no infinity.
    refusing = attrs.evolve(unplanned("L4", Size(gpus_per_node=1, nodes=1), Variant(backend="auto",
                                                                                     quantization="auto"),
                                      "misses_slo", "the engine refuses 824 of 2,000 simulated requests"),
                            miss_ratio=float("inf"))
    data = to_data(refusing)
    assert data["miss_ratio"] is None
    json.dumps(data, allow_nan=False)
