"""The Pareto frontier of sized deployments (output tokens/s per GPU against tokens/s per user) and its
terminal chart: plain text, fixed size, the same bytes for the same input."""

from __future__ import annotations

from collections.abc import Sequence

from deployc.sizing.deployment import Deployment

CHART_WIDTH = 60  # columns of the plotting area (fits an 80-column terminal with the axis labels)
CHART_HEIGHT = 14  # rows of the plotting area
SERVES_MARK = "*"
MISSES_MARK = "o"
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _point(d: Deployment) -> tuple[float, float]:
    return (d.tokens_per_s_per_user or 0.0, d.tokens_per_s_per_gpu)


def pareto_frontier(deployments: Sequence[Deployment]) -> tuple[Deployment, ...]:
    """The simulated deployments no other beats on both axes, by tokens/s per user ascending.

    A deployment is on the frontier when no other gives at least as many output tokens/s per GPU
    and at least as many tokens/s per user, and more of one. Duplicated points keep the first.
    """
    points = [d for d in deployments if d.simulated and d.tokens_per_s_per_user is not None]
    frontier: list[Deployment] = []
    for i, d in enumerate(points):
        x, y = _point(d)
        if not any(ox >= x and oy >= y and ((ox, oy) != (x, y) or j < i)
                   for j, (ox, oy) in enumerate(_point(o) for o in points) if j != i):
            frontier.append(d)
    return tuple(sorted(frontier, key=lambda d: (_point(d), d.size.gpus, d.gpu)))


def _cell(value: float, top: float, cells: int) -> int:
    return 0 if top <= 0 else min(round(value / top * (cells - 1)), cells - 1)


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def frontier_chart(deployments: Sequence[Deployment], frontier: Sequence[Deployment]) -> list[str]:
    """The chart's lines: frontier points lettered (upper case serves, lower case misses), other
    simulated deployments ``+`` (serves) or ``.`` (misses), then a legend of the letters."""
    points = [d for d in deployments if d.simulated and d.tokens_per_s_per_user is not None]
    if not points:
        return ["(no deployment fitted, nothing to chart)"]
    x_top = max(_point(d)[0] for d in points)
    y_top = max(_point(d)[1] for d in points)
    grid = [[" "] * CHART_WIDTH for _ in range(CHART_HEIGHT)]
    on_frontier = {id(d) for d in frontier}
    for d in points:  # others first: frontier letters are drawn over them
        if id(d) not in on_frontier:
            x, y = _point(d)
            row, col = CHART_HEIGHT - 1 - _cell(y, y_top, CHART_HEIGHT), _cell(x, x_top, CHART_WIDTH)
            if grid[row][col] == " " or (grid[row][col] == MISSES_MARK and d.serves):
                grid[row][col] = SERVES_MARK if d.serves else MISSES_MARK
    letters = {}
    for letter, d in zip(LETTERS, frontier, strict=False):
        x, y = _point(d)
        row, col = CHART_HEIGHT - 1 - _cell(y, y_top, CHART_HEIGHT), _cell(x, x_top, CHART_WIDTH)
        mark = letter if d.serves else letter.lower()
        if grid[row][col] not in LETTERS + LETTERS.lower():  # an earlier letter keeps a shared cell
            grid[row][col] = mark
        letters[id(d)] = mark
    labels = {0: _number(y_top), CHART_HEIGHT // 2: _number(y_top / 2), CHART_HEIGHT - 1: "0"}
    width = max(len(v) for v in labels.values())
    lines = ["output tokens/s per GPU"]
    for row, cells in enumerate(grid):
        tick = "+" if row in labels else "|"
        lines.append(f"{labels.get(row, ''):>{width}} {tick}{''.join(cells)}".rstrip())
    lines.append(f"{'':>{width}} +{'-' * CHART_WIDTH}")
    right = _number(x_top)
    lines.append(f"{'':>{width}}  0{right:>{CHART_WIDTH - 1}}")
    lines.append(f"{'':>{width}}  {'tokens/s per user (1 / median TPOT)':^{CHART_WIDTH}}".rstrip())
    lines.append("")
    for d in frontier:
        lines.append(f"  {letters[id(d)]}  {d.label()}: {d.tokens_per_s_per_gpu:,.0f} tokens/s per GPU, "
                     f"{d.tokens_per_s_per_user or 0.0:.1f} tokens/s per user, " + _status_word(d))
    rest = len(points) - len(frontier)
    if rest:
        lines.append(f"  {SERVES_MARK} serves, {MISSES_MARK} misses: {rest} other simulated deployment"
                     f"{'s' if rest != 1 else ''} below the frontier")
    return lines


def _status_word(d: Deployment) -> str:
    return {"serves": "serves", "misses_slo": "misses the SLO", "overloaded": "cannot keep up"}.get(d.status, d.status)
