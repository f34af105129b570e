"""Asking the backend, before a layout is chosen, whether its emitter can deploy it.

The planner's own layout rules (:mod:`deployc.planner.parallel`) are the engines' rules; this is
the backend's: how it launches, places and ranks servers (``deployc_layout_support``).  A layout the
backend refuses becomes an invalid :class:`LayoutCheck` with the backend's reason, so it is never
chosen and EXPLAIN.md lists why; when it refuses every layout the backend cannot serve the spec.
"""

from __future__ import annotations

from collections.abc import Iterable

from attrs import evolve

from deployc.planner.models import BackendModels
from deployc.planner.parallel import LayoutCheck
from deployc.target import Target


def backend_checks(checks: Iterable[LayoutCheck], models: BackendModels, target: Target,
                   gpus_per_node: int, nodes: int) -> tuple[LayoutCheck, ...]:
    """The checks with every valid layout the backend cannot emit turned invalid, its reason attached."""
    backend = models.name
    out = []
    for check in checks:
        verdict = models.layout_support(target, check.layout, gpus_per_node, nodes) if check.valid \
            else None
        if verdict is None or verdict.supported:
            out.append(check)
            continue
        why = f"{backend} cannot emit it: {verdict.reason}" + (f" ({verdict.alternative})" if verdict.alternative
                                                                else "")
        out.append(evolve(check, valid=False, reasons=(*check.reasons, why), refused_by=backend))
    return tuple(out)


def refusal(checks: Iterable[LayoutCheck]) -> str | None:
    """Why the backend cannot serve the spec, when it refused every layout the engine rules allowed."""
    checks = tuple(checks)
    refused = [c for c in checks if c.refused_by is not None]
    if not refused or any(c.valid for c in checks):
        return None
    # The backend's words once each, without its name: the caller names the backend.
    reasons = dict.fromkeys(c.reasons[-1].removeprefix(f"{c.refused_by} cannot emit it: ") for c in refused)
    return "its emitter cannot deploy any valid layout: " + "; ".join(reasons)
