"""``deployc size`` output: the table of the cheapest deployments that serve, the frontier chart, and JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from attrs import frozen

from deployc.diagnostics import Diagnostic
from deployc.planner.serving.simulate import CLOSED_LOOP_ROUNDS, SCREEN_REQUESTS, SCREEN_ROUNDS, SIMULATED_REQUESTS
from deployc.serialise import to_data
from deployc.sizing.deployment import Deployment
from deployc.sizing.frontier import frontier_chart, pareto_frontier
from deployc.sizing.search import SCREEN_MARGIN, SizeSearch
from deployc.sizing.space import dropped_pins
from deployc.spec.model import Percentiles, SloSection, Spec

COLUMNS = ("#", "GPUs", "layout", "backend", "weights", "KV", "$/hour", "$/1M out", "out tok/s", "tok/s/GPU",
           "tok/s/user")
UNTARGETED_COLUMNS = ("TTFT p99", "ITL p99")  # the latency shown when the SLO names none
MONOTONIC_NOTE = ("Sizes above a GPU type's first one that serves are not planned: serving throughput never falls "
                  "when GPUs are added, so a larger size only costs more.")
SCREEN_NOTE = ("{screened} of the plans are screens: every layout simulated with {requests} "
               "requests per replica instead of {full:,} (a closed loop: {screen_rounds} per client after the first "
               "instead of {rounds}); each that serves or misses by less than {margin:g}× was planned in full, and "
               "the search decides on full plans only.")
NO_PRICE_NOTE = ("no price for {names}: ranked {where}by GPU count, then output tokens/s per GPU (give "
                 "slo.gpu_hour_usd for the spec's GPU, or add catalog prices)")


@frozen(kw_only=True)
class SizeReport:
    """What ``deployc size`` found, ready to print."""

    spec: Spec
    model: str
    search: SizeSearch
    gpu_source: str
    closest: Deployment | None
    closest_hint: str | None

    @property
    def frontier(self) -> tuple[Deployment, ...]:
        """The Pareto frontier over every simulated deployment."""
        return pareto_frontier(self.search.evaluated)


def _money(value: float | None, digits: int) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def latency_columns(slo: SloSection) -> tuple[str, ...]:
    """The latency columns: each target the SLO names, at its percentile (``ITL p50``), else TTFT and ITL p99.

    A table that showed p99 beside a p50 target would read as a miss when the deployment serves.
    """
    named = tuple(f"{metric} {p}" for metric, targets in _targets(slo) for p, _ in targets.given())
    return named or UNTARGETED_COLUMNS


def _targets(slo: SloSection) -> list[tuple[str, Percentiles]]:
    return [(name, t) for name, t in (("TTFT", slo.ttft_ms), ("ITL", slo.itl_ms), ("TPOT", slo.tpot_ms))
            if t is not None]


def _ms(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:,.0f} ms" if value >= 100 else f"{value:.1f} ms"


def _latency(d: Deployment, column: str) -> str:
    checked = {f"{metric} {p}": value for metric, p, _, value in d.slo_checks}
    if column in checked:
        return _ms(checked[column])
    return _ms(d.ttft_p99_ms if column == "TTFT p99" else d.itl_p99_ms if column == "ITL p99" else None)


def _row(rank: int, d: Deployment, latency: Sequence[str]) -> list[str]:
    per_user = d.tokens_per_s_per_user
    return [str(rank), f"{d.size.label()} × {d.gpu}", d.layout or "", d.backend or "", d.weights_format or "",
            d.kv_cache_dtype or "", _money(d.usd_per_hour, 2), _money(d.usd_per_million_output_tokens, 3),
            f"{d.output_tokens_per_s:,.0f}", f"{d.tokens_per_s_per_gpu:,.0f}",
            "n/a" if per_user is None else f"{per_user:.1f}", *(_latency(d, c) for c in latency)]


def table_lines(rows: Sequence[Deployment], latency: Sequence[str] = UNTARGETED_COLUMNS) -> list[str]:
    """The deployments as an aligned table (numbers right-aligned), with these ``latency`` columns."""
    columns = (*COLUMNS, *latency)
    table = [list(columns)] + [_row(i, d, latency) for i, d in enumerate(rows, 1)]
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    left = {1, 2, 3, 4, 5}
    return ["  " + "  ".join(cell.ljust(w) if i in left else cell.rjust(w)
                             for i, (cell, w) in enumerate(zip(line, widths, strict=True))).rstrip()
            for line in table]


def _workload(spec: Spec) -> str:
    w = spec.workload
    load = (f"{w.concurrency:,} concurrent users" if w.concurrency is not None
            else f"{w.request_rate_per_s:g} requests/s")
    return f"{load}, prompts {w.prompt_tokens.mean:,} / outputs {w.output_tokens.mean:,} tokens (mean)"


def _slo(spec: Spec) -> str:
    parts = [f"{name} {p} ≤ {target:,g} ms" for name, t in _targets(spec.slo) for p, target in t.given()]
    return ", ".join(parts) or "no latency target (the traffic must be kept up with)"


def closest_per_gpu(search: SizeSearch) -> dict[str, Deployment]:
    """Each GPU type without a deployment that serves: the simulated one that misses least, else its largest
    size's refusal (does not fit, or no engine can serve it)."""
    served = {d.gpu for d in search.winners}
    out: dict[str, Deployment] = {}
    for gpu in search.gpus:
        if gpu.name in served:
            continue
        mine = [d for d in search.evaluated if d.gpu == gpu.name]
        simulated = [d for d in mine if d.simulated]
        if simulated:
            out[gpu.name] = min(simulated, key=lambda d: (d.miss_ratio or 0.0, d.size.gpus))
        elif mine:
            out[gpu.name] = max(mine, key=lambda d: d.size.gpus)
    return out


