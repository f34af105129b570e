"""What a pool costs to run: $/hour, and $ per million output and total tokens at the simulated throughput."""

from __future__ import annotations

from attrs import frozen

from deployc.catalog.prices import GpuPrice
from deployc.planner.decisions import Quantity
from deployc.planner.serving.result import ServingResult

SECONDS_PER_HOUR = 3600


@frozen(kw_only=True)
class PoolCost:
    """Cost of one pool's GPUs and per token served (tokens at the simulated, not the peak, rate)."""

    gpus: int
    usd_per_gpu_hour: float
    usd_per_hour: float
    usd_per_million_output_tokens: float | None
    usd_per_million_total_tokens: float | None
    price_source: str

    def numbers(self) -> tuple[Quantity, ...]:
        """The figures, for the cost decision."""
        out = [Quantity("GPUs", self.gpus, ""), Quantity("price per GPU-hour", self.usd_per_gpu_hour, "USD"),
               Quantity("cost per hour", round(self.usd_per_hour, 2), "USD")]
        if self.usd_per_million_output_tokens is not None:
            out.append(Quantity("cost per 1M output tokens", round(self.usd_per_million_output_tokens, 3), "USD"))
        if self.usd_per_million_total_tokens is not None:
            out.append(Quantity("cost per 1M total tokens", round(self.usd_per_million_total_tokens, 3), "USD"))
        return tuple(out)


def _per_million(usd_per_hour: float, tokens_per_s: float) -> float | None:
    if tokens_per_s <= 0:
        return None
    return usd_per_hour / (tokens_per_s * SECONDS_PER_HOUR) * 1e6


def pool_cost(price: GpuPrice, gpus: int, result: ServingResult) -> PoolCost:
    """$/hour for ``gpus`` GPUs and $ per million tokens at what the pool serves."""
    per_hour = price.usd_per_gpu_hour * gpus
    return PoolCost(gpus=gpus, usd_per_gpu_hour=price.usd_per_gpu_hour, usd_per_hour=per_hour,
                    usd_per_million_output_tokens=_per_million(per_hour, result.output_tokens_per_s),
                    usd_per_million_total_tokens=_per_million(per_hour, result.total_tokens_per_s),
                    price_source=price.source)
