"""A replica's requests and its KV cache: arrivals, admission under the policy's KV rule, release and preemption.

:class:`~deployc.planner.serving.replica.Replica` schedules steps on top of this state; the split keeps the
bookkeeping (who holds which KV tokens, who waits) apart from the step loop.
"""

from __future__ import annotations

import math
from collections import defaultdict, deque

from deployc.planner.serving.traffic import (
    EngineConfig,
    FastChunkStride,
    FastStride,
    SteadySteps,
    StepCost,
    Traffic,
    unbounded,
)

SGLANG_NEW_TOKEN_CAP = 4096  # SGLang caps each request's reserved output at 4096 tokens (prefill_budget.py)
SGLANG_RATIO_INIT = 0.7  # new_token_ratio init = 0.7 × schedule_conservativeness (1.0)
SGLANG_RATIO_MIN_SHARE = 0.14  # min = init × 0.14
SGLANG_RATIO_DECAY_STEPS = 600  # decays from init to min over 600 decode steps without retraction


class KvLedger:
    """Mutable state of one run: the requests and the KV cache they hold (the scheduler loop is
    :class:`~deployc.planner.serving.replica.Replica`)."""

    # Slots: the scheduler loop reads and writes these attributes millions of times a plan, and an instance
    # with more than 30 attributes in a __dict__ gets no shared-key fast path in CPython (SHARED_KEYS_MAX_SIZE).
    __slots__ = (
        "admitted", "allocated", "arrival", "block", "budget", "bulk", "busy", "capacity", "cfg", "chunked", "cost",
        "decaying", "decoding", "decoding_heap", "entered", "fast_chunk", "fast_stride", "finish", "first", "freed",
        "gen", "gen_at_admit", "held", "hit", "itl", "kv_area", "kv_peak", "kv_reserved", "kv_used", "limit",
        "max_new", "max_seqs", "n", "never_preempts", "next_arrival", "next_request", "open_loop", "outputs",
        "over_context", "pad", "partial", "preemptions", "prefill_cap", "prefill_first", "prefix_cached",
        "prefix_hits", "prefix_tokens", "prompts", "ratio", "ratio_min", "rejected", "reserved",
        "reserves_max_output", "reserves_output", "running", "running_area", "running_peak", "stall", "stalled_since",
        "steady", "steps", "sum_decode_context", "t", "todo", "traffic", "version", "waiting",
    )

    def __init__(self, cfg: EngineConfig, traffic: Traffic, cost: StepCost, horizon_requests: int,
                 *, bulk: bool = True) -> None:
        self.cfg, self.cost, self.traffic = cfg, cost, traffic
        self.steady: SteadySteps = getattr(cost, "steady_steps", unbounded)
        # A step cost may price and book a whole stride in one call (StepCostModel.stride): what the replica's
        # own runs and booking give (Replica._run_stride), in the simulation's hot path. Step by step
        # (bulk=False), the replica's own booking is the reference the strides are tested against.
        self.fast_stride: FastStride | None = getattr(cost, "stride", None) if bulk else None
        # Its steps that carry a prompt chunk (take > 0), without the dispatch: once per stride of a chunked prompt.
        self.fast_chunk: FastChunkStride | None = getattr(cost, "chunk_stride", None) if bulk else None
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
        self.itl: defaultdict[float, int] = defaultdict(int)  # gap → count
        self.busy = 0.0
        self.preemptions = 0
        self.kv_area = self.running_area = self.kv_peak = 0.0
        self.running_peak = 0
        self.next_arrival = 0  # open loop: index of the next request to arrive
        self.next_request = 0  # closed loop: index of the next request a client sends
        self.rejected = 0
        self.over_context = 0
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
        # Requests longer than this (prompt + max_tokens) are refused on arrival (see _refused).
        self.limit = math.inf if cfg.max_model_len is None else cfg.max_model_len
        # The shared prefix each request hits once it is cached: whole blocks, below its last prompt token.
        block, prefix = self.block, self.prefix_tokens
        self.prefix_hits = [max(0, min(prefix, (p - 1) // block * block)) for p in self.prompts] if prefix > 0 else []

    # -- arrivals ---------------------------------------------------------------------------------
    def start(self) -> None:
        """Closed loop: every client sends its first request at t = 0."""
        if self.traffic.arrivals_s is None:
            for _ in range(min(self.traffic.clients, self.n)):
                self._send(0.0)

    def _send(self, when: float) -> None:
        """A client sends its next request; one the engine refuses at once is answered, and it sends the next."""
        i = self.next_request
        while i < self.n:
            self.next_request = i + 1
            self.arrival[i] = when
            if self.limit < self.prompts[i] + self.max_new[i] and self._refused(i):
                i += 1
                continue
            self.waiting.append(i)
            self.todo[i] = self.prompts[i]
            return

    def _refused(self, i: int) -> bool:
        """The server refuses request ``i`` on arrival when prompt + max_tokens exceed max_model_len."""
        limit = self.cfg.max_model_len
        if limit is None or self.prompts[i] + self.max_new[i] <= limit:
            return False
        self.finish[i] = math.nan
        self.rejected += 1
        self.over_context += 1
        return True

    def _arrive_until(self, now: float) -> None:
        arrivals = self.traffic.arrivals_s
        if arrivals is None:
            return
        while self.next_arrival < self.n and arrivals[self.next_arrival] <= now:
            i = self.next_arrival
            self.next_arrival += 1
            self.arrival[i] = arrivals[i]
            if self._refused(i):
                continue
            self.todo[i] = self.traffic.prompt_tokens[i]
            self.waiting.append(i)

    def _next_arrival_time(self) -> float:
        arrivals = self.traffic.arrivals_s
        if arrivals is None or self.next_arrival >= self.n:
            return math.inf
        return arrivals[self.next_arrival]

    # -- KV accounting ----------------------------------------------------------------------------
    def _admission_need(self, i: int, reserved: float | None = None, ratio: float | None = None) -> float:
        """KV tokens that must be free for request ``i`` to be admitted under the policy.

        ``reserved`` and ``ratio``: the running requests' reserved output and SGLang's new-token ratio to
        price it at, when not the current ones (a stride looking ahead).
        """
        prompt = self.todo[i] - (self.prefix_hits[i] if self.prefix_cached else 0) + self.pad
        if not self.reserves_output:
            return prompt
        max_new = self.max_new[i]
        if self.reserves_max_output:
            return prompt + max(max_new - self.gen[i], 0)
        # SGLang: own prompt + capped output, plus every running request's remaining output × new_token_ratio
        own = min(max(max_new - self.gen[i], 0), SGLANG_NEW_TOKEN_CAP)
        return prompt + own + (self.kv_reserved if reserved is None else reserved) * (
            self.ratio if ratio is None else ratio)

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
        hit = self.prefix_hits[i] if self.prefix_cached else 0
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
        del self.running[i]
        held = self.held
        if i in self.decoding:
            # _sync inline: the tokens decoded since it last caught up are its own.
            steps = self.steps
            behind = steps - self.entered[i]
            gen = self.gen[i] + behind
            self.gen[i] = gen
            self.entered[i] = steps
            self.kv_used -= held[i] + behind + self.pad
            self.decoding.discard(i)
            self.sum_decode_context -= self.prompts[i] + gen
            self.version[i] += 1
        else:
            self.kv_used -= held[i] + self.pad
        held[i] = 0
        if self.reserves_output:
            spent = self.gen[i] - self.gen_at_admit[i] if self.decaying else 0
            self.kv_reserved = max(self.kv_reserved - max(self.reserved[i] - spent, 0), 0.0)
            self.reserved[i] = 0

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
