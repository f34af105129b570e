"""One sized deployment: a GPU type, a size and a variant, planned by the planner, reduced to the figures a
sizing table compares."""

from __future__ import annotations

from typing import Literal

from attrs import frozen

from deployc.diagnostics import Severity
from deployc.planner.plan import Plan
from deployc.planner.serving.verdict import miss_ratio
from deployc.sizing.space import Size, Variant

Status = Literal["serves", "misses_slo", "overloaded", "does_not_fit", "not_possible"]
STATUS_ORDER: dict[str, int] = {"serves": 0, "misses_slo": 1, "overloaded": 2, "does_not_fit": 3, "not_possible": 4}
MS_PER_S = 1000.0
SECONDS_PER_HOUR = 3600


@frozen(kw_only=True)
class Deployment:
    """The planner's answer for one GPU type × size × variant (``plan`` is None when it could not plan)."""

    gpu: str
    size: Size
    variant: Variant
    status: Status
    summary: str
    plan: Plan | None = None
    backend: str | None = None
    layout: str | None = None
    weights_format: str | None = None
    kv_cache_dtype: str | None = None
    usd_per_hour: float | None = None
    price_source: str | None = None
    output_tokens_per_s: float = 0.0
    ttft_p99_ms: float | None = None
    itl_p99_ms: float | None = None
    tpot_p50_ms: float | None = None
    miss_ratio: float | None = None
    # The SLO's targets as checked, worst pool each: ("TTFT", "p99", target ms, simulated ms), in the spec's order.
    slo_checks: tuple[tuple[str, str, float, float], ...] = ()
    screened: bool = False  # figures from a quick screen (it misses by far), not a full plan

    @property
    def simulated(self) -> bool:
        """The planner fitted it in memory and simulated the traffic on it."""
        return self.plan is not None

    @property
    def serves(self) -> bool:
        """Every pool serves its traffic within the SLO."""
        return self.status == "serves"

    @property
    def tokens_per_s_per_gpu(self) -> float:
        """Output tokens/s over every GPU paid for (idle ones too)."""
        return self.output_tokens_per_s / self.size.gpus

    @property
    def tokens_per_s_per_user(self) -> float | None:
        """What one user sees while their answer streams: 1 / TPOT at the median request (the slowest pool)."""
        if not self.tpot_p50_ms:
            return None
        return MS_PER_S / self.tpot_p50_ms

    @property
    def usd_per_million_output_tokens(self) -> float | None:
        """$/hour over the simulated output tokens per hour, per million."""
        if self.usd_per_hour is None or self.output_tokens_per_s <= 0:
            return None
        return self.usd_per_hour / (self.output_tokens_per_s * SECONDS_PER_HOUR) * 1e6

    def label(self) -> str:
        """``2 × H100 SXM, TP2, vllm, fp8``."""
        parts = [f"{self.size.label()} × {self.gpu}"]
        parts += [p for p in (self.layout, self.backend, self.weights_format) if p]
        return ", ".join(parts)


def _miss_ratio(plan: Plan) -> float:
    """How far the worst pool is from serving: overload factor, else the worst simulated/target ratio (infinite
    when the engine refuses requests: no latency makes up for them)."""
    worst = 0.0
    for pool in plan.pools:
        if pool.verdict is not None and pool.serving is not None and not pool.verdict.serves:
            worst = max(worst, miss_ratio(pool.serving, pool.verdict))
    return worst


def _worst_checks(plan: Plan) -> tuple[tuple[str, str, float, float], ...]:
    """Each SLO target with the worst pool's simulated value at its percentile."""
    worst: dict[tuple[str, str], tuple[float, float]] = {}
    for pool in plan.pools:
        for c in pool.verdict.checks if pool.verdict is not None else ():
            key = (c.metric, c.percentile)
            if key not in worst or c.simulated_ms > worst[key][1]:
                worst[key] = (c.target_ms, c.simulated_ms)
    return tuple((metric, percentile, target, value) for (metric, percentile), (target, value) in worst.items())


def from_plan(plan: Plan, size: Size, variant: Variant, *, screened: bool = False) -> Deployment:
    """A planned deployment's figures: totals over its pools, the worst pool's latency and verdict."""
    pools = plan.pools
    statuses = [p.verdict.status if p.verdict is not None else "misses_slo" for p in pools]
    status: Status = max(statuses, key=lambda s: STATUS_ORDER[s])
    errors = [d.message for d in plan.diagnostics if d.severity is Severity.ERROR]
    several = len(pools) > 1
    # The pools that decide the status: every pool when all serve, else those that do not.
    summaries = [f"{p.name}: " * several + p.verdict.summary(p.serving) for p in pools
                 if p.verdict is not None and p.serving is not None and (status == "serves" or not p.verdict.serves)]
    costs = [p.cost for p in pools]
    priced = all(c is not None for c in costs)
    results = [p.serving for p in pools if p.serving is not None]
    return Deployment(
        gpu=plan.target.gpu.name, size=size, variant=variant, status=status,
        summary="; ".join(summaries or errors) or "no serving figures", plan=plan, backend=plan.backend.name,
        layout=", ".join(f"{p.name}: " * several + p.layout.label() for p in pools),
        weights_format=pools[0].knobs.weights_format, kv_cache_dtype=pools[0].knobs.kv_cache_dtype,
        usd_per_hour=sum(c.usd_per_hour for c in costs if c is not None) if priced else None,
        price_source=costs[0].price_source if priced and costs[0] is not None else None,
        output_tokens_per_s=sum(r.output_tokens_per_s for r in results),
        ttft_p99_ms=max((r.ttft_ms.p99 for r in results), default=None),
        itl_p99_ms=max((r.itl_ms.p99 for r in results), default=None),
        tpot_p50_ms=max((r.tpot_ms.p50 for r in results), default=None),
        miss_ratio=None if status == "serves" else _miss_ratio(plan), slo_checks=_worst_checks(plan),
        screened=screened)


def unplanned(gpu: str, size: Size, variant: Variant, status: Status, message: str) -> Deployment:
    """A GPU type × size × variant the planner could not plan (does not fit, or the engine or GPU refuses)."""
    return Deployment(gpu=gpu, size=size, variant=variant, status=status, summary=message)
