"""Searching one candidate precision over every valid layout of a pool, and what the search found."""

from __future__ import annotations

from attrs import frozen

from deployc.planner.emittable import backend_checks
from deployc.planner.evaluate import Candidate, Evaluated, evaluate_layout
from deployc.planner.load import Served
from deployc.planner.loadrank import rank_by_serving
from deployc.planner.models import BackendModels
from deployc.planner.parallel import LayoutCheck, SearchResult, check_layout, enumerate_layouts, rank_layouts
from deployc.planner.pins import LAYOUT_KEYS, pin_items, pinned_layouts
from deployc.planner.types import Layout
from deployc.spec.model import Percentiles


@frozen
class Search:
    """The outcome of searching one candidate precision over every valid layout."""

    candidate: Candidate
    checks: tuple[LayoutCheck, ...]
    evaluated: tuple[Evaluated, ...]
    result: SearchResult
    served: dict[Layout, Served]
    displaced: Layout | None = None  # the ranking's winner, when it missed in full and this one served (confirm.py)

    def chosen(self) -> Evaluated | None:
        """The best layout's full evaluation, if it fits."""
        best = self.result.best
        if best is None or not best.fits:
            return None
        return next(e for e in self.evaluated if e.evaluation.layout == best.layout)

    def closest(self) -> Evaluated | None:
        """The layout missing by the least memory (for the does-not-fit message)."""
        return min(self.evaluated, key=lambda e: e.evaluation.shortfall_bytes, default=None)


def search_layouts(candidate: Candidate, backend: BackendModels) -> Search:
    """Evaluate and rank every valid layout of the candidate's pool."""
    target, spec = candidate.target, candidate.target.spec
    quant = target.model.checkpoint_quant
    block = quant.block_size[-1] if quant is not None and quant.block_size else None
    checks = tuple(enumerate_layouts(target.model, gpus_per_node=candidate.gpus_per_node, nodes=candidate.nodes,
                                     gpu=target.gpu, intra_link=target.intra_node_link, weights_block_size=block))
    if any(k in pin_items(spec.plan) for k in LAYOUT_KEYS):  # the search is restricted to the pinned layout
        checks = tuple(pinned_layouts(spec.plan, checks, lambda layout: check_layout(
            target.model, layout, gpus_per_node=candidate.gpus_per_node, nodes=candidate.nodes,
            intra_link=target.intra_node_link, weights_block_size=block, gpu=target.gpu), target.model.is_moe))
    checks = backend_checks(checks, backend, target, candidate.gpus_per_node, candidate.nodes)
    evaluated = tuple(evaluate_layout(candidate, c.layout, backend) for c in checks if c.valid)
    analytic = rank_layouts([e.evaluation for e in evaluated], goal=spec.slo.goal,
                            ttft_target_ms=_tail_ms(spec.slo.ttft_ms), itl_target_ms=_tail_ms(spec.slo.itl_ms),
                            rejected=checks)
    result, served = rank_by_serving(candidate, evaluated, analytic, backend)
    return Search(candidate=candidate, checks=checks, evaluated=evaluated, result=result, served=served)


def _tail_ms(targets: Percentiles | None) -> float | None:
    """The highest-percentile target given (the analytic filter compares its estimate with it)."""
    tail = targets.tail() if targets is not None else None
    return tail[1] if tail is not None else None
