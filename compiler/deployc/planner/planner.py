"""The planner: from a Target to a Plan, every choice a Decision.

Order of work: activation dtype → backend (the articles' rules, then capability vetoes) → per
pool: weight-format and KV-dtype candidates → every valid parallel layout evaluated (weights,
the backend's overheads, memory, performance) and ranked against the SLO and the goal →
serving knobs.  When nothing fits, the error carries the cheapest fixes, each re-planned.
"""

from __future__ import annotations

from collections.abc import Sequence

from attrs import evolve

from deployc import __version__
from deployc.contract.kinds import ActivationDtype
from deployc.diagnostics import Diagnostic, PlanError, Severity
from deployc.planner.backend_choice import BackendRanking, backend_decision, rank_backends
from deployc.planner.collectives import allreduce_model, network_nics
from deployc.planner.decisions import Alternative, Decision, Quantity
from deployc.planner.emittable import refusal
from deployc.planner.evaluate import MEMORY_FALLBACK_TOKEN_BUDGET, PLANNING_TOKEN_BUDGET, Candidate
from deployc.planner.finish import finish_pool
from deployc.planner.fixes import ranked_fixes
from deployc.planner.kvload import kv_for_load
from deployc.planner.models import BackendModels, Backends
from deployc.planner.pins import explain_pins, fraction_overcommit, pin_items, pinned_failure
from deployc.planner.plan import Plan
from deployc.planner.pools import split_gpus
from deployc.planner.precision import activation_dtype, chosen_dtype, kv_dtype_candidates, weight_candidates
from deployc.planner.search import Search, search_layouts
from deployc.planner.serving.verdict import miss_rank
from deployc.planner.slo_fixes import NO_PLAN, slo_fixes
from deployc.planner.types import Layout, MemoryPlan, PoolPlan
from deployc.planner.workload import WorkloadShape, workload_shapes
from deployc.spec.model import PlanSection
from deployc.target import Target
from deployc.units import GIB


class Vetoed(Exception):
    """The backend can run none of the precisions this spec allows."""


def search_pool(target: Target, models: BackendModels, dtype: ActivationDtype, shape: WorkloadShape,
                gpus_per_node: int, nodes: int, fixes: bool = True) -> tuple[Search, list[Alternative], list[Search]]:
    """Try precisions in order; return the first search whose best layout fits.

    Raise :class:`Vetoed` when the backend can run none of them, :class:`PlanError` when none fits.
    """
    backend = models.name
    spec = target.spec
    rejected: list[Alternative] = []
    vetoes: list[str] = []  # the backend's own words, without its name (the caller names it once)
    failed: list[Search] = []
    for choice in weight_candidates(spec, target.model, target.gpu, dtype):
        for kv_dtype in kv_dtype_candidates(spec, dtype, target.gpu):
            verdict = models.capability(target, choice.weights_format, kv_dtype)
            label = f"{choice.weights_format} weights, {kv_dtype} KV cache"
            if not verdict.supported:
                why = verdict.reason + (f"; alternative: {verdict.alternative}" if verdict.alternative else "")
                vetoes.append(why)
                rejected.append(Alternative(label, f"{backend}: {why}"))
                continue
            candidate = Candidate(target=target, backend=backend, dtype=dtype, weights=choice, kv_dtype=kv_dtype,
                                  shape=shape, gpus_per_node=gpus_per_node, nodes=nodes, kernel=verdict.kernel,
                                  flow=verdict.flow,
                                  scheduler=models.info.scheduler, pp_split=models.info.pp_layer_split,
                                  max_num_batched_tokens=spec.plan.max_num_batched_tokens or PLANNING_TOKEN_BUDGET)
            search = search_as_planned(candidate, models)
            refused = refusal(search.checks)
            if refused is not None:  # the same for every precision: the emitter, not memory, says no
                raise Vetoed(refused)
            if search.chosen() is not None:
                return kv_for_load(search, models, rejected), rejected, failed
            failed.append(search)
            closest = search.closest()
            short = closest.evaluation.shortfall_bytes / GIB if closest else 0.0
            rejected.append(Alternative(label, f"does not fit on any valid layout ({short:.1f} GiB short per GPU)"
                                        if closest else "no valid layout"))
    if not failed:
        reasons = list(dict.fromkeys(vetoes))  # the same veto for each KV dtype once
        raise Vetoed("; ".join(reasons) or "no precision to try")
    raise PlanError([_does_not_fit(failed[0], models, fixes)])


