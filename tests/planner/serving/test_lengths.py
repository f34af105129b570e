"""Lengths drawn from the spec's mean and p99 (seeded draws: S311 does not apply)."""
# ruff: noqa: S311

from __future__ import annotations

import random

import pytest

from deployc.planner.serving.lengths import fit_lengths
from deployc.spec.model import TokenDistribution


@pytest.mark.parametrize(("mean", "p99"), [(1000, 4000), (300, 1200), (2000, 2500), (500, 5000)])
def test_draws_have_the_spec_mean_and_p99(mean: int, p99: int) -> None:
    model = fit_lengths(TokenDistribution(mean=mean, p99=p99, max=p99 * 10))
    rng = random.Random(7)
    draws = sorted(model.draw(rng) for _ in range(40_000))
    assert sum(draws) / len(draws) == pytest.approx(mean, rel=0.03)
    assert draws[int(0.99 * len(draws))] == pytest.approx(p99, rel=0.05)


def test_a_p99_equal_to_the_mean_is_a_fixed_length() -> None:
    model = fit_lengths(TokenDistribution(mean=700, p99=700))
    assert {model.draw(random.Random(1)) for _ in range(10)} == {700}
    assert model.describe() == "700 tokens every request"


def test_draws_never_exceed_the_max() -> None:
    model = fit_lengths(TokenDistribution(mean=1000, p99=3000, max=2000))
    rng = random.Random(3)
    assert max(model.draw(rng) for _ in range(10_000)) == 2000
