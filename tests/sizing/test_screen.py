"""The sizing screen: a search that screens deployments with quick simulations picks what the full search picks."""

from __future__ import annotations

from pathlib import Path

import pytest

from deployc.api import clear_plan_cache, plan
from deployc.sizing import search as sizing
from deployc.sizing.deployment import Deployment
from deployc.sizing.run import size
from tests.conftest import REPO

CASES = [
    ("llama8b-fp8-h100-stable.toml", "H100,L40S", 4),
    ("qwen7b-awq-t4-edge.toml", "H100,A100-80GB,L40S,L4", 16),
    ("llama70b-fp8-mi300x-chat.toml", "H100,A100-80GB,L40S,L4", 16),
]


def _figures(d: Deployment) -> tuple[object, ...]:
    return (d.gpu, d.size, d.variant, d.status, d.layout, d.backend, d.weights_format, d.kv_cache_dtype,
            d.usd_per_hour, d.output_tokens_per_s, d.ttft_p99_ms, d.itl_p99_ms, d.tpot_p50_ms)


@pytest.mark.parametrize(("sample", "gpus", "max_gpus"), CASES)
def test_the_screened_search_picks_the_full_searchs_winners(sample: str, gpus: str, max_gpus: int,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    spec = REPO / "samples" / sample
    clear_plan_cache()
    screened = size(spec, gpus=gpus, max_gpus=max_gpus).report.search
    monkeypatch.setattr(sizing, "SCREEN_MARGIN", float("inf"))  # every simulated screen planned in full
    full = size(spec, gpus=gpus, max_gpus=max_gpus).report.search
    assert [_figures(w) for w in screened.winners] == [_figures(w) for w in full.winners]
    assert not any(d.screened for d in full.evaluated)
    # The same deployments are visited: the search decides on full plans only.
    assert [(d.gpu, d.size, d.variant, d.status) for d in screened.evaluated] == [
        (d.gpu, d.size, d.variant, d.status) for d in full.evaluated]


def test_only_far_misses_keep_screened_figures() -> None:
    search = size(REPO / "samples" / CASES[2][0], gpus=CASES[2][1], max_gpus=CASES[2][2]).report.search
    screened = [d for d in search.evaluated if d.screened]
    assert screened, "this search has deployments that miss by far"
    assert all(not d.serves and (d.miss_ratio or 0.0) >= sizing.SCREEN_MARGIN for d in screened)
    assert all(not w.screened and w.serves for w in search.winners)
    assert all(not d.screened for d in search.evaluated if d.serves or (d.miss_ratio or 0.0) < sizing.SCREEN_MARGIN)


def test_a_likely_near_deployment_is_planned_in_full_without_a_screen(monkeypatch: pytest.MonkeyPatch) -> None:
    """After a narrow miss one size down the screen is skipped (it would be followed by a full plan anyway)."""
    calls: list[tuple[int, bool]] = []
    plan_one = sizing.plan_one

    def recorded(*args: object, quick: bool = False) -> Deployment:
        found = plan_one(*args, quick=quick)  # type: ignore[arg-type]
        if found.variant.backend == "auto" and found.gpu == "L40S":
            calls.append((found.size.gpus, quick))
        return found

    monkeypatch.setattr(sizing, "plan_one", recorded)
    search = size(REPO / "samples" / "gpt-oss-120b-h100.toml", gpus="L40S", max_gpus=8).report.search
    ladder = [d for d in search.evaluated if d.variant.backend == "auto" and d.gpu == "L40S"]
    assert [(d.size.gpus, d.status, d.screened) for d in ladder] == [
        (1, "does_not_fit", False), (2, "misses_slo", False), (4, "misses_slo", False), (8, "serves", False)]
    assert (ladder[1].miss_ratio or 0.0) < sizing.SCREEN_MARGIN and (ladder[2].miss_ratio or 0.0) < sizing.NEAR_RATIO
    # 1 GPU: the screen says it does not fit; 2: screened, near, planned in full; 4 and 8: in full at once.
    assert calls == [(1, True), (2, True), (2, False), (4, False), (8, False)]


def test_a_screen_does_not_hide_the_layout_a_plan_serves_with(tmp_path: Path) -> None:
    """New-user trial: `deployc plan` served 70B on 8 × A100 (TP8), but the size screen simulated only TP4×DP2
    (ITL p99 7.5× the target, a far miss) and the search said no A100 count up to 8 serves."""
    spec = tmp_path / "s.toml"
    spec.write_text("""version = 1
name = "chat-70b-a100"
[model]
id = "meta-llama/Llama-3.3-70B-Instruct"
[hardware]
gpu = "A100 80GB SXM"
gpus_per_node = 8
[workload]
kind = "chat"
prompt_tokens = { mean = 1500, p99 = 6000 }
output_tokens = { mean = 400, p99 = 1500 }
request_rate_per_s = 2
[slo]
ttft_ms = { p99 = 1500 }
itl_ms = { p99 = 50 }
goal = "cost"
""")
    planned, _ = plan(spec)
    assert planned.primary.verdict is not None and planned.primary.verdict.serves
    search = size(spec, gpus="A100-80GB", max_gpus=8).report.search
    assert [(w.size.gpus, w.layout) for w in search.winners] == [(8, planned.primary.layout.label())]
