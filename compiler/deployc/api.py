"""The library API: what the CLI calls and what other tools may call.

Each stage is a function of the one before: load → validate → resolve → plan → emit → write.
Problems come out as :class:`~deployc.diagnostics.DeploycError` subclasses carrying
Diagnostics; nothing here prints or exits.
"""

from __future__ import annotations

from pathlib import Path

import tomli_w
from attrs import evolve, frozen

from deployc import __version__, placement
from deployc.contract.backend import Artifact, Emission
from deployc.contract.deployment import Deployment
from deployc.diagnostics import (
    Diagnostic,
    PlanError,
    PluginError,
    Severity,
    SpecError,
    cap_per_rule,
    has_errors,
    sort_key,
)
from deployc.emit import RESERVED_NAMES, BuildOutput, check_artifact_paths, write_build
from deployc.planner.plan import Plan
from deployc.plugins import PluginRegistry, default_registry
from deployc.resolution import resolve
from deployc.spec.characters import character_diagnostics
from deployc.spec.loader import SpecDocument, read_document
from deployc.spec.model import Spec
from deployc.spec.schema import validator
from deployc.spec.schema_errors import schema_diagnostics
from deployc.spec.secrets import redact, secret_diagnostics
from deployc.spec.semantic import semantic_diagnostics
from deployc.spec.structure import structure_spec, unstructure_spec
from deployc.target import Target


@frozen
class LoadedSpec:
    """A spec that passed the schema and the catalog-free semantic rules."""

    document: SpecDocument
    spec: Spec
    warnings: tuple[Diagnostic, ...]


@frozen
class BuildResult:
    """A finished build: the plan, what the backend emitted, and where it was written."""

    plan: Plan
    emission: Emission
    output: BuildOutput


def load_spec(path: Path, registry: PluginRegistry | None = None, display_name: str | None = None) -> LoadedSpec:
    """Read, schema-validate and semantically check a spec; raise :class:`SpecError` when invalid."""
    registry = registry or default_registry()
    document = read_document(Path(path), display_name)
    secrets = secret_diagnostics(document)
    characters = character_diagnostics(document)
    flagged = {d.key_path for d in characters}  # the schema's pattern errors there would say it again
    problems = [d for d in schema_diagnostics(document, validator(registry.option_schemas()))
                if not (d.rule in ("DPC010", "DPC015", "DPC020") and d.key_path in flagged)]
    if problems or secrets or characters:
        shown = cap_per_rule(sorted([*secrets, *characters, *problems], key=sort_key))
        raise SpecError([redact(d) for d in shown])  # every message may quote a token found elsewhere
    spec = structure_spec(document.raw)
    found = semantic_diagnostics(document, spec)
    if has_errors(found):
        raise SpecError(cap_per_rule(sorted((d for d in found if d.severity is Severity.ERROR), key=sort_key)))
    return LoadedSpec(document=document, spec=spec, warnings=tuple(found))


def resolve_spec(path: Path, registry: PluginRegistry | None = None,
                 display_name: str | None = None) -> tuple[LoadedSpec, Target, list[Diagnostic]]:
    """Load a spec and resolve its names against the catalog (GPU, model, links, backend)."""
    registry = registry or default_registry()
    loaded = load_spec(path, registry, display_name)
    target, diagnostics = resolve(loaded.document, loaded.spec, registry)
    return loaded, target, [*loaded.warnings, *diagnostics]


def validate(path: Path, registry: PluginRegistry | None = None, display_name: str | None = None) -> list[Diagnostic]:
    """Every problem in one spec file, as diagnostics (an empty list when it is valid).

    This is what the pre-commit hook runs: schema, semantic rules and name resolution.
    """
    try:
        _, _, warnings = resolve_spec(path, registry, display_name)
    except SpecError as exc:
        return list(exc.diagnostics)
    return warnings


def plan(path: Path, backend: str | None = None, registry: PluginRegistry | None = None,
         display_name: str | None = None) -> tuple[Plan, SpecDocument]:
    """Plan a spec; raise :class:`SpecError` or :class:`PlanError` when it cannot be planned."""
    from deployc.planner.planner import make_plan  # noqa: PLC0415  (keeps `validate` start-up light)

    registry = registry or default_registry()
    loaded, target, warnings = resolve_spec(path, registry, display_name)
    if (backend or loaded.spec.operations.backend) == "auto":
        _refuse_auto_beside_broken_builtins(registry)
    # Planning simulates the traffic (tenths of a second); the same resolved spec gives the same plan.
    key = (str(Path(path).resolve()), loaded.document.text, display_name, backend, id(registry), repr(target))
    cached = _PLANS.get(key)
    if cached is not None:
        return cached, loaded.document
    try:
        result = make_plan(target, registry.models(), backend_override=backend, warnings=warnings)
    except PlanError as exc:
        raise PlanError([_locate_pin(d, loaded.document) for d in exc.diagnostics]) from None
    if len(_PLANS) >= PLAN_CACHE_SIZE:
        _PLANS.pop(next(iter(_PLANS)))
    _PLANS[key] = result
    return result, loaded.document


