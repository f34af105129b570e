"""The memory, performance and serving models meet their accuracy targets on real measurements.

The predictions are deterministic, so the targets are asserted, not only printed: the computation
is bench/memory_accuracy.py's, bench/perf_accuracy.py's and bench/load_accuracy.py's (the benches
print it, these tests assert it), over the start-up logs in bench/data, the published rows in
planner/data/calibration.json and the published serving benchmarks in bench/data/load_cases.json.
"""

from __future__ import annotations

import json

import pytest

from bench import load_accuracy, memory_accuracy, perf_accuracy
from tests.conftest import REPO


@pytest.fixture(scope="module")
def memory_results() -> list[memory_accuracy.CaseResult]:
    return memory_accuracy.evaluate()


@pytest.fixture(scope="module")
def perf_results() -> list[perf_accuracy.RowResult]:
    rows = json.loads(perf_accuracy.CALIBRATION.read_text(encoding="utf-8"))["rows"]
    return perf_accuracy.evaluate(rows)


# --- memory: vLLM V1 start-up logs ------------------------------------------------------------------


@pytest.mark.parametrize("metric", memory_accuracy.METRICS)
def test_memory_targets_on_vllm_v1_logs(metric: str, memory_results: list[memory_accuracy.CaseResult]) -> None:
    summary = memory_accuracy.summarise(memory_results)[metric]
    target = memory_accuracy.TARGETS[metric]
    assert len(summary.errors) >= target.min_cases
    worst = max((r for r in memory_results if metric in r.counted), key=lambda r: abs(r.errors[metric] or 0.0))
    assert summary.worst <= target.worst, f"{worst.case_id}: {worst.errors[metric]:+.2%}"
    if target.median is not None:
        assert summary.median <= target.median


def test_memory_targets_are_the_issue_targets() -> None:
    """Weights within 2%; KV memory and KV tokens within 5% median, 10% worst (issue 11)."""
    targets = memory_accuracy.TARGETS
    assert (targets["weights"].worst, targets["kv_mem"].median, targets["kv_mem"].worst) == (0.02, 0.05, 0.10)
    assert (targets["kv_tok"].median, targets["kv_tok"].worst) == (0.05, 0.10)


def test_every_vllm_v1_case_with_inputs_is_counted_unless_documented(
        memory_results: list[memory_accuracy.CaseResult]) -> None:
    mapping = json.loads((REPO / "bench" / "data" / "case_inputs.json").read_text())
    documented = set(mapping["excluded_from_targets"]) | set(mapping["target_outliers"])
    ids = {r.case_id for r in memory_results}
    assert documented <= ids, f"exclusions name cases that no longer exist: {sorted(documented - ids)}"
    for r in memory_results:
        if r.engine == "vllm" and r.skipped is None and r.case_id not in documented:
            assert r.counted == {m for m in memory_accuracy.METRICS if r.errors[m] is not None}, r.case_id
    for case_id, metrics in mapping["target_outliers"].items():
        assert set(metrics) <= set(memory_accuracy.METRICS), case_id
        assert all(len(why) > 40 for why in metrics.values()), f"{case_id}: an outlier needs its reason"


def test_memory_failures_name_each_missed_target() -> None:
    summary = {"weights": memory_accuracy.Summary("weights", (0.01, 0.03, 0.0, 0.0, 0.0, 0.0, 0.0)),
               "kv_mem": memory_accuracy.Summary("kv_mem", (0.06,) * 8),
               "kv_tok": memory_accuracy.Summary("kv_tok", (0.01,))}
    assert memory_accuracy.failures(summary) == [
        "weights: worst |error| 3.00% above the 2% target",
        "KV memory: median |error| 6.00% above the 5% target",
        "KV tokens: 1 counted cases, fewer than the 3 the target needs",
    ]


def test_memory_bench_exits_0_when_the_targets_are_met(capsys: pytest.CaptureFixture[str]) -> None:
    assert memory_accuracy.main() == 0
    out = capsys.readouterr().out
    assert "MISSED" not in out
    assert "vLLM V1 KV tokens  n=3" in out


def test_memory_bench_exits_1_when_a_target_is_missed(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(memory_accuracy.TARGETS, "kv_mem", memory_accuracy.Target(median=None, worst=0.001,
                                                                                   min_cases=1))
    assert memory_accuracy.main() == 1
    assert "MISSED: KV memory: worst |error|" in capsys.readouterr().out


# --- performance: published measurements -------------------------------------------------------------


def test_perf_fitted_rows_meet_the_target(perf_results: list[perf_accuracy.RowResult]) -> None:
    fitted = [r for r in perf_results if r.fitted]
    assert len(fitted) >= 25
    assert perf_accuracy.failures(perf_results) == []


def test_perf_target_is_the_stated_one() -> None:
    """Median within 7% on the fitted rows (issue 11: "~7%"); no fitted row off by more than 35%."""
    assert perf_accuracy.Target(median=0.07, worst=0.35) == perf_accuracy.TARGET


def test_perf_every_family_with_rows_is_covered(perf_results: list[perf_accuracy.RowResult]) -> None:
    families = {r.family for r in perf_results if r.fitted}
    assert set(perf_accuracy.FAMILIES_FITTED) <= families


def test_perf_failures_name_the_rows_beyond_the_bound(perf_results: list[perf_accuracy.RowResult]) -> None:
    tight = perf_accuracy.Target(median=0.01, worst=0.2)
    missed = perf_accuracy.failures(perf_results, tight)
    assert missed[0].startswith("fitted rows: median |error| ")
    assert missed[0].endswith(" above the 1% target")
    beyond = [r for r in perf_results if r.fitted and abs(r.error) > 0.2]
    assert missed[1:] == [f"{r.row_id}: {r.error:+.1%} beyond the 20% worst-row bound" for r in beyond]


def test_perf_bench_exit_code_follows_the_target(monkeypatch: pytest.MonkeyPatch) -> None:
    lines: list[str] = []
    assert perf_accuracy.main([], out=lines.append) == 0
    assert lines[-1] == "target on fitted rows: median 7%, worst 35%"
    monkeypatch.setattr(perf_accuracy, "TARGET", perf_accuracy.Target(median=0.07, worst=0.05))
    lines.clear()
    assert perf_accuracy.main([], out=lines.append) == 1
    assert any(line.startswith("MISSED: ") and "beyond the 5% worst-row bound" in line for line in lines)


# --- serving under load: published benchmarks ------------------------------------------------------------


@pytest.fixture(scope="module")
def load_results() -> list[load_accuracy.Compared]:
    return [load_accuracy.compare(row) for row in load_accuracy.load_cases()]


@pytest.mark.parametrize("metric", sorted(load_accuracy.TARGETS))
def test_load_targets_on_published_serving_benchmarks(metric: str, load_results: list[load_accuracy.Compared]) -> None:
    # Issue 10: median |error| over the calibration rows (the held-out third is printed by the bench, not judged).
    count, median, _ = load_accuracy.summary(load_results, holdout=False)[metric]
    assert count >= 20
    assert median <= load_accuracy.TARGETS[metric], f"{metric}: median |error| {median:.1%} over {count} rows"


def test_held_out_rows_are_kept_apart(load_results: list[load_accuracy.Compared]) -> None:
    held = [r for r in load_results if r.holdout]
    assert len(held) * 4 >= len(load_results)  # a quarter of the rows or more, never judged
    assert all(metric in load_accuracy.summary(load_results, holdout=True) for metric in load_accuracy.TARGETS)
