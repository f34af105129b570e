"""Does the pool serve its traffic at the SLO? Targets checked at the percentile they name, from the simulation."""

from __future__ import annotations

import math
from typing import Literal

from attrs import frozen

from deployc.planner.serving.result import ServingResult
from deployc.spec.model import SloSection

Status = Literal["serves", "misses_slo", "overloaded"]


@frozen(kw_only=True)
class SloCheck:
    """One target: which metric at which percentile, the target and the simulated value, in ms."""

    metric: Literal["TTFT", "ITL", "TPOT"]
    percentile: Literal["p50", "p90", "p95", "p99"]
    target_ms: float
    simulated_ms: float

    @property
    def met(self) -> bool:
        """The simulated value is at or under the target."""
        return self.simulated_ms <= self.target_ms

    def sentence(self) -> str:
        """``TTFT p99 1,240 ms > target 500 ms``."""
        sign = "≤" if self.met else ">"
        return (f"{self.metric} {self.percentile} {_ms(self.simulated_ms)} {sign} target "
                f"{_ms(self.target_ms)}")


@frozen(kw_only=True)
class ServingVerdict:
    """``serves``, ``misses_slo`` (fits and keeps up, but a target is missed) or ``overloaded`` (arrivals
    exceed what the pool completes), with every check behind it."""

    status: Status
    checks: tuple[SloCheck, ...]
    overload_factor: float | None

    @property
    def serves(self) -> bool:
        """Every target met and the pool keeps up."""
        return self.status == "serves"

    def misses(self) -> tuple[SloCheck, ...]:
        """The targets missed."""
        return tuple(c for c in self.checks if not c.met)

    def summary(self, result: ServingResult) -> str:
        """One sentence with the numbers."""
        if self.status == "overloaded":
            return (f"cannot keep up: {result.offered_requests_per_s:g} requests/s arrive, the pool completes at "
                    f"most {result.capacity_requests_per_s:.2f}/s ({self.overload_factor:.2f}× over capacity); the "
                    "queue grows without bound")
        if self.status == "misses_slo":
            return "misses the SLO: " + "; ".join([*_refusals(result), *(c.sentence() for c in self.misses())])
        met = "; ".join(c.sentence() for c in self.checks) or "no latency target given"
        return f"serves the workload: {met}"


def miss_ratio(result: ServingResult, verdict: ServingVerdict) -> float:
    """How far a simulated pool is from serving: 0 when it serves, the overload factor when it cannot keep up,
    infinite when the engine refuses requests, else the worst simulated/target ratio (``miss_rank`` without
    the kind of miss)."""
    return miss_rank(result, verdict)[1]


def miss_rank(result: ServingResult, verdict: ServingVerdict) -> tuple[int, float]:
    """How badly a simulated pool misses, for ordering: serving first, then latency misses by their worst
    simulated/target ratio, then overload by its factor (a queue without bound is worse than any finite
    latency), then refused requests."""
    if verdict.serves:
        return (0, 0.0)
    if verdict.status == "overloaded":
        return (2, verdict.overload_factor or math.inf)
    if result.rejected_requests:
        return (3, math.inf)
    return (1, max((c.simulated_ms / c.target_ms for c in verdict.misses()), default=math.inf))


def _refusals(result: ServingResult) -> list[str]:
    """The requests the engine refused, as a sentence (none: an empty list)."""
    refused = result.rejected_requests
    if not refused:
        return []
    over, kv = result.rejected_over_context, refused - result.rejected_over_context
    why = [f"{over:,} longer than max_model_len (prompt + max_tokens)"] * bool(over) + [
        f"{kv:,} longer than the whole KV cache"] * bool(kv)
    return [f"the engine refuses {refused:,} of {result.requests_simulated:,} simulated requests ({', '.join(why)})"]


def _ms(value: float) -> str:
    return f"{value:,.0f} ms" if value >= 100 else f"{value:.1f} ms"


def slo_checks(result: ServingResult, slo: SloSection) -> tuple[SloCheck, ...]:
    """Every target the spec gives, against the simulated percentile it names."""
    checks: list[SloCheck] = []
    for metric, targets, simulated in (("TTFT", slo.ttft_ms, result.ttft_ms), ("ITL", slo.itl_ms, result.itl_ms),
                                       ("TPOT", slo.tpot_ms, result.tpot_ms)):
        if targets is None:
            continue
        for name, target_ms in targets.given():
            checks.append(SloCheck(metric=metric, percentile=name, target_ms=target_ms,  # type: ignore[arg-type]
                                   simulated_ms=simulated.at(name)))
    return tuple(checks)


def judge(result: ServingResult, slo: SloSection) -> ServingVerdict:
    """The verdict for a simulated pool."""
    checks = slo_checks(result, slo)
    if result.overloaded:
        return ServingVerdict(status="overloaded", checks=checks, overload_factor=result.overload_factor)
    # A request the engine refuses is not served, whatever the latency of the others.
    status: Status = "serves" if all(c.met for c in checks) and not result.rejected_requests else "misses_slo"
    return ServingVerdict(status=status, checks=checks, overload_factor=result.overload_factor)