PLAN_CACHE_SIZE = 32
_PLANS: dict[tuple[object, ...], Plan] = {}


def clear_plan_cache() -> None:
    """Forget the plans, step costs and simulations memoised in this process (benchmarks time cold plans)."""
    from deployc.planner.load import clear_memo  # noqa: PLC0415  (keeps `validate` start-up light)

    _PLANS.clear()
    clear_memo()


def _locate_pin(diag: Diagnostic, document: SpecDocument) -> Diagnostic:
    """A planning error about a ``[plan]`` pin gets the line of its key (the planner sees no text)."""
    key = diag.key_path or ""
    if diag.line is not None or not (key == "plan" or key.startswith("plan.")):
        return diag
    return evolve(diag, line=document.locator.line_of(tuple(key.split("."))))


def _refuse_auto_beside_broken_builtins(registry: PluginRegistry) -> None:
    """``auto`` would silently pick another engine when a built-in backend failed to load (or was claimed)."""
    broken = registry.failed_builtins()
    if not broken:
        return
    names = ", ".join(broken)
    causes = [f.diagnostic for f in registry.failures if f.backend in broken]
    raise PluginError([Diagnostic(
        rule="DPC508", message=f'backend = "auto" will not choose while the built-in backend {names} is not working: '
                               "the choice would silently differ from a working installation",
        hint="fix or uninstall the plugin named below (`deployc backends`), or name the backend to use with "
             "--backend or operations.backend"), *causes])


def deployment_of(plan_: Plan) -> Deployment:
    """What the plan's backend receives: the servers placed (an error diagnostic when they do not fit)."""
    try:
        return placement.deployment(plan_)
    except placement.PlacementError as exc:
        raise PlanError([Diagnostic(rule="DPC402", message=f"cannot place the {plan_.backend.engine} servers: {exc}",
                                    file=plan_.target.spec_file)]) from exc


def with_backend_warnings(plan_: Plan, registry: PluginRegistry) -> Plan:
    """The plan with its backend's own warnings added (they reach the build's output and plan.json)."""
    problems = registry.check_plan(plan_.backend.name, deployment_of(plan_))
    if has_errors(problems):
        raise PlanError(problems)
    known = set(plan_.diagnostics)
    return evolve(plan_, diagnostics=(*plan_.diagnostics, *(d for d in problems if d not in known)))


def emit(plan_: Plan, registry: PluginRegistry | None = None) -> Emission:
    """Run the plan's backend: its own checks, then its artifacts (paths confined to the output)."""
    registry = registry or default_registry()
    name = plan_.backend.name
    deployment = deployment_of(plan_)
    problems = registry.check_plan(name, deployment)
    if has_errors(problems):
        raise PlanError(problems)
    emission = registry.emit(name, deployment)
    if not all(isinstance(a, Artifact) for a in emission.artifacts):
        raise PluginError([Diagnostic(rule="DPC503", message=f"backend {name!r}: artifacts must be Artifact")])
    check_artifact_paths(emission.artifacts, name, RESERVED_NAMES)
    return emission


def lock_text(spec: Spec) -> str:
    """``deployc.lock.toml``: the resolved spec with every default filled in; building it reproduces the build."""
    header = (f"# deployc.lock.toml: the resolved spec (deployc {__version__}). "
              "`deployc build deployc.lock.toml` reproduces this build.\n")
    return header + tomli_w.dumps(unstructure_spec(spec))


def serving_errors(plan_: Plan) -> list[Diagnostic]:
    """The plan's errors: pools that fit but miss the SLO or cannot keep up with the traffic."""
    return [d for d in plan_.diagnostics if d.severity is Severity.ERROR]


def build(path: Path, out_dir: Path, backend: str | None = None, force: bool = False,
          registry: PluginRegistry | None = None, display_name: str | None = None,
          accept_slo_miss: bool = False) -> BuildResult:
    """Plan, emit and write a spec's deployment atomically into ``out_dir``.

    A plan that does not serve its traffic at the SLO raises :class:`PlanError` (nothing is
    written) unless ``accept_slo_miss``: then it is written, its misses kept as warnings.
    """
    from deployc.render.explain import explain_markdown  # noqa: PLC0415
    from deployc.render.plan_json import plan_json_text  # noqa: PLC0415

    registry = registry or default_registry()
    plan_, document = plan(path, backend, registry, display_name)
    errors = serving_errors(plan_)
    if errors and not accept_slo_miss:
        raise PlanError(errors)
    plan_ = with_backend_warnings(plan_, registry)
    emission = emit(plan_, registry)
    files = {a.path: a.content.encode() for a in emission.artifacts}
    files["plan.json"] = plan_json_text(plan_, document.text, emission).encode()
    files["EXPLAIN.md"] = explain_markdown(plan_, emission).encode()
    files["deployc.lock.toml"] = lock_text(plan_.target.spec).encode()
    executable = {a.path for a in emission.artifacts if a.executable}
    output = write_build(Path(out_dir), files, executable, version=__version__, force=force,
                         protect=[Path(path)])
    return BuildResult(plan=plan_, emission=emission, output=output)