def search_as_planned(candidate: Candidate, models: BackendModels) -> Search:
    """The layouts searched at the candidate's budget and, when nothing fits and the spec leaves the budget to
    deployc, at smaller steps: a pool's search, and each ranked fix's (a fix plans its spec as a plan would)."""
    search = search_layouts(candidate, models)
    if search.chosen() is None and candidate.target.spec.plan.max_num_batched_tokens is None:
        search = _at_smaller_steps(search, models)
    return search


def _at_smaller_steps(search: Search, models: BackendModels) -> Search:
    """Nothing fits at the planning budget: the layouts again with ``MEMORY_FALLBACK_TOKEN_BUDGET``-token steps
    (smaller activations, and SGLang reserves less), the token budget then capped there; else the first search."""
    c, closest = search.candidate, search.closest()
    if c.max_num_batched_tokens <= MEMORY_FALLBACK_TOKEN_BUDGET or closest is None:
        return search
    # Smaller steps shrink the activations and, where the engine's fraction covers only weights and KV (SGLang),
    # the reserve it leaves out for the chunk; no more: a layout short by more than that cannot fit with them.
    m = closest.memory
    frees: float = m.per_gpu.activation_bytes
    if m.memory_fraction_kind == "weights_and_kv":
        frees += m.per_gpu.total_bytes * (1 - m.memory_fraction)
    if closest.evaluation.shortfall_bytes > frees:
        return search
    smaller = search_layouts(evolve(c, max_num_batched_tokens=MEMORY_FALLBACK_TOKEN_BUDGET,
                                    budget_cap=MEMORY_FALLBACK_TOKEN_BUDGET), models)
    return smaller if smaller.chosen() is not None else search


def _does_not_fit(search: Search, models: BackendModels, fixes: bool = True) -> Diagnostic:
    c = search.candidate
    target = c.target
    closest = search.closest()
    if closest is None:
        reasons = "; ".join(f"{k.layout.label()}: {', '.join(k.reasons)}" for k in search.checks[:4])
        return Diagnostic(rule="DPC302", message=f"no valid parallel layout for {target.model.name} on "
                          f"{c.gpus_per_node * c.nodes} × {target.gpu.name}", hint=reasons)
    overcommit = fraction_overcommit(closest, target.spec.plan.memory_fraction, c.backend, target.gpu.name,
                                     target.spec_file)
    if overcommit is not None:
        return overcommit
    m = closest.memory
    need = c.kv_tokens_needed
    what = ("one sequence of the pinned max_model_len" if need > c.shape.prompt.p99_tokens + c.shape.output.p99_tokens
            else "one p99 request")
    g = m.per_gpu
    message = (f"{target.model.name} does not fit on {c.gpus_per_node * c.nodes} × {target.gpu.name}: with "
               f"{closest.evaluation.layout.label()} each GPU needs {closest.weights.total_bytes / GIB:.1f} GiB of "
               f"{c.weights.weights_format} weights + {g.activation_bytes / GIB:.1f} GiB of activations and runtime "
               f"memory + {(g.cuda_graph_bytes + g.other_bytes) / GIB:.1f} GiB of CUDA graphs and other buffers "
               f"({_budget(m)}), leaving KV room for {m.kv_capacity_tokens:,} tokens; {what} needs {need:,}")
    ranked = ranked_fixes(search, models, search_layouts) if fixes else []
    hint = ("try, cheapest first: " + "; ".join(ranked) if ranked else
            "no single change makes it fit" if fixes else None)
    return Diagnostic(rule="DPC301", message=message, key_path="model.id", file=target.spec_file, hint=hint)


