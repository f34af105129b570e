"""What one engine replica is given and what it gives back: its knobs, the requests, the step cost, the trace."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Protocol

from attrs import frozen

from deployc.contract.backend import SchedulerPolicy

# cost(prefill tokens, prefill sequences, mean context before the chunk, decoding sequences, mean decode context) → s
StepCost = Callable[[int, int, float, int, float], float]
Run = tuple[float, int, int]  # steps of one price: (seconds a step, steps, KV tokens added a step)


class SteadySteps(Protocol):
    """How many consecutive steps keep one price while contexts grow (a step cost may say; see stepcost.py)."""

    def __call__(self, prefill_tokens: int, context_before: float, context_step: float, decodes: int,
                 decode_context: float) -> int: ...


class FastStride(Protocol):
    """A step cost that prices and books a whole stride in one call (StepCostModel.stride states the contract)."""

    def __call__(self, take: int, context_before: float, decodes: int, decode_context: float, strides: int,
                 kv: float, area: float, first_gap_s: float, itl: defaultdict[float, int], now: float = ...,
                 stop_at: float = ..., last: int = ..., join_by: float = ...) -> tuple[float, int, float, float]: ...


class FastChunkStride(Protocol):
    """:class:`FastStride` for steps that carry a prompt chunk (StepCostModel.chunk_stride)."""

    def __call__(self, take: int, context_before: float, decodes: int, decode_context: float, strides: int,
                 kv: float, area: float, first_gap_s: float, itl: defaultdict[float, int], now: float,
                 last: int, join_by: float) -> tuple[float, int, float, float]: ...


def unbounded(prefill_tokens: int, context_before: float, context_step: float, decodes: int,
               decode_context: float) -> int:
    """A step-cost function that states no grid is priced independently of the contexts (test costs)."""
    del prefill_tokens, context_before, context_step, decodes, decode_context
    return 1 << 30

@frozen(kw_only=True)
class EngineConfig:
    """The serving knobs of one replica and its KV cache."""

    policy: SchedulerPolicy
    max_num_seqs: int
    token_budget: int
    chunked_prefill: bool
    kv_capacity_tokens: int
    kv_block_tokens: int
    prefix_tokens: int  # shared prefix a later request hits (whole blocks, below its prompt length)
    # The engine refuses a request whose prompt + max_tokens exceed it (vLLM's and SGLang's servers answer 400);
    # None: no limit (tests).
    max_model_len: int | None = None


@frozen(kw_only=True)
class Traffic:
    """Requests for one replica: lengths, and either fixed arrival times (open loop) or ``clients`` (closed loop).

    ``max_new_tokens`` is what clients send as ``max_tokens`` (reservation-based schedulers use it).
    """

    prompt_tokens: tuple[int, ...]
    output_tokens: tuple[int, ...]
    max_new_tokens: tuple[int, ...]
    arrivals_s: tuple[float, ...] | None
    clients: int = 0


@frozen(kw_only=True)
class Trace:
    """What happened to each request, and to every token gap, in seconds."""

    arrival_s: tuple[float, ...]
    admitted_s: tuple[float, ...]
    first_token_s: tuple[float, ...]
    finish_s: tuple[float, ...]
    itl_samples: tuple[tuple[float, int], ...]  # (gap between two tokens of a request, how many such gaps)
    busy_s: float
    end_s: float
    preemptions: int
    rejected: int  # refused: longer than max_model_len (prompt + max_tokens) or than the whole KV cache
    rejected_over_context: int  # of those, longer than max_model_len
    kv_token_seconds: float  # ∫ KV tokens in use dt
    running_seconds: float  # ∫ running requests dt
    kv_peak_tokens: float
    running_peak: int
