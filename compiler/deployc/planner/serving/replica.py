"""The scheduler loop of one replica: prompt chunks under the token budget, decode strides, the steps' prices.

Each iteration is one engine step, or a stride of steps identical up to the next event (see
:mod:`deployc.planner.serving.engine`).
"""

from __future__ import annotations

import heapq
import math

from deployc.planner.serving.ledger import (
    SGLANG_RATIO_DECAY_STEPS,
    SGLANG_RATIO_INIT,
    KvLedger,
)
from deployc.planner.serving.traffic import Run, Trace


class Replica(KvLedger):
    """One run's scheduler: :func:`~deployc.planner.serving.engine.run_replica` is the way in."""

    __slots__ = ()

    def _prefill_chunks(self, budget: int, *, admissions: bool) -> list[tuple[int, int]]:
        """Prompt chunks for this step: the partial request first, then FCFS admissions."""
        partial, todo = self.partial, self.todo
        chunks: list[tuple[int, int]] = []
        taken = 0
        if partial is not None and budget > 0:
            left = todo[partial]
            if left >= budget:
                return [(partial, budget)]  # the partial prompt takes the whole budget: nothing else this step
            chunks.append((partial, left))
            budget -= left
            taken = left
        if not admissions:
            return chunks
        cap, waiting, running, max_seqs = self.prefill_cap, self.waiting, self.running, self.max_seqs
        while waiting and budget > 0 and len(running) < max_seqs:
            i = waiting[0]
            if partial is not None and chunks[-1][0] != partial:
                break  # one request is partially prefilled at a time
            if not self._can_admit_kv(i, taken):  # this step's chunks are allocated already (pads at _admit)
                break
            need = todo[i] - (self.prefix_hits[i] if self.prefix_cached else 0)
            if not self.chunked and need > budget:
                break
            if cap is not None and taken > 0 and taken + need > cap:
                break
            self._admit(i)
            take = todo[i] if todo[i] < budget else budget
            chunks.append((i, take))
            budget -= take
            taken += take
            if take < todo[i]:
                self.partial = i
                break
        return chunks

    def _apply_chunks(self, chunks: list[tuple[int, int]]) -> list[int]:
        """Allocate the chunks' KV; the requests whose prompts they complete."""
        complete = []
        todo, held = self.todo, self.held
        tokens = 0
        for i, take in chunks:
            todo[i] -= take
            held[i] += take
            tokens += take
            if todo[i] <= 0:
                complete.append(i)
                self._prompt_done(i)
            elif self.partial is None:
                self.partial = i
        self.kv_used += tokens
        self.allocated += tokens
        return complete

    def _prompt_done(self, i: int) -> None:
        """Request ``i``'s prompt is in the cache: no longer partial, and the first holds the shared prefix."""
        if i == self.partial:
            self.partial = None
        if self.hit[i] == 0 and self.prefix_tokens > 0 and not self.prefix_cached:
            self.prefix_cached = True
            self.kv_used += self.prefix_tokens  # the shared prefix stays cached once

    def _chunk_run(self, chunks: list[tuple[int, int]], decodes: int) -> Run:
        """One step carrying these chunks, as a run."""
        prompts, gen, todo = self.prompts, self.gen, self.todo
        tokens, context_before = 0, 0
        for i, c in chunks:
            tokens += c
            context_before += prompts[i] + gen[i] - todo[i]
        decode_context = self.sum_decode_context / decodes if decodes else 0.0
        seconds = self.cost(tokens, len(chunks), context_before / len(chunks), decodes, decode_context)
        return seconds, 1, tokens + decodes

    def _first_tokens(self, complete: list[int]) -> None:
        gen, first, outputs = self.gen, self.first, self.outputs
        for i in complete:
            gen[i] += 1
            if first[i] == math.inf:
                first[i] = self.t
            elif not math.isnan(self.stalled_since[i]):
                self._record_itl(self.t - self.stalled_since[i], 1)
                self.stalled_since[i] = math.nan
            if gen[i] >= outputs[i]:
                self._finish(i)
            else:
                self.decoding.add(i)
                self.entered[i] = self.steps
                self.sum_decode_context += self.prompts[i] + gen[i]
                heapq.heappush(self.decoding_heap, (self.steps + outputs[i] - gen[i], i, self.version[i]))

    def _finish(self, i: int) -> None:
        self.finish[i] = self.t
        self._release(i)
        if not self.open_loop:
            self._send(self.t)

    def _record_itl(self, gap: float, count: int) -> None:
        if count > 0:
            self.itl[gap] = self.itl.get(gap, 0) + count

    def _priced(self, take: int, context_before: float, decodes: int, decode_context: float,
                strides: int) -> list[Run]:
        """The stride's steps as runs of one price: contexts grow, and grid points change the price.

        ``take`` prompt tokens of one request (0: decode only) ride with ``decodes`` decodes in every step.
        """
        cost, sequences, growth = self.cost, 1 if take else 0, take + decodes
        if strides == 1:
            return [(cost(take, sequences, context_before, decodes, decode_context), 1, growth)]
        steady = self.steady
        runs = []
        while strides > 0:
            n = min(strides, steady(take, context_before, take, decodes, decode_context))
            runs.append((cost(take, sequences, context_before, decodes, decode_context), n, growth))
            strides -= n
            context_before += take * n
            decode_context += n
        return runs

    def _advance(self, runs: list[Run], decodes: int = 0) -> tuple[float, int]:
        """Run these steps (the KV cache grows by each run's tokens a step): the time they took, and how many.

        With ``decodes``, each step also gives every decoding request a token: its gap is booked (the first
        step's gap includes any prefill-only stall before it); :meth:`_decoded` books the tokens.
        """
        kv = self.kv_used
        itl = self.itl
        if len(runs) == 1:
            seconds_each, n, kv_growth = runs[0]
            total = seconds_each * n
            self.kv_area += (kv * n + kv_growth * n * (n - 1) / 2) * seconds_each
            peak = kv + kv_growth * (n - 1)
            self.kv_peak = max(self.kv_peak, peak)
            if decodes:
                first_gap = seconds_each + self.stall
                itl[first_gap] = itl.get(first_gap, 0) + decodes
                if n > 1:
                    itl[seconds_each] = itl.get(seconds_each, 0) + decodes * (n - 1)
            steps = n
        else:
            # ∫ KV dt: the step-by-step sum of a cache that grows after every step. Every run grows it (by a
            # prompt chunk and the decodes, never less), so the last run's last step holds the most.
            seconds_each, n, kv_growth = runs[0]
            area = self.kv_area + (kv * n + kv_growth * n * (n - 1) / 2) * seconds_each
            kv += kv_growth * n
            total, steps = seconds_each * n, n
            if decodes:
                first_gap = seconds_each + self.stall
                itl[first_gap] = itl.get(first_gap, 0) + decodes
                if n > 1:
                    itl[seconds_each] = itl.get(seconds_each, 0) + decodes * (n - 1)
            for k in range(1, len(runs)):
                seconds_each, n, kv_growth = runs[k]
                area += (kv * n + kv_growth * n * (n - 1) / 2) * seconds_each
                kv += kv_growth * n
                total += seconds_each * n
                steps += n
                if decodes:
                    itl[seconds_each] = itl.get(seconds_each, 0) + decodes * n
            self.kv_peak = max(self.kv_peak, kv - kv_growth)
            self.kv_area = area
        self.running_area += len(self.running) * total
        self.t += total
        self.busy += total
        return total, steps

    def _decoded(self, decodes: int, strides: int) -> None:
        """Book ``strides`` decode steps of ``decodes`` requests; completions leave."""
        self.stall = 0.0
        steps = self.steps = self.steps + strides
        tokens = decodes * strides
        self.sum_decode_context += tokens
        self.kv_used += tokens
        self.allocated += tokens
        heap = self.decoding_heap
        if heap and heap[0][0] <= steps:
            pop, versions, decoding = heapq.heappop, self.version, self.decoding
            while heap and heap[0][0] <= steps:
                _, i, version = pop(heap)
                if version == versions[i] and i in decoding:
                    self._finish(i)
        if self.decaying:
            decay = (SGLANG_RATIO_INIT - self.ratio_min) / SGLANG_RATIO_DECAY_STEPS * strides
            self.ratio = max(self.ratio_min, self.ratio - decay)
            # Reservations shrink as outputs are produced.
            self.kv_reserved = max(self.kv_reserved - decodes * strides, 0.0)

    def _stride(self, decodes: int) -> int:
        """Decode steps until the next event: a completion or the KV cache filling."""
        if not self.bulk:
            return 1
        strides = self.decoding_heap[0][0] - self.steps if self.decoding_heap else 1
        return max(min(strides, int((self.capacity - self.kv_used) // max(decodes, 1))), 1)

    def _admissible_soon(self) -> bool:
        return len(self.running) < self.max_seqs

    # -- the loop ---------------------------------------------------------------------------------
    def step(self) -> bool:
        """One scheduler iteration (or one stride of identical decode steps); False when all is done."""
        if self.open_loop:
            self._arrive_until(self.t)
        if not self.running and not self.waiting:
            upcoming = self._next_arrival_time()
            if upcoming == math.inf:
                return False
            self.t = upcoming  # idle until the next arrival
            return True
        if self.prefill_first:
            return self._step_prefill_first()
        return self._step_mixed()

    def _step_mixed(self) -> bool:
        decodes = len(self.decoding)
        preempted = False
        if self.kv_used + decodes > self.capacity:
            preempted = self._make_room(decodes)
            decodes = len(self.decoding)
        budget = self.budget - decodes
        partial = self.partial
        if partial is not None and budget > 0 and self.todo[partial] >= budget and self.bulk:
            # The partial prompt takes the whole budget (nothing else this step): the common case, in one go.
            return self._partial_strides(partial, budget, decodes)
        chunks = self._prefill_chunks(budget if budget > 0 else 0, admissions=not preempted)
        if not chunks:
            return self._decode_only(decodes) if decodes else self._idle()
        if len(chunks) == 1 and chunks[0][0] == self.partial and self.bulk:
            return self._partial_strides(*chunks[0], decodes)  # a prompt admitted alone goes on in strides
        steps = self._run_chunks(chunks, decodes)[1]
        complete = self._apply_chunks(chunks)
        if decodes:
            self._decoded(decodes, steps)
        if complete:
            self._first_tokens(complete)
        return self._partial_goes_on()

    def _partial_goes_on(self) -> bool:
        """After a step: when the partial prompt takes the whole budget next (nothing else is scheduled, as the
        next iteration would find), its steps follow here; no preemption is due, the KV cache has room."""
        i = self.partial
        if i is None or not self.bulk:
            return True
        decodes = len(self.decoding)
        take = self.budget - decodes
        if take <= 0 or self.todo[i] < take or self.kv_used + decodes > self.capacity:
            return True
        if self.open_loop:
            self._arrive_until(self.t)
        return self._partial_strides(i, take, decodes)

    def _partial_strides(self, i: int, take: int, decodes: int, *, prefill_only: bool = False) -> bool:
        """Steps in which partial prompt ``i`` takes the whole budget (``take`` tokens) beside ``decodes``
        decodes (no admissions), stride after stride until it completes or the state changes what the next
        step does. The simulation's hot path: most steps of a chunked prompt.

        ``prefill_only``: prefill steps of a prefill-first scheduler (no decodes ride along; their time
        stalls the decodes): one stride, then the scheduler decides again.
        """
        todo_list, heap, fast = self.todo, self.decoding_heap, self.fast_chunk
        while True:
            todo = todo_list[i]
            # Full chunks while more than one chunk is left; the last (possibly shorter) one completes the prompt.
            full = (todo - 1) // take
            until_completion = heap[0][0] - self.steps if decodes and heap else 1 << 30
            room = self.capacity - self.kv_used
            fit = int(room // (take + decodes))
            strides = full if full < until_completion else until_completion
            strides = fit if fit < strides else strides
            strides = strides if strides > 1 else 1
            prompt = take * strides
            last = todo - prompt
            # The last chunk can join the stride when that step would admit nobody: no request waits (a closed
            # loop sends only at completions, which end strides) and none arrives before it (checked as it ends).
            joins = (strides == full and until_completion > strides and not self.waiting
                     and room - strides * (take + decodes) >= last + decodes)
            context_before = self.prompts[i] + self.gen[i] - todo
            decode_context = self.sum_decode_context / decodes if decodes else 0.0
            join_by = self._next_arrival_time() if joins and self.open_loop else math.inf
            if fast is None:
                seconds, steps = self._run_stride(take, context_before, decodes, decode_context, strides, math.inf,
                                                  last if joins else 0, join_by)
            else:  # _run_stride's own call, inline: once per stride of every chunked prompt
                seconds, steps, self.kv_area, peak = fast(
                    take, context_before, decodes, decode_context, strides, self.kv_used, self.kv_area, self.stall,
                    self.itl, self.t, last if joins else 0, join_by)
                self.kv_peak = max(self.kv_peak, peak)
                self.running_area += len(self.running) * seconds
                self.t += seconds
                self.busy += seconds
            if steps > strides:
                prompt = todo
            todo_list[i] = todo - prompt
            self.held[i] += prompt
            self.kv_used += prompt
            self.allocated += prompt
            if decodes:
                self._decoded(decodes, steps)
            if prefill_only:
                self.stall += seconds
            if todo <= prompt:
                self._prompt_done(i)
                self._first_tokens([i])
                return True
            if prefill_only:
                return True
            decodes = len(self.decoding)
            take = self.budget - decodes
            if take <= 0 or todo_list[i] < take or self.kv_used + decodes > self.capacity:
                return True
            if self.open_loop:
                self._arrive_until(self.t)

    def _run_stride(self, take: int, context_before: float, decodes: int, decode_context: float, strides: int,
                    stop_at: float = math.inf, last: int = 0, join_by: float = math.inf) -> tuple[float, int]:
        """Run ``strides`` steps of ``take`` prompt tokens of one request (0: none) beside ``decodes`` decodes,
        as :meth:`StepCostModel.stride <deployc.planner.serving.stepcost.StepCostModel.stride>` states them
        (``stop_at``: an arrival ends the stride; ``last``: a step completing the prompt joins it when it
        ends before ``join_by``); the time they took and how many ran."""
        if self.fast_stride is not None:
            total, steps, self.kv_area, peak = self.fast_stride(
                take, context_before, decodes, decode_context, strides, self.kv_used, self.kv_area, self.stall,
                self.itl, self.t, stop_at, last, join_by)
            self.kv_peak = max(self.kv_peak, peak)
            self.running_area += len(self.running) * total
            self.t += total
            self.busy += total
            return total, steps
        # Any other step cost: its runs, cut and extended as the stride states, then booked.
        runs = self._priced(take, context_before, decodes, decode_context, strides)
        if stop_at < math.inf:
            start = self.t
            for k, (seconds_each, n, growth) in enumerate(runs):
                if stop_at < start + seconds_each * n:
                    runs = [*runs[:k], (seconds_each, max(1, math.ceil((stop_at - start) / seconds_each)), growth)]
                    break
                start += seconds_each * n
        if last > 0 and join_by > self.t + sum(s * n for s, n, _ in runs):
            runs.append((self.cost(last, 1, context_before + take * strides, decodes, decode_context + strides), 1,
                         last + decodes))
        return self._advance(runs, decodes)

    def _run_chunks(self, chunks: list[tuple[int, int]], decodes: int) -> tuple[float, int]:
        """Run one step carrying these chunks: the time it took, and 1."""
        return self._advance([self._chunk_run(chunks, decodes)], decodes)

    def _step_prefill_first(self) -> bool:
        admissible = bool(self.waiting) and len(self.running) < self.cfg.max_num_seqs and self._can_admit_kv(
            self.waiting[0])
        if self.partial is not None or admissible:
            chunks = self._prefill_chunks(self.budget, admissions=True)
            if len(chunks) == 1 and chunks[0][0] == self.partial and self.bulk:
                return self._partial_strides(*chunks[0], 0, prefill_only=True)
            if chunks:
                self.stall += self._run_chunks(chunks, 0)[0]
                self._first_tokens(self._apply_chunks(chunks))
                return True
        decodes = len(self.decoding)
        if decodes == 0:
            return self._idle()
        self._make_room(decodes)
        decodes = len(self.decoding)
        if decodes == 0:
            return True
        return self._decode_only(decodes)

    def _decode_only(self, decodes: int) -> bool:
        """Decode steps with nothing else to schedule: one, or a stride up to the next event."""
        decode_context = self.sum_decode_context / decodes
        slot = self._admissible_soon()
        upcoming = math.inf
        if self.waiting:
            # A head request that does not fit now cannot fit before a completion ends the stride (decodes
            # only take KV), and later arrivals queue behind it; SGLang's decaying reservation can let it in
            # at any step: the stride ends at the first step after which it fits.
            if slot and self.decaying:
                strides = self._steps_until_admitted(self.waiting[0], decodes, self._stride(decodes))
            else:
                strides = 1 if slot and self._can_admit_kv(self.waiting[0]) else self._stride(decodes)
        else:
            strides = self._stride(decodes)
            upcoming = self._next_arrival_time() if slot else math.inf
        # The step-by-step loop admits an arrival at the first step boundary at or after it.
        self._decoded(decodes, self._run_stride(0, 0.0, decodes, decode_context, strides, stop_at=upcoming)[1])
        return True

    def _steps_until_admitted(self, head: int, decodes: int, bound: int) -> int:
        """Decode steps (1 to ``bound``) after which ``head`` fits under the decaying reservation.

        What :meth:`_decoded` does to the state after ``k`` steps (the KV cache grows, reservations and
        the new-token ratio shrink), checked as :meth:`_can_admit_kv` would check it then: the step-by-step
        loop admits the head at the first such step, so the stride stops there. The KV tokens the head
        lacks after ``k`` steps are convex in ``k`` (the reservation × ratio is a product of non-negative,
        non-increasing convex terms; the cache grows linearly), so the steps that admit it are one interval:
        two binary searches find its start instead of trying every step.
        """
        decay = (SGLANG_RATIO_INIT - self.ratio_min) / SGLANG_RATIO_DECAY_STEPS
        ratio_now, ratio_min, reserved_now = self.ratio, self.ratio_min, self.kv_reserved
        free_now, need = self.capacity - self.kv_used, self._admission_need

        def lacking(k: int) -> float:
            ratio = max(ratio_min, ratio_now - decay * k)
            reserved = max(reserved_now - decodes * k, 0.0)
            return need(head, reserved, ratio) - (free_now - decodes * k)

        if bound <= 1 or lacking(1) <= 0:
            return 1 if bound > 1 else bound
        low, high = 1, bound - 1  # the first step after which the shortfall stops falling: its minimum
        while low < high:
            mid = (low + high) // 2
            if lacking(mid + 1) >= lacking(mid):
                high = mid
            else:
                low = mid + 1
        if lacking(low) > 0:
            return bound
        before, at = 1, low  # lacking(before) > 0 ≥ lacking(at), falling in between
        while at - before > 1:
            mid = (before + at) // 2
            if lacking(mid) <= 0:
                at = mid
            else:
                before = mid
        return at

    def _idle(self) -> bool:
        """Nothing could be scheduled this iteration."""
        if not self.running and self.waiting:
            # An empty engine that cannot admit its head request never will (longer than the KV cache
            # or, without chunked prefill, than the token budget): the engine rejects it.
            i = self.waiting.popleft()
            self.finish[i] = math.nan
            self.rejected += 1
            if self.traffic.arrivals_s is None:
                self._send(self.t)
            return True
        upcoming = self._next_arrival_time()
        if upcoming == math.inf:
            return False
        self.t = max(self.t, upcoming)
        return True

    def trace(self) -> Trace:
        return Trace(
            arrival_s=tuple(self.arrival), admitted_s=tuple(self.admitted), first_token_s=tuple(self.first),
            finish_s=tuple(self.finish), itl_samples=tuple(sorted(self.itl.items())), busy_s=self.busy,
            end_s=self.t, preemptions=self.preemptions, rejected=self.rejected,
            rejected_over_context=self.over_context, kv_token_seconds=self.kv_area,
            running_seconds=self.running_area, kv_peak_tokens=self.kv_peak, running_peak=self.running_peak,
        )
