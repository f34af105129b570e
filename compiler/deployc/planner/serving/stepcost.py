"""One engine step priced by the performance model, memoised for the simulation.

The simulation asks for thousands of steps; the roofline (``planner/perf.py``) prices each from
its terms. Decode steps are priced exactly at their batch and at the nearest point of a context grid
``CONTEXT_BUCKET_TOKENS`` apart (a 256-token context step moves a decode step by well under 1%).
Steps carrying prompt chunks are priced on a coarser grid — the chunk to 1/16 of its power of two,
the riding decodes to ``DECODE_BUCKET`` and contexts to ``MIXED_CONTEXT_BUCKET_TOKENS`` (1/8 of their
power of two above 8k tokens, :func:`mixed_point`) — because a
chunk's math dominates such a step and every point costs a full roofline evaluation (the grid moves
a step by a few percent at most). Prices are constant between grid points, so
:meth:`StepCostModel.steady_steps` can tell the simulation how many steps ahead keep the same price:
it advances them in one stride and stays equal to stepping one at a time.
"""

from __future__ import annotations

import math
from collections import defaultdict
from math import ceil

from deployc.planner.perf import PerfInputs, StagePricer

CONTEXT_BUCKET_TOKENS = 256
MIXED_CONTEXT_BUCKET_TOKENS = 1024
DECODE_BUCKET = 16
MIN_CHUNK_STEP_TOKENS = 16


def _grid(value: float, spacing: int) -> int:
    """The nearest grid point's index (halves round up, so a growing value crosses at a fixed place)."""
    return int(max(value, 0.0) / spacing + 0.5)


def _steps_on_point(value: float, growth: float, spacing: int) -> int:
    """Steps (from this one) before ``value``, growing by ``growth`` a step, reaches the next grid point's half."""
    if growth <= 0:
        return 1 << 30
    edge = (_grid(value, spacing) + 0.5) * spacing
    return max(math.ceil((edge - max(value, 0.0)) / growth), 1)


def mixed_point(context: float) -> tuple[int, float]:
    """A chunk step's context on its grid, and where (growing) it moves to the next point.

    ``MIXED_CONTEXT_BUCKET_TOKENS`` apart up to 8 of them, then 1/8 of the context's power of two
    (±6%, as the chunk's own grid), so a 32k-token prompt's chunks see 8 prices, not 32 roofline
    evaluations. The edge may come early at a power of two (the next run has the same price).
    """
    spacing = MIXED_CONTEXT_BUCKET_TOKENS
    if context >= 8 * spacing:
        spacing = (1 << (int(context).bit_length() - 1)) >> 3
    index = int(context / spacing + 0.5) if context > 0 else 0
    return index * spacing, (index + 0.5) * spacing


def _steps_on_mixed_point(value: float, growth: float) -> int:
    """Steps (from this one) before a chunk step's ``value``, growing by ``growth``, changes grid point."""
    if growth <= 0:
        return 1 << 30
    return max(math.ceil((mixed_point(value)[1] - max(value, 0.0)) / growth), 1)


def _stall_in_first_gap(itl: defaultdict[float, int], first_price: float, stall_s: float, decodes: int) -> None:
    """A stride's first step gives its decodes the gap since their last token: its price and ``stall_s``.

    The stride books every step at its price; this moves the first step's gaps.
    """
    if stall_s and first_price >= 0:
        itl[first_price + stall_s] += decodes
        itl[first_price] -= decodes
        if not itl[first_price]:
            del itl[first_price]


