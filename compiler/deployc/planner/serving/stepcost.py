"""One engine step priced by the performance model, memoised for the simulation.

The simulation asks for thousands of steps; the roofline (``planner/perf.py``) prices each from
its terms. Decode steps are priced exactly at their batch and interpolated linearly in context
between points ``CONTEXT_BUCKET_TOKENS`` apart (the step is linear in context within a roofline
regime). Steps carrying prompt chunks are priced on a coarser grid — the chunk to 1/16 of its
power of two, the riding decodes to ``DECODE_BUCKET`` and contexts to ``MIXED_CONTEXT_BUCKET_TOKENS``
— because a chunk's math dominates such a step and every point costs a full roofline evaluation
(the grid moves a step by a few percent at most).
"""

from __future__ import annotations

import math

from deployc.planner.perf import PerfInputs, decode_step_time_s, prefill_time_s

CONTEXT_BUCKET_TOKENS = 256
MIXED_CONTEXT_BUCKET_TOKENS = 1024
DECODE_BUCKET = 16
MIN_CHUNK_STEP_TOKENS = 16


def chunk_bucket(tokens: int) -> int:
    """``tokens`` rounded to a grid of 1/16 of its power of two (at least 16): about ±3%."""
    step = max(MIN_CHUNK_STEP_TOKENS, (1 << max(tokens, 1).bit_length() - 1) // 16)
    return max(step, round(tokens / step) * step)


class StepCostModel:
    """``cost(prefill tokens, prefill sequences, context before, decodes, decode context) → seconds``."""

    def __init__(self, inputs: PerfInputs) -> None:
        self.inputs = inputs
        self._decode: dict[tuple[int, int], float] = {}
        self._mixed: dict[tuple[int, int, int, int, int], float] = {}

    def _decode_at(self, batch: int, bucket: int) -> float:
        key = (batch, bucket)
        cached = self._decode.get(key)
        if cached is None:
            cached = decode_step_time_s(self.inputs, batch, bucket * CONTEXT_BUCKET_TOKENS)[0]
            self._decode[key] = cached
        return cached

    def decode(self, batch: int, context: float) -> float:
        """A decode-only step of ``batch`` sequences at mean ``context`` tokens."""
        position = max(context, 0.0) / CONTEXT_BUCKET_TOKENS
        low = math.floor(position)
        share = position - low
        low_s = self._decode_at(batch, low)
        if share == 0:
            return low_s
        return low_s + (self._decode_at(batch, low + 1) - low_s) * share

    def __call__(self, prefill_tokens: int, sequences: int, context_before: float, decodes: int,
                 decode_context: float) -> float:
        if prefill_tokens <= 0:
            return self.decode(max(decodes, 1), decode_context)
        batch = decodes if decodes <= DECODE_BUCKET else round(decodes / DECODE_BUCKET) * DECODE_BUCKET
        key = (chunk_bucket(prefill_tokens), min(sequences, 2), round(context_before / MIXED_CONTEXT_BUCKET_TOKENS),
               batch, round(decode_context / MIXED_CONTEXT_BUCKET_TOKENS))
        cached = self._mixed.get(key)
        if cached is None:
            cached = prefill_time_s(self.inputs, key[0], context_before=key[2] * MIXED_CONTEXT_BUCKET_TOKENS,
                                    decode_batch=batch, decode_context=key[4] * MIXED_CONTEXT_BUCKET_TOKENS,
                                    sequences=key[1])[0]
            self._mixed[key] = cached
        return cached
