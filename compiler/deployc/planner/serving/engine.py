"""One engine replica's scheduler, step by step: continuous batching under a token budget and a KV cache.

A discrete-event model of what ``../shared/design/SERVING-SIM.md`` read in the pinned engines'
schedulers, parameterised by the backend's :class:`~deployc.contract.backend.SchedulerPolicy`:

- every step runs the decodes (one token per running request) and, under the token budget, prompt
  chunks: the one partially prefilled request first, then FCFS admissions (``mixed``); or a prefill
  step alone whenever one can form, the decodes waiting (``prefill_first``);
- admission stops at the first request that does not fit (head-of-line blocking): ``max_num_seqs``,
  the budget (without chunked prefill a prompt must fit whole), and the KV rule of the policy;
- decode grows the KV cache by one token per request per step; when it runs out, requests are
  preempted and later recomputed (``newest_recompute``, ``fewest_output_recompute``), or the policy
  reserved enough at admission never to run out (``never``);
- a shared prefix is computed once and then hit by every later request (whole KV blocks), and held
  once in the cache.

KV is counted in tokens with half a block of padding per request (blocks fill one token at a time).
Stretches of identical steps (the same decodes, the same prompt chunk, the same price) are advanced
in one stride up to the next event: a completion, an admissible arrival, the KV cache filling, the
partial prompt's last chunk, or the step's price changing on the step-cost grid (``steady_steps``).
Every step of a stride is therefore the step the step-by-step loop would run (``run_replica(...,
bulk=False)`` is that loop, kept as the reference the tests compare with): the same result, at a
cost proportional to events rather than tokens.
"""

from __future__ import annotations

import gc
import heapq
import math
from collections import deque
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


def _unbounded(prefill_tokens: int, context_before: float, context_step: float, decodes: int,
               decode_context: float) -> int:
    """A step-cost function that states no grid is priced independently of the contexts (test costs)."""
    del prefill_tokens, context_before, context_step, decodes, decode_context
    return 1 << 30

SGLANG_NEW_TOKEN_CAP = 4096  # SGLang caps each request's reserved output at 4096 tokens (prefill_budget.py)
SGLANG_RATIO_INIT = 0.7  # new_token_ratio init = 0.7 × schedule_conservativeness (1.0)
SGLANG_RATIO_MIN_SHARE = 0.14  # min = init × 0.14
SGLANG_RATIO_DECAY_STEPS = 600  # decays from init to min over 600 decode steps without retraction


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
    rejected: int
    kv_token_seconds: float  # ∫ KV tokens in use dt
    running_seconds: float  # ∫ running requests dt
    kv_peak_tokens: float
    running_peak: int


