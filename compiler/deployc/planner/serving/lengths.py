"""Request lengths drawn from a distribution fitted to the spec's mean, p99 and max.

The spec gives a mean and a tail (p99, else max, else 2 × mean). Real prompt and output lengths
are right-skewed (ShareGPT, LMSYS-Chat and Azure LLM inference traces all are), so deployc fits a
log-normal with that mean and p99 and truncates it at the max. Normal draws are made from
``random.Random.random()`` by Box-Muller, which keeps them identical across Python versions and
platforms (``random``'s own gauss/lognormvariate carry no such guarantee).
"""

from __future__ import annotations

import math
import random
from statistics import NormalDist

from attrs import frozen

from deployc.spec.model import TokenDistribution

Z_P99 = NormalDist().inv_cdf(0.99)  # 2.326: the p99 of a standard normal


@frozen(kw_only=True)
class LengthModel:
    """A log-normal (``mu``, ``sigma`` of ln tokens) truncated to [1, ``max_tokens``]; sigma 0 = fixed length."""

    mean: int
    p99: int
    max_tokens: int
    mu: float
    sigma: float

    def describe(self) -> str:
        """One sentence for the plan's assumptions."""
        if self.sigma == 0:
            return f"{self.mean:,} tokens every request"
        return (f"log-normal with mean {self.mean:,} and p99 {self.p99:,} tokens (sigma {self.sigma:.2f}), "
                f"truncated at {self.max_tokens:,}")

    def draw(self, rng: random.Random) -> int:
        """One length in tokens."""
        if self.sigma == 0:
            return self.mean
        # Box-Muller on two uniform draws: exact, and fast beside NormalDist.inv_cdf.
        u1, u2 = 1.0 - rng.random(), rng.random()
        z = math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)
        value = math.exp(self.mu + self.sigma * z)
        return max(1, min(round(value), self.max_tokens))


def fit_lengths(dist: TokenDistribution) -> LengthModel:
    """The log-normal whose mean and 99th percentile are the spec's (sigma capped where no fit exists).

    For a log-normal, ln(p99 / mean) = z·σ − σ²/2 with z = 2.326; the smaller root is taken. A p99
    more than e^(z²/2) ≈ 15× the mean has no log-normal fit; sigma is then capped at z.
    """
    ceiling = max(dist.max_tokens, dist.mean)
    mean, p99 = dist.mean, min(max(dist.p99_tokens, dist.mean), ceiling)
    if p99 <= mean:
        return LengthModel(mean=mean, p99=mean, max_tokens=ceiling, mu=math.log(mean), sigma=0.0)
    ratio = math.log(p99 / mean)
    disc = Z_P99 * Z_P99 - 2 * ratio
    sigma = Z_P99 - math.sqrt(disc) if disc > 0 else Z_P99
    mu = math.log(mean) - sigma * sigma / 2
    return LengthModel(mean=mean, p99=p99, max_tokens=ceiling, mu=mu, sigma=sigma)
