"""The workload as numbers the planner uses: lengths, load, prefix reuse, per pool."""

from __future__ import annotations

from attrs import frozen

from deployc.spec.model import RequestClass, Spec, TokenDistribution, WorkloadSection


@frozen(kw_only=True)
class WorkloadShape:
    """One pool's traffic."""

    name: str
    share: float
    prompt: TokenDistribution
    output: TokenDistribution
    concurrency: float | None  # requests in flight (None when given as a rate)
    request_rate_per_s: float | None
    shared_prefix_tokens: int

    @property
    def needed_context_tokens(self) -> int:
        """The longest request: longest prompt + longest output."""
        return self.prompt.max_tokens + self.output.max_tokens

    @property
    def typical_request_tokens(self) -> int:
        """KV a typical request holds at its end: mean prompt + mean output (the shared prefix counted once)."""
        return self.prompt.mean + self.output.mean

    @property
    def prefix_hit_tokens(self) -> int:
        """Prompt tokens a prefix cache serves on a typical request."""
        return min(self.shared_prefix_tokens, self.prompt.mean)


def _scale(value: float | None, share: float) -> float | None:
    return None if value is None else value * share


def _from_class(w: WorkloadSection, cls: RequestClass) -> WorkloadShape:
    return WorkloadShape(
        name=cls.name, share=cls.share, prompt=cls.prompt_tokens, output=cls.output_tokens,
        concurrency=_scale(w.concurrency, cls.share), request_rate_per_s=_scale(w.request_rate_per_s, cls.share),
        shared_prefix_tokens=min(w.shared_prefix_tokens, cls.prompt_tokens.mean),
    )


def workload_shapes(spec: Spec) -> list[WorkloadShape]:
    """One shape per pool: the whole workload, or one per request class."""
    w = spec.workload
    if not w.classes:
        return [WorkloadShape(name="main", share=1.0, prompt=w.prompt_tokens, output=w.output_tokens,
                              concurrency=w.concurrency, request_rate_per_s=w.request_rate_per_s,
                              shared_prefix_tokens=w.shared_prefix_tokens)]
    return [_from_class(w, cls) for cls in w.classes]