def _budget(m: MemoryPlan) -> str:
    """What the engine's memory fraction gives the plan, in its own terms (the overhead answer says which)."""
    g, fraction = m.per_gpu, m.memory_fraction
    total = g.total_bytes / GIB
    if m.memory_fraction_kind == "weights_and_kv":
        return (f"{m.backend}'s memory fraction {fraction:g} × {total:.1f} GiB = {fraction * total:.1f} GiB holds "
                "the weights and the KV cache")
    if m.memory_fraction_kind == "free_after_load":
        return f"{m.backend} takes {fraction:g} of the memory free once the weights load"
    return f"{m.backend} may use {fraction:g} × {total:.1f} GiB = {g.usable_bytes / GIB:.1f} GiB in all"


def _plan_pools(target: Target, models: BackendModels, dtype: ActivationDtype, fixes: bool = True,
                ) -> tuple[list[PoolPlan], list[Decision], list[Diagnostic]]:
    shapes = workload_shapes(target.spec)
    split = split_gpus(target, shapes)
    diagnostics: list[Diagnostic] = []
    decisions: list[Decision] = []
    if split is None:
        diagnostics.append(Diagnostic(
            rule="DPC305", severity=Severity.WARNING, key_path="workload.classes", file=target.spec_file,
            message=f"{len(shapes)} request classes but too few GPUs for a pool each: one shared pool",
            hint="give more GPUs, or expect long prompts to evict short requests' cached prefixes"))
        shapes = workload_shapes(evolve(target.spec, workload=evolve(target.spec.workload, classes=())))
        split = split_gpus(target, shapes)
        if split is None:  # unreachable: a single pool always gets every GPU
            raise ValueError("one pool must take every GPU")
    if len(shapes) > 1:
        decisions.append(split.decision)
    pools = []
    for shape, (gpus_per_node, nodes) in zip(shapes, split.gpus, strict=True):
        search, rejected, _ = search_pool(target, models, dtype, shape, gpus_per_node, nodes, fixes)
        pool, pool_decisions, pool_diags = finish_pool(search, rejected, several=len(shapes) > 1, models=models)
        if fixes and any(_fixable(d) for d in pool_diags):
            now = miss_rank(pool.serving, pool.verdict) if pool.serving and pool.verdict else NO_PLAN
            pool_diags = _with_fixes(pool_diags, slo_fixes(search, models, search_as_planned, now))
        pools.append(pool)
        decisions += pool_decisions
        diagnostics += pool_diags
    return pools, decisions, diagnostics


# Requests longer than max_model_len are refused whatever the GPUs: more of them, FP8 or a lighter load do not
# help (the diagnostic's own hint names what does), so they get no re-simulated fixes.
UNFIXABLE_BY_RESOURCES = frozenset({"DPC325"})


def _fixable(d: Diagnostic) -> bool:
    return d.severity is Severity.ERROR and d.rule not in UNFIXABLE_BY_RESOURCES


def _with_fixes(diagnostics: list[Diagnostic], fixes: list[str]) -> list[Diagnostic]:
    """The ranked, re-simulated fixes as the hint of the pool's first error that resources can fix."""
    if not fixes:
        return diagnostics
    out, done = [], False
    for d in diagnostics:
        hinted = d
        if not done and _fixable(d):
            hinted, done = evolve(d, hint="try, best first: " + "; ".join(fixes)), True
        out.append(hinted)
    return out


