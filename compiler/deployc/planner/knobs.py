"""Serving knobs, each a Decision with its reason and numbers.

Pure functions of numbers the memory plan and the performance model computed; the
performance model is passed in as callables so the knobs stay testable on their own.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from attrs import frozen

from deployc.catalog.interconnects import LinkKind
from deployc.planner.decisions import Alternative, Decision, Quantity
from deployc.planner.workload import WorkloadShape
from deployc.spec.model import Goal, WorkloadKind

TOKEN_BUDGETS = (256, 512, 1024, 2048, 4096, 8192, 16384)
CONTEXT_ROUNDING_TOKENS = 256
# With no latency target, a larger per-step budget prefills faster at the cost of decode stalls.
DEFAULT_BUDGET = {"latency": 2048, "throughput": 8192, "cost": 16384}
# A prefix shorter than one KV block is never shared by a block-granular prefix cache.
MIN_SHARED_BLOCKS = 1


@frozen(kw_only=True)
class ContextChoice:
    """The max model length, and whether the KV cache forced it down."""

    max_model_len: int
    decision: Decision
    capped: bool


def round_up(value: int, step: int) -> int:
    """Round up to a multiple of ``step``."""
    return -(-value // step) * step


def max_model_len(shape: WorkloadShape, spec_context: int | None, model_limit: int,
                  kv_capacity_tokens: int, block_tokens: int) -> ContextChoice:
    """Longest sequence: what the spec or workload needs, never above the model's limit or the KV capacity."""
    if spec_context is not None:
        wanted, why = spec_context, "set in the spec (model.max_context_tokens)"
    else:
        wanted = round_up(shape.needed_context_tokens, CONTEXT_ROUNDING_TOKENS)
        why = (f"the longest request: {shape.prompt.max_tokens:,} prompt + {shape.output.max_tokens:,} output "
               f"tokens, rounded up to {CONTEXT_ROUNDING_TOKENS}")
    numbers = [Quantity("model limit (max_position_embeddings)", model_limit, "tokens"),
               Quantity("KV capacity per replica", kv_capacity_tokens, "tokens")]
    rejected: list[Alternative] = []
    value = min(wanted, model_limit)
    if wanted > model_limit:
        rejected.append(Alternative(wanted, f"above the model's limit of {model_limit:,} tokens"))
        why += (f"; capped to the model's limit of {model_limit:,} tokens: the engine refuses a request whose "
                "prompt + max_tokens is longer")
    capped = False
    if value > kv_capacity_tokens:
        capped = True
        rejected.append(Alternative(value, f"one sequence would need {value:,} tokens of KV cache; "
                                           f"the cache holds {kv_capacity_tokens:,}"))
        value = max(kv_capacity_tokens // block_tokens * block_tokens, block_tokens)
        why += f"; capped to the KV capacity of {kv_capacity_tokens:,} tokens"
    decision = Decision(id="max_model_len", value=value, rule="DPD301", reason=why,
                        numbers=tuple(numbers), rejected=tuple(rejected))
    return ContextChoice(max_model_len=value, decision=decision, capped=capped)


def max_num_seqs(demand: float, demand_reason: str, kv_limit: float, itl_limit: int | None,
                 single_step_ms: float | None = None, *, slots: int | None = None, target: str = "ITL") -> Decision:
    """Sequences per step: the load's demand, bounded by what the KV cache holds and by the ITL target.

    ``single_step_ms``: one sequence's decode step when even that is above the ITL target: no batch meets the
    target, so it does not bound the batch (one sequence a step would miss it too, and queue the load), and the
    reason says so. ``slots``: an open loop's room for bursts, offered above
    the demand where the limits allow (arrivals are not capped by clients). ``target``: the per-token target's
    name (ITL, or TPOT when only that is given).
    """
    want = max(1, math.ceil(demand - 1e-9), slots or 0)
    limits = [(math.floor(kv_limit), "the KV cache holds this many typical requests")]
    if itl_limit is not None and single_step_ms is None:
        limits.append((itl_limit, f"the largest batch whose decode step meets the {target} target"))
    value, reason = want, f"room for every request the load keeps in flight: {demand_reason}"
    if slots is not None and want > math.ceil(demand - 1e-9):
        value, reason = want, f"{slots:,} slots, room for bursts: {demand_reason}"
    rejected = []
    for limit, why in limits:
        if max(limit, 1) < value:
            rejected.append(Alternative(value, f"{why} ({max(limit, 1)})"))
            value = max(limit, 1)
            reason = (f"{why}; the rest of the load ({demand_reason}) waits in the queue" if value < demand
                      else f"{why}: room for bursts above the load's {demand:.1f} ({demand_reason})")
    if single_step_ms is not None:
        # One sequence a step would miss the target too: capping the batch would only queue the rest of the load
        # (an L4 at 0.5 req/s with a 10 ms TPOT target was called 5.4× overloaded with max_num_seqs = 1).
        reason += (f"; the {target} target does not bound it: one sequence's decode step alone takes "
                   f"{single_step_ms:.1f} ms, above the target at any batch")
        if value > 1:
            rejected.append(Alternative(1, f"misses the {target} target too ({single_step_ms:.1f} ms a step) and "
                                           "queues the rest of the load"))
    numbers: tuple[Quantity, ...] = (Quantity("requests to hold per replica", round(demand, 2), ""),
                                     Quantity("typical requests the KV cache holds", round(kv_limit, 2), ""))
    if slots is not None:
        numbers += (Quantity("slots an open loop is offered (vLLM's default on A100 and smaller GPUs)", slots, ""),)
    return Decision(id="max_num_seqs", value=value, rule="DPD302", reason=reason, numbers=numbers,
                    rejected=tuple(rejected))


# A step's price: (prompt tokens, prompts, prompt tokens before the chunk, decodes, their mean context) → seconds;
# the serving simulation's step cost (serving/traffic.py StepCost), so the rule and the simulation price alike.
StepPrice = Callable[[int, int, float, int, float], float]


@frozen(kw_only=True)
class BudgetStep:
    """What a step that carries a full token budget holds, as the engine's scheduler composes it.

    ``mixed`` (vLLM V1, TensorRT-LLM): the ``decodes`` of the planned batch (``max_num_seqs``) and, for the
    rest of the budget, a prompt's chunk (the budget counts every scheduled token, decodes too:
    SERVING-SIM.md). Otherwise (prefill first, SGLang) the chunk is the whole budget and runs alone
    while the decodes wait: their gap is that step and their own decode step.
    """

    decodes: int
    decode_context: float  # the decodes' mean context (a mean prompt and half a mean output)
    prompt_tokens: float  # a mean prompt
    cached_tokens: float  # of it, served by the prefix cache (never prefilled)
    mixed: bool = True

    def chunk(self, budget: int) -> tuple[int, float]:
        """The prompt chunk of a full step at ``budget`` tokens, and the prompt tokens before it: the mean start
        of the chunks a mean prompt is cut into (a chunk's attention reads every token before it)."""
        tokens = max(budget - self.decodes, 0) if self.mixed else budget
        todo = max(self.prompt_tokens - self.cached_tokens, 0.0)
        pieces = max(math.ceil(todo / tokens), 1) if tokens else 1
        return tokens, self.cached_tokens + tokens * (pieces - 1) / 2

    def seconds(self, budget: int, price: StepPrice) -> float:
        """What the decodes wait between two tokens when a full step at ``budget`` tokens runs, by ``price``."""
        tokens, before = self.chunk(budget)
        decode = price(0, 0, 0.0, self.decodes, self.decode_context)
        if tokens <= 0:
            return decode
        if self.mixed:
            return price(tokens, 1, before, self.decodes, self.decode_context)
        return price(tokens, 1, before, 0, 0.0) + decode

    def label(self, budget: int) -> str:
        """The step at ``budget`` tokens, in words."""
        tokens, before = self.chunk(budget)
        if self.mixed:
            return (f"step of {budget:,} tokens: {self.decodes:,} decodes beside a {tokens:,}-token prompt chunk "
                    f"({before:,.0f} prompt tokens before it)")
        return (f"a {budget:,}-token prefill step ({before:,.0f} prompt tokens before it) and a decode step of "
                f"{self.decodes:,}")


def token_budget(goal: Goal, itl_target_ms: float | None, percentile: str, step: BudgetStep,
                 price: StepPrice) -> Decision:
    """Tokens per engine step with chunked prefill: a prompt chunk shares each step with the decodes.

    A larger budget prefills long prompts in fewer steps (lower TTFT) but stretches the steps
    it lands in (higher ITL for every running request). Engines require the budget to be at
    least ``max_num_seqs`` (every running request decodes in one step): ``step.decodes``. Each
    budget's step is priced by ``price``, the serving simulation's step cost, so the figures
    quoted here are what the simulation charges for the same step.
    """
    decode_step_ms = price(0, 0, 0.0, step.decodes, step.decode_context) * 1e3
    numbers = [Quantity(f"decode step at the planned batch ({step.decodes} sequences, "
                        f"{step.decode_context:,.0f} tokens of context)", round(decode_step_ms, 3), "ms")]
    floor = step.decodes
    if itl_target_ms is None:
        value = max(DEFAULT_BUDGET[goal], floor)
        return Decision(id="max_num_batched_tokens", value=value, rule="DPD303",
                        reason=f"no ITL target: the {goal} goal's budget (smaller = steadier ITL, larger = faster "
                               "prefill)", numbers=tuple(numbers))
    fitting: list[int] = []
    rejected = []
    steps: dict[int, float] = {}
    for budget in TOKEN_BUDGETS:
        if budget < floor:
            continue
        ms = step.seconds(budget, price) * 1e3
        steps[budget] = ms
        numbers.append(Quantity(step.label(budget), round(ms, 2), "ms"))
        if ms <= itl_target_ms:
            fitting.append(budget)
        else:
            rejected.append(Alternative(budget, f"a step carrying a full chunk takes {ms:.1f} ms, above the "
                                                f"{percentile} target of {itl_target_ms:g} ms"))
    shared = ("when a prompt chunk is co-scheduled" if step.mixed
              else "when a decode waits for a prefill step")
    if fitting:
        value = max(fitting)
        reason = (f"the largest per-step budget whose steps stay within the {percentile} target "
                  f"({itl_target_ms:g} ms) {shared}: {value:,} tokens ({steps[value]:.1f} ms)")
    else:
        value = min(steps, default=floor)
        reason = (f"no budget keeps a step carrying a prompt chunk within the {percentile} target "
                  f"({itl_target_ms:g} ms): the smallest, {value:,} tokens, stretches those steps least "
                  f"({steps.get(value, decode_step_ms):.1f} ms)")
        rejected = [a for a in rejected if a.value != value]
    return Decision(id="max_num_batched_tokens", value=value, rule="DPD303", reason=reason, numbers=tuple(numbers),
                    rejected=tuple(rejected))


def reuses_prefix(shape: WorkloadShape, kind: WorkloadKind, block_tokens: int) -> bool:
    """Whether prefix caching is on: prompts share a prefix of at least one KV block, or turns re-send history."""
    return shape.prefix_hit_tokens >= MIN_SHARED_BLOCKS * block_tokens or kind in ("chat", "agent")


def prefix_caching(shape: WorkloadShape, kind: WorkloadKind, block_tokens: int, ttft_without_ms: float,
                   ttft_with_ms: float) -> Decision:
    """On when prompts share a prefix of at least one KV block (or turns re-send history); with the TTFT effect."""
    shared = shape.prefix_hit_tokens
    numbers = (Quantity("shared prefix per prompt", shared, "tokens"),
               Quantity("mean prompt", shape.prompt.mean, "tokens"),
               Quantity("TTFT without prefix reuse", round(ttft_without_ms, 1), "ms"),
               Quantity("TTFT with the shared prefix cached", round(ttft_with_ms, 1), "ms"))
    if not reuses_prefix(shape, kind, block_tokens):
        return Decision(id="prefix_caching", value=False, rule="DPD305", numbers=numbers, reason=(
            f"{kind} prompts share no prefix (workload.shared_prefix_tokens = 0): the cache would never hit, so it "
            "only adds hashing and keeps dead blocks"), rejected=(Alternative(True, "no prefix is shared"),))
    if shared >= MIN_SHARED_BLOCKS * block_tokens:
        return Decision(id="prefix_caching", value=True, rule="DPD305", numbers=numbers, reason=(
            f"{shared:,} of {shape.prompt.mean:,} prompt tokens ({shared / shape.prompt.mean:.0%}) are a shared "
            f"prefix: a hit skips their prefill, TTFT {ttft_without_ms:.0f} → {ttft_with_ms:.0f} ms; watch the hit "
            "rate metric, a low rate means the prefix is not really shared"))
    return Decision(id="prefix_caching", value=True, rule="DPD305", numbers=numbers, reason=(
        f"no shared prefix is declared, but {kind} turns re-send their history; hashing costs little. Declare "
        "workload.shared_prefix_tokens to get the expected TTFT effect"))


def custom_all_reduce(link_kind: LinkKind, tp: int) -> Decision:
    """vLLM's custom all-reduce kernel needs P2P; on PCIe beyond two GPUs NCCL is the safe choice."""
    if tp > 2 and link_kind == "pcie":
        return Decision(id="custom_all_reduce", value=False, rule="DPD307", reason=(
            f"TP{tp} over PCIe: the custom all-reduce kernel is only fast and supported for 2 PCIe GPUs "
            "(vllm#8303); NCCL is used instead"), rejected=(Alternative(True, "unsupported beyond 2 PCIe GPUs"),))
    return Decision(id="custom_all_reduce", value=True, rule="DPD307",
                    reason="one-shot all-reduce kernel for small decode messages" if tp > 1 else
                    "left at the engine's default (on, no flag emitted): with TP1 no all-reduce runs, so it has no "
                    "effect")


def cuda_graphs(spare_bytes: int, graph_bytes: int, tp: int) -> Decision:
    """CUDA graphs cut per-step launch overhead; off (eager) only when their memory does not fit."""
    numbers = (Quantity("CUDA graph memory", round(graph_bytes / (1 << 30), 3), "GiB"),
               Quantity("memory left after the plan", round(spare_bytes / (1 << 30), 3), "GiB"))
    if spare_bytes >= 0:
        risk = (f" With TP{tp}, graph capture also holds NCCL buffers: if start-up hangs or fails while capturing, "
                "lower the memory fraction or run eager (10-20% slower decode)") if tp > 1 else ""
        return Decision(id="cuda_graphs", value=True, rule="DPD306", numbers=numbers,
                        reason="graphs fit in the memory left; they remove kernel-launch overhead from decode steps"
                               + "." + risk)
    return Decision(id="cuda_graphs", value=False, rule="DPD306", numbers=numbers,
                    reason="graph memory does not fit: eager mode, 10-20% slower decode, but it starts",
                    rejected=(Alternative(True, "out of memory while capturing (USER-PAINS #2)"),))
