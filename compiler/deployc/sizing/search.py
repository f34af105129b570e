"""The sizing search: for each GPU type, the smallest size that serves the spec's traffic within its SLO.

Every candidate is planned by the planner (``make_plan`` on the spec evolved to that GPU type,
size, backend and precision), which searches layouts, KV dtype and knobs and simulates the traffic.
Sizes are tried smallest first and, for a GPU type, none is tried above the first that serves:
serving throughput never falls when GPUs are added (the planner's layouts on N GPUs are among those
on 2N, a property its tests check), so a larger size only costs more. Other backends and precisions
are then tried only below that size, largest first, until one does not serve (by the same property,
smaller sizes would not serve either).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext

from attrs import frozen

from deployc.api import LoadedSpec
from deployc.catalog import GPU
from deployc.diagnostics import PlanError, SpecError
from deployc.planner.load import screening
from deployc.planner.plan import Plan
from deployc.planner.planner import make_plan
from deployc.plugins import PluginRegistry
from deployc.resolution import resolve
from deployc.sizing.deployment import Deployment, Status, from_plan, unplanned
from deployc.sizing.space import Size, Variant, same_choice, sized_spec, sizes, variants
from deployc.sizing.workers import map_in_order
from deployc.target import Target

NOT_FIT_RULES = frozenset({"DPC301", "DPC302"})
# A screened deployment (every layout simulated with SCREEN_REQUESTS instead of the full counts, see
# planner.load.screening) that misses its SLO by at least this factor is kept as screened; one that serves or misses
# by less is planned in full, and the search decides on full plans only. Measured by bench/size_screen.py on every
# single-class sample × 4 GPU types up to 16 GPUs (149 simulated deployments): no deployment that serves in full
# was screened out, and the largest screen miss ratio of one that serves in full was 1.11.
SCREEN_MARGIN = 1.3
NEAR_RATIO = 2 * SCREEN_MARGIN  # a miss by less at N GPUs makes 2N likely to serve or miss by less than the margin


@frozen(kw_only=True)
class SizeSearch:
    """Everything planned, and each GPU type's cheapest deployment that serves (if any)."""

    gpus: tuple[GPU, ...]
    sizes: tuple[Size, ...]
    evaluated: tuple[Deployment, ...]
    winners: tuple[Deployment, ...]  # each GPU type's cheapest that serves, cheapest first

    def closest(self) -> Deployment | None:
        """The simulated deployment that misses by the least (for when nothing serves)."""
        simulated = [d for d in self.evaluated if d.simulated]
        return min(simulated, key=lambda d: (d.miss_ratio or 0.0, d.size.gpus, d.gpu), default=None)


def plan_one(loaded: LoadedSpec, target: Target, registry: PluginRegistry, gpu: GPU, size: Size,
             variant: Variant, *, quick: bool = False) -> Deployment:
    """Plan the spec on ``size`` × ``gpu`` with the variant; problems become the deployment's status.

    ``quick``: simulate as a screen does (``planner.load.screening``); the deployment is marked screened.
    """
    spec = sized_spec(loaded.spec, gpu, target.gpu, size, variant)
    try:
        sized, _ = resolve(loaded.document, spec, registry)
        with screening() if quick else nullcontext():
            plan = make_plan(sized, registry.models(), fixes=False, pin_reasons=False, other_backends=False)
    except SpecError as exc:
        return unplanned(gpu.name, size, variant, "not_possible", exc.diagnostics[0].message)
    except PlanError as exc:
        first = exc.diagnostics[0]
        status: Status = "does_not_fit" if first.rule in NOT_FIT_RULES else "not_possible"
        return unplanned(gpu.name, size, variant, status, first.message)
    return from_plan(plan, size, variant, screened=quick)


def _likely_near(previous: Deployment | None) -> bool:
    """Whether the next deployment is likely to serve or miss narrowly, so a screen would only delay its full plan.

    The next size up after a miss by less than ``NEAR_RATIO`` (twice the GPUs serve up to about twice the
    load), or the next size down after a deployment that serves.
    """
    if previous is None or not previous.simulated:
        return False
    return previous.serves or (previous.miss_ratio or 0.0) < NEAR_RATIO