def make_plan(target: Target, backends: Backends, *, backend_override: str | None = None,
              warnings: list[Diagnostic] | None = None, fixes: bool = True, pin_reasons: bool = True,
              other_backends: bool = True) -> Plan:
    """Plan a resolved spec among ``backends``; raise :class:`PlanError` (with ranked fixes) when nothing fits.

    A pure function of its arguments: the backends' models are resolved before planning
    (:meth:`deployc.plugins.PluginRegistry.models`), so the planner never sees the plugin registry.

    ``fixes=False`` leaves the ranked fixes out (each is planned again, the costliest part of a plan
    that misses): for callers that plan many specs and need only the verdicts (``deployc size``).

    With ``[plan]`` pins, the spec is also planned without them, to explain each pin against
    deployc's own choice (and to offer that choice as the fix when the pinned plan fails);
    ``pin_reasons=False`` skips that second plan, for callers that read only the figures and verdicts
    (``deployc size``): the pins are applied all the same, their reasons say only that the spec pinned them.

    With the backend left to deployc, a backend whose plan misses the SLO gives way to the next in order
    that serves; ``other_backends=False`` keeps the first that fits (``deployc size`` tries each backend
    as its own variant).
    """
    if not pin_reasons or not pin_items(target.spec.plan):
        return _make_plan(target, backends, backend_override=backend_override, warnings=warnings, fixes=fixes,
                          other_backends=other_backends)
    unpinned: Plan | PlanError
    try:
        # Only its decisions and first error are read: its own ranked fixes would be planned for nothing.
        unpinned = _make_plan(evolve(target, spec=evolve(target.spec, plan=PlanSection())), backends,
                              backend_override=backend_override, fixes=False, other_backends=other_backends)
    except PlanError as exc:
        unpinned = exc
    # A pinned backend beside other pins: those are explained against deployc's own choice on that backend (the
    # unpinned plan may run another engine, whose layout is no answer for this one).
    same_engine: Plan | PlanError = unpinned
    pins = target.spec.plan
    if pins.backend is not None and len(pin_items(pins)) > 1:
        try:
            same_engine = _make_plan(evolve(target, spec=evolve(target.spec, plan=PlanSection(backend=pins.backend))),
                                     backends, backend_override=backend_override, fixes=False,
                                     other_backends=other_backends)
        except PlanError as exc:
            same_engine = exc
    try:
        pinned_plan = _make_plan(target, backends, backend_override=backend_override, warnings=warnings, fixes=fixes,
                                 other_backends=other_backends)
        return explain_pins(pinned_plan, unpinned, same_engine)
    except PlanError as exc:
        raise pinned_failure(exc, target.spec.plan, unpinned, target.spec_file) from None


def _make_plan(target: Target, backends: Backends, *, backend_override: str | None = None,
               warnings: list[Diagnostic] | None = None, fixes: bool = True, other_backends: bool = True) -> Plan:
    spec = target.spec
    dtype_decision = activation_dtype(spec, target.model, target.gpu)
    forced = backend_override or spec.plan.backend or (
        spec.operations.backend if spec.operations.backend != "auto" else None)
    ranking = rank_backends(spec, backends.infos(), target.gpu.vendor)
    if forced is not None and forced not in backends:
        raise PlanError([Diagnostic(rule="DPC105", message=f"no installed backend named {forced!r}",
                                    hint=f"installed: {', '.join(backends.names()) or 'none'}")])
    order = [forced] if forced else list(ranking.order)
    vetoes: dict[str, str] = {}
    first_error: PlanError | None = None
    # With the backend left to deployc, one that fits but misses the SLO gives way to the next that serves
    # (a rule picked it, the simulation judges it: SGLang's prefill-first steps can miss an ITL target vLLM's
    # chunked steps meet); when none serves, the first that fits is the plan, with its fixes.
    shop = forced is None and other_backends
    missed: str | None = None
    first_failed = ""
    for name in order:
        try:
            pools, decisions, diagnostics = _plan_pools(target, backends[name], chosen_dtype(dtype_decision),
                                                        fixes and not shop)
        except Vetoed as exc:
            vetoes[name] = str(exc)
            continue
        except PlanError as exc:
            if first_error is None:
                first_error, first_failed = exc, name
            vetoes[name] = exc.diagnostics[0].message
            continue
        misses = [f"pool {p.name}: {p.verdict.summary(p.serving)}" if len(pools) > 1 else
                  p.verdict.summary(p.serving) for p in pools
                  if p.verdict is not None and p.serving is not None and not p.verdict.serves]
        if shop and misses:
            missed = missed or name
            vetoes[name] = "; ".join(misses)
            continue
        return _plan_of(target, backends, name, pools, decisions, diagnostics, dtype_decision, ranking, vetoes,
                        warnings)
    if missed is not None:  # none serves: the first that fits, planned again with its ranked fixes
        pools, decisions, diagnostics = _plan_pools(target, backends[missed], chosen_dtype(dtype_decision), fixes)
        return _plan_of(target, backends, missed, pools, decisions, diagnostics, dtype_decision, ranking,
                        {k: v for k, v in vetoes.items() if k != missed}, warnings)
    if first_error is not None:
        if shop and fixes:  # planned without its ranked fixes while shopping: again, with them
            _plan_pools(target, backends[first_failed], chosen_dtype(dtype_decision), fixes)
        raise first_error
    if forced is not None:
        raise PlanError([Diagnostic(rule="DPC401", message=f"the {forced} backend cannot serve this spec",
                                    file=target.spec_file, hint=vetoes.get(forced))])
    detail = " | ".join(f"{k}: {v}" for k, v in {**ranking.reasons, **vetoes}.items())  # each backend once
    raise PlanError([Diagnostic(rule="DPC401", message="no installed backend can serve this spec",
                                file=target.spec_file, hint=detail or "see `deployc backends`")])