def _not_serving_lines(report: SizeReport) -> list[str]:
    closest = closest_per_gpu(report.search)
    if not closest or not report.search.winners:
        return []  # nothing serves: the closest of all is printed instead
    top = report.search.sizes[-1].gpus
    lines = [f"GPU types that do not serve on up to {top} GPUs, and their closest:"]
    for gpu, d in closest.items():
        lines.append(f"  {gpu}: {d.label()}: {d.summary}" if d.simulated else f"  {gpu}: {d.status.replace('_', ' ')} "
                     f"on {d.size.label()}: {d.summary}")
    return lines


def _price_lines(report: SizeReport) -> list[str]:
    seen: dict[str, str | None] = {}
    for d in report.search.evaluated:
        if d.simulated and d.gpu not in seen:
            seen[d.gpu] = d.price_source if d.usd_per_hour is not None else None
    priced = [f"{gpu}: {source}" for gpu, source in seen.items() if source is not None]
    missing = [gpu for gpu, source in seen.items() if source is None]
    lines = [f"prices: {line}" for line in priced]
    if missing:
        where = "after the priced ones " if priced else ""
        lines.append("prices: " + NO_PRICE_NOTE.format(names=", ".join(missing), where=where))
    return lines


def size_text(report: SizeReport) -> str:
    """The human-readable report."""
    s, search = report.spec, report.search
    counts = ", ".join(size.label() for size in search.sizes)
    lines = [f"deployc size {s.name}: {report.model}, {_workload(s)}; SLO: {_slo(s)}",
             f"searched: {', '.join(g.name for g in search.gpus)} ({report.gpu_source}) × {counts} GPUs × backend "
             f"and precision; {len(search.evaluated)} plans, each layout simulated under the traffic", ""]
    if search.winners:
        lines.append("Cheapest deployments that serve the traffic within the SLO (one per GPU type, cheapest first):")
        lines += table_lines(search.winners, latency_columns(s.slo))
    else:
        lines.append(f"No deployment serves the traffic within the SLO on up to {search.sizes[-1].gpus} GPUs.")
        if report.closest is not None:
            lines.append(f"Closest: {report.closest.label()}: {report.closest.summary}")
            if report.closest_hint:
                lines.append(f"  hint: {report.closest_hint}")
    lines += _not_serving_lines(report)
    lines += _price_lines(report)
    dropped = dropped_pins(s)
    if dropped:
        lines.append(f"the spec's [plan] pins of {', '.join(dropped)} describe its own GPUs: not applied in the search")
    lines += ["", "Pareto frontier of every simulated deployment (more is better on both axes):"]
    lines += ["  " + line if line else "" for line in frontier_chart(search.evaluated, report.frontier)]
    lines += ["", MONOTONIC_NOTE]
    screen = screen_note(search)
    if screen:
        lines.append(screen)
    return "\n".join(lines)


def screen_note(search: SizeSearch) -> str | None:
    """How many of the plans are screens, and what that means (None when none is)."""
    screened = sum(d.screened for d in search.evaluated)
    if not screened:
        return None
    return SCREEN_NOTE.format(screened=screened, requests=SCREEN_REQUESTS, full=SIMULATED_REQUESTS,
                              screen_rounds=SCREEN_ROUNDS, rounds=CLOSED_LOOP_ROUNDS, margin=SCREEN_MARGIN)


def nothing_serves(report: SizeReport, file: str) -> Diagnostic:
    """The error when no deployment in the search serves the traffic, with the closest and its fixes."""
    search = report.search
    closest = report.closest
    hint = (f"closest: {closest.label()}: {closest.summary}" if closest is not None
            else "nothing fits in memory: try larger GPUs or more of them (--max-gpus)")
    if report.closest_hint:
        hint += f"; {report.closest_hint}"
    return Diagnostic(rule="DPC324", file=file, message=(
        f"no deployment on {', '.join(g.name for g in search.gpus)} with up to {search.sizes[-1].gpus} GPUs "
        "serves the traffic within the SLO"), hint=hint)


def size_json(report: SizeReport) -> dict[str, Any]:
    """The report as a JSON document."""
    search = report.search
    return {
        "spec": report.spec.name, "model": report.model,
        "gpus": [g.name for g in search.gpus], "gpu_source": report.gpu_source,
        "sizes": to_data(list(search.sizes)),
        "serves": bool(search.winners),
        "deployments": to_data(list(search.winners)),
        "frontier": to_data(list(report.frontier)),
        "evaluated": to_data(list(search.evaluated)),
        "closest": to_data(report.closest),
        "closest_per_gpu": {gpu: to_data(d) for gpu, d in closest_per_gpu(search).items()},
        "closest_hint": report.closest_hint,
        "notes": [MONOTONIC_NOTE, *filter(None, [screen_note(search)])],
    }


def size_json_text(report: SizeReport) -> str:
    """The JSON document, indented, with a final newline."""
    return json.dumps(size_json(report), indent=2, ensure_ascii=False) + "\n"
