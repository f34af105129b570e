"""EXPLAIN.md and ``deployc explain``: renderings of the plan's Decisions, never hand-written prose."""

from __future__ import annotations

import re
from collections.abc import Iterable

from deployc.contract.backend import Emission
from deployc.contract.decisions import Decision, format_number
from deployc.planner.plan import Plan
from deployc.planner.types import PoolPlan
from deployc.render.bars import memory_bar
from deployc.render.image import emitted_image
from deployc.render.text import serving_lines
from deployc.render.units import count, gib, tokens

_LONGEST_TICKS = re.compile(r"`+")
_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")


def code(text: object) -> str:
    """``text`` as a Markdown code span no content can close (CommonMark: the fence is a longer run of backticks).

    Spec values (a flag value, an image name) reach EXPLAIN.md; a backtick in one must not end the span
    and turn the rest into Markdown or HTML.
    """
    value = " ".join(str(text).splitlines())
    fence = "`" * (max((len(m) for m in _LONGEST_TICKS.findall(value)), default=0) + 1)
    pad = " " if value.startswith("`") or value.endswith("`") else ""
    return f"{fence}{pad}{value}{pad}{fence}"


def prose(text: object) -> str:
    """Text written by deployc or a plugin, which may quote spec values: no HTML tag, autolink or inline link
    can start in it (``<`` before a letter becomes ``&lt;``, ``](`` loses its meaning), and it stays on one line."""
    value = " ".join(str(text).splitlines())
    return _TAG_START.sub("&lt;", value).replace("](", "]\\(")


def _cell(text: str) -> str:
    """A table cell: GitHub splits cells at every unescaped ``|``, inside code spans too."""
    return text.replace("|", "\\|")


def decision_lines(decision: Decision) -> list[str]:
    """One decision as Markdown: value and rule, reason, numbers, rejected alternatives."""
    lines = [f"### {prose(decision.id)} = {prose(decision.value)}  ({code(decision.rule)})", "",
             prose(decision.reason), ""]
    lines += [f"- {prose(q.render())}" for q in decision.numbers]
    if decision.rejected:
        lines += ["", "Rejected:"] + [f"- {prose(a.value)}: {prose(a.reason)}" for a in decision.rejected]
    return [*lines, ""]


def _pool_lines(pool: PoolPlan, several: bool) -> list[str]:
    m, perf, layout = pool.memory, pool.performance, pool.layout
    title = f"## Pool {code(pool.name)} ({pool.share:.0%} of requests)" if several else "## Plan"
    lines = [title, "",
             f"- Parallelism: {layout.label()} on {layout.gpus_used} GPUs ({layout.dp} replica(s))",
             f"- Memory fraction: {m.memory_fraction} of {m.memory_fraction_kind.replace('_', ' ')} "
             f"({m.backend} {m.engine_version})",
             f"- KV cache: {gib(m.per_gpu.kv_cache_bytes)} per GPU, {format_number(m.kv_bytes_per_token)} B/token "
             f"per GPU ({format_number(m.kv_bytes_per_token_model)} B/token for the whole model), capacity "
             f"{tokens(m.kv_capacity_tokens)} per replica",
             f"- Max concurrency: {m.max_concurrency_at_max_context:g} at the max context "
             f"({pool.knobs.max_model_len:,} tokens), {m.max_concurrency_at_typical_request:g} at the typical request",
             # The analytic steady state only filters layouts; the served figures are the simulation's
             # (the same lines `deployc plan` prints), so EXPLAIN.md and plan.json never disagree.
             f"- Analytic steady state (filters layouts before the simulation): at a batch of "
             f"{count(perf.batch_size)}, TTFT {perf.ttft_ms:.0f} ms, ITL {perf.itl_ms:.1f} ms, "
             f"{perf.tokens_per_s:,.0f} output tokens/s ({perf.tokens_per_s_per_gpu:,.0f} per GPU), "
             f"{perf.bound}-bound ({perf.bound_share:.0%} of the decode step)",
             *_serving_bullets(pool),
             "", "Memory per GPU:", "", "```", *memory_bar(m.per_gpu), "```", ""]
    if perf.step_breakdown:
        lines += ["Decode step breakdown:", ""] + [f"- {q.render()}" for q in perf.step_breakdown] + [""]
    return lines


def _serving_bullets(pool: PoolPlan) -> list[str]:
    """The simulated service as bullets: the lines ``deployc plan`` prints, in the same words."""
    lines = serving_lines(pool)
    if not lines:
        return []
    head, *rest = (line.strip() for line in lines)
    return [f"- Serving (simulated, {head.removeprefix('simulated (').removesuffix('):')}):",
            *(f"  - {line}" for line in rest)]


def _assumptions(plan: Plan) -> list[str]:
    seen: list[str] = []
    for pool in plan.pools:
        for text in (*pool.memory.assumptions, *pool.performance.assumptions):
            if text not in seen:
                seen.append(text)
    return seen


def _flag_lines(emission: Emission) -> Iterable[str]:
    yield "## Settings and why"
    yield ""
    yield "| setting | value | why | decision |"
    yield "|---|---|---|---|"
    for f in emission.flags:
        value = code(f.value) if f.value not in (None, "") else "``"
        yield (f"| {_cell(code(f.flag))} | {_cell(value)} | {prose(f.reason).replace('|', '/')} | "
               f"{_cell(prose(f.decision or ''))} |")
    yield ""


def diagnostics_lines(plan: Plan) -> list[str]:
    """The plan's diagnostics under a heading, each with its hint (an SLO miss's ranked, re-simulated fixes)."""
    if not plan.diagnostics:
        return []
    return ["## Diagnostics", ""] + [f"- {d.severity.value} {d.rule}: {prose(d.message)}" + (
        f" ({prose(d.hint)})" if d.hint else "") for d in plan.diagnostics] + [""]


def explain_markdown(plan: Plan, emission: Emission | None) -> str:
    """The full EXPLAIN.md."""
    t = plan.target
    b = plan.backend
    lines = [prose(f"# {t.spec.name}: {t.model.name} on {t.gpus_total} × {t.gpu.name}"), "",
             prose(f"Generated by deployc {plan.deployc_version} for {b.engine} {b.engine_version} ")
             + f"({code(emitted_image(plan, emission))}) from {code(t.spec_file.rsplit('/', 1)[-1])}.", ""]
    several = len(plan.pools) > 1
    for pool in plan.pools:
        lines += _pool_lines(pool, several)
    lines += ["## Decisions", ""]
    for decision in (*plan.decisions, *(emission.decisions if emission else ())):
        lines += decision_lines(decision)
    if emission is not None and emission.flags:
        lines += list(_flag_lines(emission))
    lines += diagnostics_lines(plan)
    lines += ["## Assumptions", ""] + [f"- {prose(a)}" for a in _assumptions(plan)] + [""]
    return "\n".join(lines)
