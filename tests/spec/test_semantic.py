"""Cross-key rules that need no catalog."""

from __future__ import annotations

from deployc.spec.loader import read_document
from deployc.spec.semantic import semantic_diagnostics
from deployc.spec.structure import structure_spec
from tests.conftest import MINIMAL_SPEC


def _check(path):  # type: ignore[no-untyped-def]
    doc = read_document(path, "spec.toml")
    return [d.format_text() for d in semantic_diagnostics(doc, structure_spec(doc.raw))]


def test_minimal_spec_passes(write_spec):  # type: ignore[no-untyped-def]
    assert _check(write_spec(MINIMAL_SPEC)) == []


def test_both_concurrency_and_rate(write_spec):  # type: ignore[no-untyped-def]
    path = write_spec(MINIMAL_SPEC.replace("concurrency = 16", "concurrency = 16\nrequest_rate_per_s = 3.0"))
    assert _check(path) == [
        "spec.toml:10: error: workload: both of concurrency and request_rate_per_s given [DPC204]\n"
        "  hint: give exactly one: `concurrency = 64` or `request_rate_per_s = 10`",
    ]


def test_p99_below_mean(write_spec):  # type: ignore[no-untyped-def]
    path = write_spec(MINIMAL_SPEC.replace("{ mean = 1000, p99 = 4000 }", "{ mean = 1000, p99 = 400 }"))
    assert _check(path) == [
        "spec.toml:11: error: workload.prompt_tokens.p99: p99 400 is below the mean 1000 [DPC205]\n"
        "  hint: p99 is a tail length: at least the mean",
    ]


def test_class_shares_must_sum_to_one(write_spec):  # type: ignore[no-untyped-def]
    classes = (
        '\n[[workload.classes]]\nname = "short"\nshare = 0.5\nprompt_tokens = { mean = 100 }\n'
        'output_tokens = { mean = 10 }\n'
        '\n[[workload.classes]]\nname = "short"\nshare = 0.3\nprompt_tokens = { mean = 100 }\n'
        'output_tokens = { mean = 10 }\n'
    )
    assert _check(write_spec(MINIMAL_SPEC + classes)) == [
        "spec.toml:15: error: workload.classes: class shares sum to 0.8, not 1 [DPC208]\n"
        "  hint: make the shares of [[workload.classes]] add up to 1",
        "spec.toml:22: error: workload.classes[1].name: duplicate class name 'short' [DPC208]\n"
        "  hint: give each class its own name",
    ]


def test_nodes_without_network(write_spec):  # type: ignore[no-untyped-def]
    path = write_spec(MINIMAL_SPEC.replace('gpu = "H100 SXM"', 'gpu = "H100 SXM"\nnodes = 2'))
    assert _check(path) == [
        # network is not written: the line of its table
        'spec.toml:7: error: hardware.network: 2 nodes but network = "none" [DPC206]\n'
        '  hint: set the network between nodes, e.g. network = "ib-ndr"',
    ]


def test_latency_percentiles_must_not_fall(write_spec):  # type: ignore[no-untyped-def]
    path = write_spec(MINIMAL_SPEC + "\n[slo]\nttft_ms = { p50 = 900, p90 = 800, p99 = 2000 }\n"
                                     "itl_ms = { p90 = 80, p99 = 60 }\n")
    assert _check(path) == [
        "spec.toml:16: error: slo.ttft_ms.p50: p50 900 ms is above p90 800 ms [DPC209]\n"
        "  hint: p50 ≤ p90",
        "spec.toml:17: error: slo.itl_ms.p90: p90 80 ms is above p99 60 ms [DPC209]\n"
        "  hint: p90 ≤ p99",
    ]


def test_a_p95_target_must_lie_between_p90_and_p99(write_spec):  # type: ignore[no-untyped-def]
    path = write_spec(MINIMAL_SPEC + "\n[slo]\nttft_ms = { p90 = 900, p95 = 800 }\n"
                                     "itl_ms = { p95 = 80, p99 = 60 }\n")
    assert _check(path) == [
        "spec.toml:16: error: slo.ttft_ms.p90: p90 900 ms is above p95 800 ms [DPC209]\n"
        "  hint: p90 ≤ p95",
        "spec.toml:17: error: slo.itl_ms.p95: p95 80 ms is above p99 60 ms [DPC209]\n"
        "  hint: p95 ≤ p99",
    ]
