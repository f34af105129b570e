"""The sizing screen: a search that screens deployments with quick simulations picks what the full search picks."""

from __future__ import annotations

import pytest

from deployc.api import clear_plan_cache
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
    near = [d for d in search.evaluated if d.simulated and not d.screened]
    assert all(d.serves or (d.miss_ratio or 0.0) < sizing.SCREEN_MARGIN or not d.simulated for d in near)


def test_a_screen_simulates_fewer_requests_than_a_full_plan() -> None:
    search = size(REPO / "samples" / CASES[2][0], gpus=CASES[2][1], max_gpus=CASES[2][2]).report.search
    screened = next(d for d in search.evaluated if d.screened)
    full = search.winners[0]
    assert screened.plan is not None and full.plan is not None
    screened_serving, full_serving = screened.plan.primary.serving, full.plan.primary.serving
    assert screened_serving is not None and full_serving is not None
    assert screened_serving.requests_simulated < full_serving.requests_simulated