def screen_one(loaded: LoadedSpec, target: Target, registry: PluginRegistry, gpu: GPU, size: Size,
               variant: Variant, previous: Deployment | None = None) -> Deployment:
    """Screen the deployment; plan it in full unless the screen shows it misses by ``SCREEN_MARGIN`` or more.

    Memory and engine refusals need no simulation: the screen's answer is the full plan's. What the search
    decides on (a deployment serves, or misses narrowly) is always the full plan's verdict. After ``previous``
    (the neighbouring size's deployment) a likely near one is planned in full without a screen.
    """
    if _likely_near(previous):
        return plan_one(loaded, target, registry, gpu, size, variant)
    screened = plan_one(loaded, target, registry, gpu, size, variant, quick=True)
    if not screened.simulated or (not screened.serves and (screened.miss_ratio or 0.0) >= SCREEN_MARGIN):
        return screened
    return plan_one(loaded, target, registry, gpu, size, variant)


def _search_gpu(loaded: LoadedSpec, target: Target, registry: PluginRegistry, gpu: GPU,
                ladder: Sequence[Size]) -> tuple[list[Deployment], Deployment | None]:
    """Every deployment planned for one GPU type, and its cheapest one that serves."""
    options = variants(loaded.spec, gpu, target.model, registry.models().infos())
    own, others = options[0], options[1:]
    planned: list[Deployment] = []
    own_at: dict[int, Deployment] = {}
    best: int | None = None
    previous: Deployment | None = None
    for index, size in enumerate(ladder):
        found = previous = screen_one(loaded, target, registry, gpu, size, own, previous)
        planned.append(found)
        own_at[index] = found
        if found.serves:
            best = index
            break
    winner = own_at[best] if best is not None else None
    for variant in others:
        index = (best if best is not None else len(ladder)) - 1
        previous = None
        while index >= 0:
            mine = own_at.get(index)
            if mine is not None and mine.simulated and same_choice(variant, mine.backend or "",
                                                                    mine.weights_format or ""):
                break  # the spec's own plan at this size already made this choice, and it did not serve
            found = previous = screen_one(loaded, target, registry, gpu, ladder[index], variant, previous)
            planned.append(found)
            if not found.serves:
                break
            best, winner = index, found
            index -= 1
    return planned, winner


def cost_key(d: Deployment) -> tuple[object, ...]:
    """Cheapest first: priced rows by $/hour, then unpriced ones by GPU count; ties to more tokens/s per GPU."""
    if d.usd_per_hour is not None:
        return (0, round(d.usd_per_hour, 6), -round(d.tokens_per_s_per_gpu, 3), d.gpu)
    return (1, d.size.gpus, -round(d.tokens_per_s_per_gpu, 3), d.gpu)


def size_search(loaded: LoadedSpec, target: Target, registry: PluginRegistry, gpus: Sequence[GPU],
                max_gpus: int, *, jobs: int = 1) -> SizeSearch:
    """Search every GPU type (in up to ``jobs`` worker processes: the answer does not depend on how many);
    the winners sorted cheapest first."""
    ladder = sizes(max_gpus, has_network=target.network is not None)
    evaluated: list[Deployment] = []
    winners: list[Deployment] = []
    searched = map_in_order(lambda i: _search_gpu(loaded, target, registry, gpus[i], ladder), len(gpus), jobs)
    for planned, winner in searched:
        evaluated += planned
        if winner is not None:
            winners.append(winner)
    return SizeSearch(gpus=tuple(gpus), sizes=ladder, evaluated=tuple(evaluated),
                      winners=tuple(sorted(winners, key=cost_key)))


def replan_with_fixes(loaded: LoadedSpec, target: Target, registry: PluginRegistry, d: Deployment,
                      gpus: Sequence[GPU]) -> Plan:
    """The deployment planned again with the planner's ranked, re-simulated fixes (for the closest miss)."""
    gpu = next(g for g in gpus if g.name == d.gpu)
    sized, _ = resolve(loaded.document, sized_spec(loaded.spec, gpu, target.gpu, d.size, d.variant), registry)
    return make_plan(sized, registry.models())
