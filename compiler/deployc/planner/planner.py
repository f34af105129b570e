"""The planner: from a Target to a Plan, every choice a Decision.

Order of work: activation dtype → backend (rules, then capability vetoes) → for each pool:
weight format and KV dtype candidates → every valid parallel layout evaluated (memory with
the backend's overheads, performance) and ranked against the SLO and the goal → knobs.
"""

from __future__ import annotations

import math

from attrs import frozen

from deployc import __version__
from deployc.backend import BackendInfo, OverheadQuery
from deployc.catalog import param_counts
from deployc.diagnostics import Diagnostic, PlanError, Severity
from deployc.planner import knobs as knob_rules
from deployc.planner.backend_choice import backend_decision, rank_backends
from deployc.planner.decisions import Alternative, Decision, Quantity
from deployc.planner.evaluate import Candidate, evaluate_layout
from deployc.planner.fixes import infeasible_diagnostic
from deployc.planner.parallel import enumerate_layouts, pp_layer_split, rank_layouts
from deployc.planner.plan import Plan
from deployc.planner.pools import split_gpus
from deployc.planner.precision import (
    WeightChoice,
    activation_dtype,
    explain_weights,
    kv_dtype_bytes,
    kv_dtype_candidates,
    weight_candidates,
)
from deployc.planner.types import Knobs, PoolPlan
from deployc.planner.workload import WorkloadShape, workload_shapes
from deployc.plugins import PluginRegistry
from deployc.target import Target


class _Vetoed(Exception):
    """The backend cannot serve this spec at all (every precision vetoed)."""


@frozen
class _PoolResult:
    pool: PoolPlan
    decisions: tuple[Decision, ...]
    diagnostics: tuple[Diagnostic, ...]


def make_plan(target: Target, registry: PluginRegistry, *, backend_override: str | None = None,
              warnings: list[Diagnostic] | None = None) -> Plan:
    """Plan a resolved spec; raise :class:`PlanError` with ranked fixes when nothing fits."""
    spec = target.spec
    dtype_decision = activation_dtype(spec, target.model, target.gpu)
    forced = backend_override or (spec.operations.backend if spec.operations.backend != "auto" else None)
    ranking = rank_backends(spec, registry.names(), target.gpu.vendor)
    order = [forced] if forced else list(ranking.order)
    if not order:
        raise PlanError([Diagnostic(rule="DPC105", message="no installed backend can serve this spec",
                                    hint="; ".join(f"{k}: {v}" for k, v in ranking.reasons.items()) or None)])
    vetoes: dict[str, str] = {}
    last_error: PlanError | None = None
    for name in order:
        try:
            pools = _plan_pools(target, registry, name, str(dtype_decision.value))
        except _Vetoed as exc:
            vetoes[name] = str(exc)
            continue
        except PlanError as exc:
            if forced:
                raise
            last_error = exc
            vetoes[name] = exc.diagnostics[0].message
            continue
        info = registry.info(name)
        decisions = [dtype_decision, backend_decision(spec, name, ranking, vetoes)]
        diagnostics = list(warnings or [])
        for result in pools:
            decisions += result.decisions
            diagnostics += result.diagnostics
        return Plan(deployc_version=__version__, target=target, backend=info,
                    pools=tuple(r.pool for r in pools), decisions=tuple(decisions),
                    diagnostics=tuple(diagnostics))
    if last_error is not None:
        raise last_error
    raise PlanError([Diagnostic(rule="DPC401", message="every candidate backend refused this spec: " + "; ".join(
        f"{k}: {v}" for k, v in vetoes.items()), hint="see `deployc backends` and docs/backends/")])


def _plan_pools(target: Target, registry: PluginRegistry, backend: str, dtype: str) -> list[_PoolResult]:
    shapes = workload_shapes(target.spec)
    allocation = split_gpus(target, shapes)
    several = len(shapes) > 1
    results = []
    for shape, (gpus_per_node, nodes) in zip(shapes, allocation.gpus, strict=True):
        result = _plan_pool(target, registry, backend, dtype, shape, gpus_per_node, nodes, several)
        results.append(result)
    if several:
        results[0] = _PoolResult(results[0].pool, (allocation.decision, *results[0].decisions),
                                 results[0].diagnostics)
    return results


def _plan_pool(target: Target, registry: PluginRegistry, backend: str, dtype: str, shape: WorkloadShape,
               gpus_per_node: int, nodes: int, several: bool) -> _PoolResult:
    spec, model, gpu = target.spec, target.model, target.gpu
    prefix = f"{shape.name}." if several else ""
    block = model.checkpoint_quant.block_size[-1] if model.checkpoint_quant and model.checkpoint_quant.block_size \
        else None
    checks = enumerate_layouts(model, gpus_per_node=gpus_per_node, nodes=nodes, gpu=gpu,
                               intra_link=target.intra_node_link, weights_block_size=block)
    layouts = [c.layout for c in checks if c.valid]
    rejected_weights: list[Alternative] = []
    best = None
    for choice in weight_candidates(spec, model, gpu, dtype):
        for kv_dtype in kv_dtype_candidates(spec, dtype, gpu):
            capability = registry.capability(backend, target, choice.weights_format, kv_dtype)
            if not capability.supported:
                rejected_weights.append(Alternative(f"{choice.weights_format}/{kv_dtype} KV", capability.reason))
                continue
            candidate = Candidate(target=target, backend=backend, dtype=dtype, weights=choice, kv_dtype=kv_dtype,
                                  shape=shape, gpus_per_node=gpus_per_node, nodes=nodes,
                                  kernel=capability.kernel)
            evaluations = [evaluate_layout(candidate, layout, registry) for layout in layouts]
            search = rank_layouts([e.evaluation for e in evaluations], goal=spec.slo.goal,
                                  ttft_target_ms=spec.slo.ttft_ms.p99 if spec.slo.ttft_ms else None,
                                  itl_target_ms=spec.slo.itl_ms.p99 if spec.slo.itl_ms else None)
            detail = {id(e.evaluation): e for e in evaluations}
            if search.best is not None and search.best.fits:
                best = (candidate, detail[id(search.best)], search, checks)
                break
            rejected_weights.append(Alternative(f"{choice.weights_format}/{kv_dtype} KV", _why_not(search, evaluations)))
            if best is None and evaluations:
                last = (candidate, min(evaluations, key=lambda e: e.evaluation.shortfall_bytes), search, checks)
        if best is not None:
            break
    if best is None:
        if not layouts:
            raise PlanError([Diagnostic(rule="DPC302", message=f"no valid parallel layout for {model.name} on "
                                        f"{gpus_per_node * nodes} × {gpu.name}", hint="; ".join(
                                            f"{c.layout.label()}: {', '.join(c.reasons)}" for c in checks[:6]))])
        if "last" not in locals():
            raise _Vetoed("; ".join(f"{a.value}: {a.reason}" for a in rejected_weights))
        raise PlanError([infeasible_diagnostic(target, last[1], rejected_weights, registry, backend)])
    candidate, chosen, search, checks = best
    return _finish_pool(target, registry, candidate, chosen, search, checks, rejected_weights, prefix)


def _why_not(search: object, evaluations: list[object]) -> str:
    return "does not fit on any valid layout"


def _finish_pool(target: Target, registry: PluginRegistry, candidate: Candidate, chosen: object, search: object,
                 checks: object, rejected_weights: list[Alternative], prefix: str) -> _PoolResult:
    raise NotImplementedError
