"""What the serving simulation reports for a pool: the figures a benchmark client would measure."""

from __future__ import annotations

from typing import Literal

from attrs import frozen

from deployc.contract.deployment import Latency

Mode = Literal["closed", "open"]


@frozen(kw_only=True)
class ServingResult:
    """What a benchmark client would measure against the pool (latencies per request; rates in total)."""

    mode: Mode
    replicas: int
    clients_per_replica: int | None
    offered_requests_per_s: float | None
    capacity_requests_per_s: float | None
    requests_simulated: int
    requests_measured: int
    ttft_ms: Latency
    itl_ms: Latency
    tpot_ms: Latency
    e2e_ms: Latency
    queue_wait_ms: Latency
    output_tokens_per_s: float
    total_tokens_per_s: float
    requests_per_s: float
    mean_running_per_replica: float
    peak_running_per_replica: int
    kv_utilisation_mean: float
    kv_utilisation_peak: float
    preemptions: int
    rejected_requests: int  # refused by the engine: longer than max_model_len or than the whole KV cache
    rejected_over_context: int  # of those, prompt + max_tokens above max_model_len
    prompt_lengths: str
    output_lengths: str
    assumptions: tuple[str, ...] = ()

    @property
    def overload_factor(self) -> float | None:
        """Offered rate over capacity (above 1: the queue grows without bound)."""
        if self.offered_requests_per_s is None or not self.capacity_requests_per_s:
            return None
        return self.offered_requests_per_s / self.capacity_requests_per_s

    @property
    def overloaded(self) -> bool:
        """Arrivals exceed what the pool completes."""
        factor = self.overload_factor
        return factor is not None and factor > 1.0