class _Replica:
    """Mutable state of one run; :func:`run_replica` is the way in."""

    def __init__(self, cfg: EngineConfig, traffic: Traffic, cost: StepCost, horizon_requests: int,
                 *, bulk: bool = True) -> None:
        self.cfg, self.cost, self.traffic = cfg, cost, traffic
        self.steady: SteadySteps = getattr(cost, "steady_steps", _unbounded)
        # A step cost may price a whole stride in one call (StepCostModel.runs); the same runs as below.
        self.fast_runs: Callable[[int, float, int, float, int], list[Run]] | None = getattr(cost, "runs", None)
        self.bulk = bulk
        n = len(traffic.prompt_tokens)
        self.n = min(n, horizon_requests)
        self.arrival = [math.inf] * self.n
        self.admitted = [math.inf] * self.n
        self.first = [math.inf] * self.n
        self.finish = [math.inf] * self.n
        self.gen = [0] * self.n  # output tokens produced
        self.todo = [0] * self.n  # prompt tokens (plus recomputed output) still to prefill
        self.hit = [0] * self.n  # prefix tokens served from the cache
        self.held = [0] * self.n  # KV tokens this request holds privately
        self.reserved = [0] * self.n  # KV tokens reserved at admission (reservation policies)
        self.gen_at_admit = [0] * self.n
        self.entered = [0] * self.n  # decode step count when the request last caught up (see _sync)
        self.version = [0] * self.n
        self.stalled_since = [math.nan] * self.n  # last token time of a preempted request
        # A preempted request's cached blocks (resume_from_cache): tokens, KV allocated so far, free tokens ahead.
        self.freed: dict[int, tuple[float, float, float]] = {}
        self.waiting: deque[int] = deque()
        self.running: dict[int, None] = {}  # admission order (newest last)
        self.partial: int | None = None  # the request being prefilled across steps
        self.decoding_heap: list[tuple[int, int, int]] = []  # (global step it finishes at, request, version)
        self.decoding: set[int] = set()
        self.sum_decode_context = 0.0
        self.steps = 0  # decode steps so far (every decoding request gets a token each)
        self.kv_used = self.allocated = 0.0
        self.kv_reserved = 0.0
        self.prefix_cached = False
        self.t = 0.0
        self.stall = 0.0  # prefill-only time since the last decode step (prefill_first)
        self.itl: dict[float, int] = {}
        self.busy = 0.0
        self.preemptions = 0
        self.kv_area = self.running_area = self.kv_peak = 0.0
        self.running_peak = 0
        self.next_arrival = 0  # open loop: index of the next request to arrive
        self.next_request = 0  # closed loop: index of the next request a client sends
        self.rejected = 0
        self.ratio = SGLANG_RATIO_INIT
        self.ratio_min = SGLANG_RATIO_INIT * SGLANG_RATIO_MIN_SHARE
        self.pad = (cfg.kv_block_tokens - 1) / 2  # mean unused tokens in a request's last block
        self._hoist(cfg, traffic)

    def _hoist(self, cfg: EngineConfig, traffic: Traffic) -> None:
        """Hot-path constants: the loop runs thousands of times per simulation, attribute chains add up."""
        self.capacity = cfg.kv_capacity_tokens
        self.max_seqs = cfg.max_num_seqs
        self.never_preempts = cfg.policy.preemption == "never"
        self.decaying = cfg.policy.kv_admission == "prompt_and_decaying_output"
        self.open_loop = traffic.arrivals_s is not None
        self.prefill_first = cfg.policy.batching == "prefill_first"
        self.prompts, self.outputs, self.max_new = traffic.prompt_tokens, traffic.output_tokens, traffic.max_new_tokens
        self.block = cfg.kv_block_tokens
        self.prefix_tokens = cfg.prefix_tokens
        self.reserves_max_output = cfg.policy.kv_admission == "prompt_and_max_output"
        self.reserves_output = cfg.policy.kv_admission != "prompt"
        self.chunked = cfg.chunked_prefill
        self.prefill_cap = cfg.policy.max_prefill_tokens
        self.budget = cfg.token_budget

    # -- arrivals ---------------------------------------------------------------------------------
    def start(self) -> None:
        """Closed loop: every client sends its first request at t = 0."""
        if self.traffic.arrivals_s is None:
            for _ in range(min(self.traffic.clients, self.n)):
                self._send(0.0)

    def _send(self, when: float) -> None:
        i = self.next_request
        if i >= self.n:
            return
        self.next_request = i + 1
        self.arrival[i] = when
        self.waiting.append(i)
        self.todo[i] = self.prompts[i]

    def _arrive_until(self, now: float) -> None:
        arrivals = self.traffic.arrivals_s
        if arrivals is None:
            return
        while self.next_arrival < self.n and arrivals[self.next_arrival] <= now:
            i = self.next_arrival
            self.next_arrival += 1
            self.arrival[i] = arrivals[i]
            self.todo[i] = self.traffic.prompt_tokens[i]
            self.waiting.append(i)

    def _next_arrival_time(self) -> float:
        arrivals = self.traffic.arrivals_s
        if arrivals is None or self.next_arrival >= self.n:
            return math.inf
        return arrivals[self.next_arrival]

    # -- KV accounting ----------------------------------------------------------------------------
    def _prefix_for(self, i: int) -> int:
        if not self.prefix_cached or self.prefix_tokens <= 0:
            return 0
        block = self.block
        below_prompt = (self.prompts[i] - 1) // block * block
        return max(0, min(self.prefix_tokens, below_prompt))

    def _admission_need(self, i: int) -> float:
        """KV tokens that must be free for request ``i`` to be admitted under the policy."""
        prompt = self.todo[i] - (self._prefix_for(i) if self.prefix_cached else 0) + self.pad
        if not self.reserves_output:
            return prompt
        max_new = self.max_new[i]
        if self.reserves_max_output:
            return prompt + max(max_new - self.gen[i], 0)
        # SGLang: own prompt + capped output, plus every running request's remaining output × new_token_ratio
        own = min(max(max_new - self.gen[i], 0), SGLANG_NEW_TOKEN_CAP)
        return prompt + own + self.kv_reserved * self.ratio

    def _can_admit_kv(self, i: int, committed: float = 0.0) -> bool:
        """Whether request ``i`` fits, ``committed`` KV tokens having been handed out earlier in this step.

        The engines allocate as they schedule: vLLM's allocate_slots takes each admitted chunk's blocks
        before the next waiting request is tried, SGLang's PrefillAdder subtracts each added request
        from rem_total_tokens; a second admission in the same step sees the first one's blocks gone.
        """
        if self.reserves_max_output:
            return self.kv_reserved + self._admission_need(i) <= self.capacity
        return self._admission_need(i) <= self.capacity - self.kv_used - committed

    # -- scheduling -------------------------------------------------------------------------------
    def _admit(self, i: int) -> None:
        self.waiting.popleft()
        running = self.running
        running[i] = None
        self.admitted[i] = min(self.admitted[i], self.t)
        hit = self._prefix_for(i) if self.prefix_cached else 0
        self.hit[i] = hit
        self.todo[i] -= hit
        self.held[i] = 0
        if self.freed and i in self.freed:
            # Its blocks still cached (those not yet reused) are hit: in use again, not recomputed.
            tokens, allocated_then, ahead = self.freed.pop(i)
            block = self.block
            survived = max(min(tokens - max(self.allocated - allocated_then - ahead, 0.0), tokens), 0.0)
            cap = (self.prompts[i] + self.gen[i] - 1) // block * block
            reused = min(int(survived) // block * block, cap)
            self.todo[i] -= reused
            self.held[i] = reused
            self.kv_used += reused
        self.gen_at_admit[i] = self.gen[i]
        if self.reserves_output:
            out_left = max(self.max_new[i] - self.gen[i], 0)
            if self.decaying:
                out_left = min(out_left, SGLANG_NEW_TOKEN_CAP)
            rest = self.todo[i] + out_left if self.reserves_max_output else out_left
            self.reserved[i] = rest
            self.kv_reserved += rest
        self.kv_used += self.pad
        self.allocated += self.pad  # KV allocated in all (it consumes the free queue from its head)
        self.running_peak = max(self.running_peak, len(running))

    def _sync(self, i: int) -> None:
        """Bring a decoding request's token counts up to date (strides do not touch every request)."""
        if i in self.decoding:
            behind = self.steps - self.entered[i]
            self.gen[i] += behind
            self.held[i] += behind
            self.entered[i] = self.steps

    def _release(self, i: int) -> None:
        decoding = i in self.decoding
        if decoding:  # _sync inline
            behind = self.steps - self.entered[i]
            self.gen[i] += behind
            self.held[i] += behind
            self.entered[i] = self.steps
        del self.running[i]
        self.kv_used -= self.held[i] + self.pad
        if self.reserves_output:
            spent = self.gen[i] - self.gen_at_admit[i] if self.decaying else 0
            self.kv_reserved = max(self.kv_reserved - max(self.reserved[i] - spent, 0), 0.0)
            self.reserved[i] = 0
        self.held[i] = 0
        if decoding:
            self.decoding.discard(i)
            self.sum_decode_context -= self.prompts[i] + self.gen[i]
            self.version[i] += 1

    def _preempt(self, victim: int) -> None:
        """Free the victim's KV and send it back to the front of the queue; it recomputes everything."""
        self._sync(victim)
        self.preemptions += 1
        if victim == self.partial:
            self.partial = None
        if self.gen[victim] > 0:
            self.stalled_since[victim] = self.t
        held = self.held[victim]
        self._release(victim)
        self.todo[victim] = self.traffic.prompt_tokens[victim] + self.gen[victim]
        if self.cfg.policy.resume_from_cache:
            cached = held // self.cfg.kv_block_tokens * self.cfg.kv_block_tokens  # full blocks only
            self.freed[victim] = (cached, self.allocated, self.capacity - self.kv_used - cached)
        self.waiting.appendleft(victim)
        if self.cfg.policy.kv_admission == "prompt_and_decaying_output":
            self.ratio = SGLANG_RATIO_INIT  # after a retraction SGLang re-estimates from progress; reset is close

    def _victim(self) -> int:
        if self.cfg.policy.preemption == "fewest_output_recompute":
            for r in self.running:
                self._sync(r)
            return min(self.running, key=lambda r: (self.gen[r], -self.traffic.prompt_tokens[r]))
        return next(reversed(self.running))

    def _make_room(self, tokens: float) -> bool:
        """Preempt until ``tokens`` more KV tokens fit; False when nothing could be evicted."""
        preempted = False
        if self.never_preempts or self.kv_used + tokens <= self.capacity:
            return preempted
        while self.kv_used + tokens > self.cfg.kv_capacity_tokens and self.running:
            victim = self._victim()
            if victim in self.decoding:
                tokens -= 1
            self._preempt(victim)
            preempted = True
        return preempted

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
            need = todo[i] - (self._prefix_for(i) if self.prefix_cached else 0)
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

    def _apply_chunks(self, chunks: list[tuple[int, int]], prompt: int | None = None) -> list[int]:
        """Allocate the chunks' KV (a stride's ``prompt`` tokens for a lone chunk); the requests now complete."""
        complete = []
        todo, held = self.todo, self.held
        for i, chunk in chunks:
            take = chunk if prompt is None else prompt
            todo[i] -= take
            held[i] += take
            self.kv_used += take
            self.allocated += take
            if todo[i] <= 0:
                complete.append(i)
                if i == self.partial:
                    self.partial = None
                if self.hit[i] == 0 and self.prefix_tokens > 0 and not self.prefix_cached:
                    self.prefix_cached = True
                    self.kv_used += self.prefix_tokens  # the shared prefix stays cached once
            elif self.partial is None:
                self.partial = i
        return complete

    def _chunk_cost(self, chunks: list[tuple[int, int]], decodes: int) -> float:
        """One step carrying these chunks."""
        prompts, gen, todo = self.prompts, self.gen, self.todo
        tokens, context_before = 0, 0
        for i, c in chunks:
            tokens += c
            context_before += prompts[i] + gen[i] - todo[i]
        decode_context = self.sum_decode_context / decodes if decodes else 0.0
        return self.cost(tokens, len(chunks), context_before / len(chunks), decodes, decode_context)

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
        if self.fast_runs is not None:
            return self.fast_runs(take, context_before, decodes, decode_context, strides)
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
            total, area, steps = 0.0, self.kv_area, 0
            for seconds_each, n, kv_growth in runs:
                # ∫ KV dt: the step-by-step sum of a cache that grows after every step.
                area += (kv * n + kv_growth * n * (n - 1) / 2) * seconds_each
                peak = kv + kv_growth * (n - 1)
                self.kv_peak = max(self.kv_peak, peak)
                kv += kv_growth * n
                total += seconds_each * n
                if decodes:
                    rest = n
                    if steps == 0:
                        first_gap = seconds_each + self.stall
                        itl[first_gap] = itl.get(first_gap, 0) + decodes
                        rest = n - 1
                    if rest:
                        itl[seconds_each] = itl.get(seconds_each, 0) + decodes * rest
                steps += n
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
        preempted = self.kv_used + decodes > self.capacity and self._make_room(decodes)
        decodes = len(self.decoding)
        budget = max(self.cfg.token_budget - decodes, 0)
        chunks = self._prefill_chunks(budget, admissions=not preempted)
        if not chunks:
            return self._decode_only(decodes) if decodes else self._idle()
        while True:
            runs, prompt = self._chunk_runs(chunks, decodes)
            steps = self._advance(runs, decodes)[1]
            complete = self._apply_chunks(chunks, prompt)
            if decodes:
                self._decoded(decodes, steps)
            if complete:
                self._first_tokens(complete)
                return True
            # A completion ended the stride and the partial prompt goes on: the next iteration would
            # give it the whole budget again and admit nobody, so carry on here (the same steps).
            i = self.partial
            decodes = len(self.decoding)
            budget = self.cfg.token_budget - decodes
            if (not self.bulk or i is None or budget <= 0 or self.todo[i] < budget
                    or self.kv_used + decodes > self.capacity):
                return True
            if self.open_loop:
                self._arrive_until(self.t)
            chunks = [(i, budget)]

    def _chunk_runs(self, chunks: list[tuple[int, int]], decodes: int) -> tuple[list[Run], int | None]:
        """This step, or the steps ahead while one long prompt is chunked (same chunk, same decodes, no
        admissions), by price; and the partial prompt's tokens they compute (None: each chunk once)."""
        if not self.bulk or len(chunks) != 1 or chunks[0][0] != self.partial:
            return [(self._chunk_cost(chunks, decodes), 1, sum(c for _, c in chunks) + decodes)], None
        i, take = chunks[0]
        todo = self.todo[i]
        # Full chunks while more than one chunk is left; the last (possibly shorter) one completes the prompt.
        full = (todo - 1) // take
        until_completion = self.decoding_heap[0][0] - self.steps if decodes and self.decoding_heap else 1 << 30
        room = self.capacity - self.kv_used
        strides = max(min(full, until_completion, int(room // (take + decodes))), 1)
        decode_context = self.sum_decode_context / decodes if decodes else 0.0
        context_before = self.traffic.prompt_tokens[i] + self.gen[i] - todo
        runs = self._priced(take, context_before, decodes, decode_context, strides)
        prompt = take * strides
        last = todo - prompt
        # The last chunk can join the stride when that step would admit nobody: no request waits (a
        # closed loop sends only at completions, which end strides) and none arrives before it.
        if (strides == full and until_completion > strides and not self.waiting
                and room - strides * (take + decodes) >= last + decodes
                and (not self.open_loop or self._next_arrival_time() > self.t + sum(s * n for s, n, _ in runs))):
            runs.append((self.cost(last, 1, context_before + prompt, decodes, decode_context + strides), 1,
                         last + decodes))
            prompt = todo
        return runs, prompt

    def _step_prefill_first(self) -> bool:
        admissible = bool(self.waiting) and len(self.running) < self.cfg.max_num_seqs and self._can_admit_kv(
            self.waiting[0])
        if self.partial is not None or admissible:
            chunks = self._prefill_chunks(self.cfg.token_budget, admissions=True)
            if chunks:
                runs, prompt = self._chunk_runs(chunks, 0)
                self.stall += self._advance(runs)[0]
                self._first_tokens(self._apply_chunks(chunks, prompt))
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
            # at any step, so that policy goes one step at a time.
            strides = 1 if slot and (self.decaying or self._can_admit_kv(self.waiting[0])) else self._stride(decodes)
        else:
            strides = self._stride(decodes)
            upcoming = self._next_arrival_time() if slot else math.inf
        runs = self._priced(0, 0.0, decodes, decode_context, strides)
        if strides > 1 and upcoming < math.inf:
            # The step-by-step loop admits the arrival at the first step boundary at or after it.
            start = self.t
            for k, (seconds_each, n, growth) in enumerate(runs):
                if upcoming < start + seconds_each * n:
                    runs = [*runs[:k], (seconds_each, max(1, math.ceil((upcoming - start) / seconds_each)), growth)]
                    break
                start += seconds_each * n
        self._decoded(decodes, self._advance(runs, decodes)[1])
        return True

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
            end_s=self.t, preemptions=self.preemptions, rejected=self.rejected, kv_token_seconds=self.kv_area,
            running_seconds=self.running_area, kv_peak_tokens=self.kv_peak, running_peak=self.running_peak,
        )


def run_replica(cfg: EngineConfig, traffic: Traffic, cost: StepCost, *, max_iterations: int = 20_000_000,
                bulk: bool = True) -> Trace:
    """Serve ``traffic`` on one replica until every request finished; deterministic for the same inputs.

    ``bulk=False`` runs every engine step on its own (the reference the strides must equal).
    """
    # The run makes many small tuples and no reference cycles: the cycle collector would only walk the
    # caller's whole heap (the plan, the catalogs) again and again, so it is paused for the run.
    collecting = gc.isenabled()
    gc.disable()
    try:
        replica = _Replica(cfg, traffic, cost, len(traffic.prompt_tokens), bulk=bulk)
        replica.start()
        for _ in range(max_iterations):
            if not replica.step():
                break
        return replica.trace()
    finally:
        if collecting:
            gc.enable()
