"""The sizing entry point: load the spec, search, and find the closest miss when nothing serves."""

from __future__ import annotations

from pathlib import Path

from attrs import frozen

from deployc.api import LoadedSpec, resolve_spec
from deployc.diagnostics import Severity
from deployc.plugins import PluginRegistry, default_registry
from deployc.sizing.deployment import from_plan
from deployc.sizing.report import SizeReport
from deployc.sizing.search import replan_with_fixes, size_search
from deployc.sizing.space import DEFAULT_MAX_GPUS, SizeUsageError, default_gpus, parse_gpus
from deployc.target import Target


@frozen(kw_only=True)
class Sized:
    """The report and what ``--write`` needs."""

    report: SizeReport
    loaded: LoadedSpec
    target: Target


def size(path: Path, *, gpus: str | None = None, max_gpus: int = DEFAULT_MAX_GPUS,
         registry: PluginRegistry | None = None, display_name: str | None = None, jobs: int = 1) -> Sized:
    """Size a spec: the cheapest deployment per GPU type that serves it (raises SpecError on a bad spec,
    :class:`~deployc.sizing.space.SizeUsageError` on bad arguments).

    ``jobs``: GPU types searched at once, each in a forked worker process (see :mod:`deployc.sizing.workers`);
    the report is the same for any number.
    """
    if jobs < 1:
        raise SizeUsageError(f"--jobs: expected a positive number of processes, got {jobs}")
    registry = registry or default_registry()
    loaded, target, _ = resolve_spec(path, registry, display_name)
    extra = registry.catalog_gpus()
    if gpus is not None:
        chosen, source = parse_gpus(gpus, extra), "--gpus"
        if target.gpu not in chosen:  # the spec's own GPU is always searched: it is what the user has
            chosen, source = (target.gpu, *chosen), f"--gpus and the spec's {target.gpu.name}"
    else:
        chosen, source = default_gpus(target.gpu, extra)
    search = size_search(loaded, target, registry, chosen, max_gpus, jobs=jobs)
    closest = hint = None
    if not search.winners:
        closest = search.closest()
        if closest is not None:  # planned again with the planner's ranked, re-simulated fixes
            plan = replan_with_fixes(loaded, target, registry, closest, chosen)
            hint = next((d.hint for d in plan.diagnostics if d.severity is Severity.ERROR and d.hint), None)
            if closest.screened:  # the figures shown come from the full plan, not the screen
                closest = from_plan(plan, closest.size, closest.variant)
    report = SizeReport(spec=loaded.spec, model=target.model.name, search=search, gpu_source=source,
                        closest=closest, closest_hint=hint)
    return Sized(report=report, loaded=loaded, target=target)