def _plan_of(target: Target, backends: Backends, name: str, pools: list[PoolPlan], decisions: list[Decision],
             diagnostics: list[Diagnostic], dtype_decision: Decision, ranking: BackendRanking, vetoes: dict[str, str],
             warnings: list[Diagnostic] | None) -> Plan:
    fabric = () if target.network is None else (network_decision(target, [p.layout for p in pools]),)
    return Plan(deployc_version=__version__, target=target, backend=backends.info(name), pools=tuple(pools),
                decisions=(dtype_decision, backend_decision(target.spec, name, ranking, vetoes), *fabric,
                           *decisions),
                diagnostics=(*(warnings or []), *diagnostics))


def network_decision(target: Target, layouts: Sequence[Layout] = ()) -> Decision:
    """The fabric between nodes and the all-reduce bandwidth the plan assumes over all GPUs (for the preflight).

    When no replica of ``layouts`` needs more than one node, no collective crosses the fabric: each node's
    servers run on their own, and the decision says so instead of asking for the preflight.
    """
    hw = target.spec.hardware
    gpus = hw.gpus_per_node * hw.nodes
    model = allreduce_model(target.gpu, target.intra_node_link, gpus, cuda_graphs=True, network=target.network,
                            crosses_nodes=True, gpus_per_node=hw.gpus_per_node,
                            network_nics=network_nics(target.network, hw.ib_hcas))
    net = target.network.id if target.network else "no network"
    # A replica is TP × PP GPUs, or TP × PP × DP when the experts are sharded across replicas (one engine).
    largest = max((lay.tp * lay.pp * (lay.dp if lay.ep > 1 and lay.dp > 1 else 1) for lay in layouts), default=0)
    if layouts and largest <= hw.gpus_per_node:
        use = (f"No collective crosses it: every replica fits in one node ({largest} of its {hw.gpus_per_node} "
               "GPUs at most), so each node's servers run on their own and the network carries only client "
               f"traffic. Were a collective to cross it, {model.assumption[0].lower()}{model.assumption[1:]}")
    else:
        use = f"{model.assumption} Check the fabric reaches this before serving (preflight-nccl.sh)"
    return Decision(
        id="network", value=target.network.id if target.network else "none", rule="DPD103",
        reason=f"{hw.nodes} nodes joined by {net}. {use}",
        numbers=(Quantity(f"all-reduce bus bandwidth over {gpus} GPUs ({model.algorithm})",
                          round(model.bus_bandwidth_bytes_per_s / 1e9, 1), "GB/s"),
                 Quantity("all-reduce latency", round(model.latency_s * 1e6, 1), "µs")))