def chunk_bucket(tokens: int) -> int:
    """``tokens`` rounded to a grid of 1/16 of its power of two (at least 16): about ±3%."""
    step = max(MIN_CHUNK_STEP_TOKENS, (1 << max(tokens, 1).bit_length() - 1) // 16)
    return max(step, round(tokens / step) * step)


class StepCostModel:
    """``cost(prefill tokens, prefill sequences, context before, decodes, decode context) → seconds``."""

    def __init__(self, inputs: PerfInputs) -> None:
        self.inputs = inputs
        self._pricer = StagePricer(inputs)
        self._decode: dict[tuple[int, int], float] = {}
        self._mixed: dict[tuple[int, int, int, int, int], float] = {}
        self._chunks: dict[int, int] = {}  # chunk_bucket memo: the simulation asks for the same few sizes

    def _chunk_at(self, tokens: int) -> int:
        chunk = self._chunks[tokens] = chunk_bucket(tokens)
        return chunk

    def _decode_at(self, batch: int, bucket: int) -> float:
        key = (batch, bucket)
        cached = self._decode.get(key)
        if cached is None:
            cached = self._pricer.decode_s(batch, bucket * CONTEXT_BUCKET_TOKENS)
            self._decode[key] = cached
        return cached

    def decode(self, batch: int, context: float) -> float:
        """A decode-only step of ``batch`` sequences at mean ``context`` tokens."""
        return self._decode_at(batch, _grid(context, CONTEXT_BUCKET_TOKENS))

    def steady_steps(self, prefill_tokens: int, context_before: float, context_step: float, decodes: int,
                     decode_context: float) -> int:
        """Consecutive steps (this one first) priced the same while the chunk's context grows by
        ``context_step`` and the decodes' mean context by one token a step."""
        if prefill_tokens <= 0:
            return _steps_on_point(decode_context, 1.0, CONTEXT_BUCKET_TOKENS)
        steps = _steps_on_mixed_point(context_before, context_step)
        if decodes:
            steps = min(steps, _steps_on_mixed_point(decode_context, 1.0))
        return steps

    def stride(self, take: int, context_before: float, decodes: int, decode_context: float, strides: int,
               kv: float, area: float, first_gap_s: float, itl: defaultdict[float, int], now: float = 0.0,
               stop_at: float = math.inf, last: int = 0, join_by: float = math.inf) -> tuple[float, int, float, float]:
        """``strides`` steps of ``take`` prompt tokens (one request; 0: none) beside ``decodes`` decodes, priced
        as :meth:`__call__` and :meth:`steady_steps` give them step by step, and booked: the simulation's hot
        path, so the runs of one price are never built as a list.

        The KV cache holds ``kv`` tokens and grows by ``take + decodes`` a step; ``area`` (∫ KV dt so far) grows
        step by step; every step gives each decode an ITL gap of its price (the first step's gap also
        ``first_gap_s``, a prefill-only stall before it), counted in ``itl``. The stride stops after the
        first step that ends at or after ``stop_at`` (an arrival; the clock reads ``now`` at its start).
        With ``last`` tokens, one more step completes the prompt when the stride ends before ``join_by``.

        Returns the seconds, the steps, the new ``area`` and the KV tokens before the last step's growth (the
        stride's peak: every step grows the cache).
        """
        if take <= 0:
            return self.decode_stride(decodes, decode_context, strides, kv, area, first_gap_s, itl, now, stop_at)
        return self.chunk_stride(take, context_before, decodes, decode_context, strides, kv, area, first_gap_s, itl,
                                  now, last, join_by)

    def decode_stride(self, decodes: int, decode_context: float, strides: int, kv: float, area: float,
                       first_gap_s: float, itl: defaultdict[float, int], now: float,
                       stop_at: float) -> tuple[float, int, float, float]:
        """:meth:`stride` of decode steps alone."""
        total, steps, start, first_price = 0.0, 0, now, -1.0
        batch = decodes if decodes > 0 else 1
        found_at = self._decode.get
        while strides > 0:
            point = int(decode_context / CONTEXT_BUCKET_TOKENS + 0.5) if decode_context > 0 else 0
            n = min(strides, max(ceil((point + 0.5) * CONTEXT_BUCKET_TOKENS - max(decode_context, 0.0)), 1))
            found = found_at((batch, point))
            price = found if found is not None else self._decode_at(batch, point)
            if stop_at < start + price * n:  # the step-by-step loop admits the arrival at this boundary
                n, strides = max(1, ceil((stop_at - start) / price)), 0
            else:
                strides -= n
                start += price * n
            area += (kv * n + decodes * n * (n - 1) / 2) * price
            kv += decodes * n
            total += price * n
            steps += n
            itl[price] += decodes * n
            if first_price < 0:
                first_price = price
            decode_context += n
        _stall_in_first_gap(itl, first_price, first_gap_s, decodes)
        return total, steps, area, kv - decodes

    def chunk_stride(self, take: int, context_before: float, decodes: int, decode_context: float, strides: int,
                      kv: float, area: float, first_gap_s: float, itl: defaultdict[float, int], now: float,
                      last: int, join_by: float) -> tuple[float, int, float, float]:
        """:meth:`stride` of steps that carry a prompt chunk."""
        growth, total, steps = take + decodes, 0.0, 0
        chunk = self._chunks.get(take) or self._chunk_at(take)
        # The first step's price, when a stall before it adds to its gaps (rare: prefill-first engines' chunk
        # steps carry no decodes).
        first_price = self(take, 1, context_before, decodes, decode_context) if first_gap_s and decodes else -1.0
        batch = decodes if decodes <= DECODE_BUCKET else int(decodes / DECODE_BUCKET + 0.5) * DECODE_BUCKET
        joined_context, joined_decode_context = context_before + take * strides, decode_context + strides
        context_before = context_before if context_before > 0 else 0.0
        decode_context = decode_context if decode_context > 0 else 0.0
        mixed, base, large = self._mixed, MIXED_CONTEXT_BUCKET_TOKENS, 8 * MIXED_CONTEXT_BUCKET_TOKENS
        # The decodes' grid point moves once in hundreds of steps: kept until their context reaches its edge, or a
        # power of two where the spacing doubles (the point stays, the edge moves: as mixed_point gives it).
        decode_point, decode_edge, recheck = 0, math.inf, -1.0
        spacing, band_end = base, -1.0  # the chunk's grid spacing holds up to band_end (a power of two)
        while strides > 0:
            # As steady_steps: steps before the chunk's or the decodes' context reaches the next grid point
            # (mixed_point inline: this loop runs once per price change of every chunked prompt).
            if context_before >= band_end:
                if context_before < large:
                    spacing, band_end = base, large
                else:
                    band_end = 1 << int(context_before).bit_length()
                    spacing = band_end >> 4
            index = int(context_before / spacing + 0.5)
            point = index * spacing
            n = ceil(((index + 0.5) * spacing - context_before) / take)
            if decodes:
                if decode_context >= recheck:
                    step = base if decode_context < large else (1 << (int(decode_context).bit_length() - 1)) >> 3
                    decode_index = int(decode_context / step + 0.5)
                    decode_point, decode_edge = decode_index * step, (decode_index + 0.5) * step
                    doubling = 2 * large if decode_context < large else 1 << int(decode_context).bit_length()
                    recheck = decode_edge if decode_edge < doubling else doubling
                until = ceil(decode_edge - decode_context)
                n = until if until < n else n
            n = strides if n > strides else n  # at least 1: both edges lie ahead of their contexts
            cached = mixed.get((chunk, 1, point, batch, decode_point))
            price = cached if cached is not None else self(take, 1, context_before, decodes, decode_context)
            area += (kv * n + growth * n * (n - 1) / 2) * price
            kv += growth * n
            total += price * n
            steps += n
            if decodes:
                itl[price] += decodes * n
            strides -= n
            context_before += take * n
            decode_context += n
        _stall_in_first_gap(itl, first_price, first_gap_s, decodes)
        if last > 0 and join_by > now + total:
            growth = last + decodes
            price = self(last, 1, joined_context, decodes, joined_decode_context)
            area += kv * price  # one step: what the runs' (kv n + growth n (n - 1) / 2) price is at n = 1
            kv, total, steps = kv + growth, total + price, steps + 1
            if decodes:
                itl[price] += decodes
        return total, steps, area, kv - growth

    def __call__(self, prefill_tokens: int, sequences: int, context_before: float, decodes: int,
                 decode_context: float) -> float:
        # The grid points inline (this runs once per simulated stride): int(x / spacing + 0.5) as _grid.
        if prefill_tokens <= 0:
            key2 = (decodes if decodes > 0 else 1,
                    int(decode_context / CONTEXT_BUCKET_TOKENS + 0.5) if decode_context > 0 else 0)
            found = self._decode.get(key2)
            return found if found is not None else self._decode_at(*key2)
        chunk = self._chunks.get(prefill_tokens)
        if chunk is None:
            chunk = self._chunks[prefill_tokens] = chunk_bucket(prefill_tokens)
        batch = decodes if decodes <= DECODE_BUCKET else int(decodes / DECODE_BUCKET + 0.5) * DECODE_BUCKET
        base, large = MIXED_CONTEXT_BUCKET_TOKENS, 8 * MIXED_CONTEXT_BUCKET_TOKENS
        point = decode_point = 0  # mixed_point's points, inline
        if context_before > 0:
            spacing = base if context_before < large else (1 << (int(context_before).bit_length() - 1)) >> 3
            point = int(context_before / spacing + 0.5) * spacing
        if decodes and decode_context > 0:
            spacing = base if decode_context < large else (1 << (int(decode_context).bit_length() - 1)) >> 3
            decode_point = int(decode_context / spacing + 0.5) * spacing
        key = (chunk, 2 if sequences > 2 else sequences, point, batch, decode_point)
        cached = self._mixed.get(key)
        if cached is None:
            cached = self._pricer.prefill_s(key[0], key[2], batch, key[4], key[1])
            self._mixed[key] = cached
        return cached
