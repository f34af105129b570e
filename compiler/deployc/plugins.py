"""Backend plugins: entry-point discovery, guarded loading, and a typed façade over the hooks.

Every call into a plugin goes through :class:`PluginRegistry`, which routes it to the
plugin owning the backend name, contains failures (import errors, exceptions, wrong
return types, time-outs) and reports them by distribution and entry-point name, so one
broken plugin never takes down the others.
"""

from __future__ import annotations

import functools
import json
import os
import re
import traceback
from collections.abc import Sequence
from importlib import metadata
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pluggy
from attrs import evolve, frozen

from deployc.contract import hookspecs
from deployc.contract.backend import BackendInfo, Capability, Emission, OverheadQuery, RuntimeOverheads
from deployc.diagnostics import Diagnostic, PluginError
from deployc.hook_results import emission_problem
from deployc.placement import deployment, target_facts
from deployc.plugin_worker import call_with_timeout, timeout_s

if TYPE_CHECKING:
    from deployc.catalog import GPU, CatalogModel
    from deployc.contract.deployment import Deployment, Layout
    from deployc.contract.enginelog import EngineLog
    from deployc.planner.models import Backends
    from deployc.planner.plan import Plan
    from deployc.target import Target

ENTRY_POINT_GROUP = "deployc.backends"
DISABLE_ENV = "DEPLOYC_DISABLE_PLUGINS"  # comma-separated entry-point or distribution names
# The backends deployc ships: `auto` must not quietly choose among the others when one of these is broken.
BUILTIN_BACKENDS = frozenset({"vllm", "sglang", "trtllm"})


@frozen
class PluginSource:
    """Where a plugin comes from: its distribution and entry point."""

    distribution: str
    version: str
    entry_point: str
    value: str

    def describe(self) -> str:
        """``deployc-foo 1.0 (entry point foo = deployc_foo.plugin)``."""
        return f"{self.distribution} {self.version} (entry point {self.entry_point} = {self.value})"


@frozen
class LoadedBackend:
    """A working backend: its plugin module, where it came from and what it says it is."""

    info: BackendInfo
    plugin: object
    source: PluginSource


@frozen
class PluginFailure:
    """A plugin that could not be used, with the diagnostic explaining why."""

    source: PluginSource
    diagnostic: Diagnostic
    backend: str | None = None  # the backend name it concerns, when known (entry point, or a claimed name)


def _source(ep: metadata.EntryPoint, labels: dict[int, tuple[str, str]]) -> PluginSource:
    """Where ``ep`` comes from; ``labels`` keeps each distribution's name and version (each read parses its
    whole METADATA, README included, and one distribution holds the three built-in backends)."""
    dist = ep.dist
    if dist is None:
        distribution, version = "<unknown>", "?"
    else:
        if id(dist) not in labels:
            labels[id(dist)] = (dist.metadata["Name"], dist.version)
        distribution, version = labels[id(dist)]
    return PluginSource(distribution=distribution, version=version, entry_point=ep.name, value=ep.value)


class PluginRegistry:
    """The installed backends and the failures met while loading them."""

    def __init__(self, plugins: Sequence[tuple[PluginSource, object]] = (), failures: Sequence[PluginFailure] = ()):
        self.timeout_s = timeout_s()  # checked once, before any plugin runs: a bad value is the user's error
        self.pm = pluggy.PluginManager("deployc")
        self.pm.add_hookspecs(hookspecs)
        self.failures: list[PluginFailure] = list(failures)
        self._collect_failed: set[tuple[str, str]] = set()
        self._models: Backends | None = None
        # Hooks are pure functions of their arguments (docs/plugins.md): an overhead answer is asked for the same
        # query by every search, what-if and sizing plan that evaluates the layout, so it is kept.
        self._overheads: dict[tuple[str, OverheadQuery], RuntimeOverheads] = {}
        self.backends: dict[str, LoadedBackend] = {}
        claimed: dict[str, list[LoadedBackend]] = {}
        for source, plugin in plugins:
            loaded = self._register(source, plugin)
            if loaded is not None:
                claimed.setdefault(loaded.info.name, []).append(loaded)
        for name, owners in sorted(claimed.items()):
            if len(owners) == 1:
                self.backends[name] = owners[0]
                continue
            who = " and ".join(o.source.describe() for o in owners)
            for owner in owners:
                self.failures.append(PluginFailure(owner.source, Diagnostic(
                    rule="DPC504", message=f"backend name {name!r} is claimed by {who}",
                    hint=f"uninstall one, or disable it with {DISABLE_ENV}=<entry point name>"), backend=name))

    def _register(self, source: PluginSource, plugin: object) -> LoadedBackend | None:
        try:
            self.pm.register(plugin, name=f"{source.distribution}:{source.entry_point}")
        except (ValueError, pluggy.PluginValidationError) as exc:
            self._fail(source, "DPC501", f"invalid plugin: {exc}")
            return None
        info_impl = getattr(plugin, "deployc_backend_info", None)
        if info_impl is None:
            self._fail(source, "DPC501", "does not implement deployc_backend_info")
            return None
        try:
            info = call_with_timeout(info_impl, {}, self.timeout_s)
        except TimeoutError:
            self._fail(source, "DPC506", f"deployc_backend_info did not return within {self.timeout_s:g} s")
            return None
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # SystemExit from a plugin must not end deployc
            self._fail(source, "DPC502", f"deployc_backend_info raised {type(exc).__name__}: {exc}")
            return None
        problem = _info_problem(info)
        if problem is not None:
            self._fail(source, "DPC503", f"deployc_backend_info returned {problem}")
            return None
        return LoadedBackend(info=info, plugin=plugin, source=source)

    def _fail(self, source: PluginSource, rule: str, message: str) -> None:
        self.failures.append(PluginFailure(source, Diagnostic(rule=rule, message=f"plugin {source.describe()}: "
                                                              f"{message}"), backend=source.entry_point))

    # -- routing -------------------------------------------------------------------------
    def names(self) -> list[str]:
        """Names of the working backends, sorted."""
        return sorted(self.backends)

    def info(self, name: str) -> BackendInfo:
        """The description of a working backend (KeyError if there is none of that name)."""
        return self.backends[name].info

    def models(self) -> Backends:
        """The working backends as the planner sees them: each hook wrapped, so a failure still names the plugin."""
        from deployc.planner.models import BackendModels, Backends  # noqa: PLC0415  (planner types load on use)

        if self._models is None:
            self._models = Backends.of([BackendModels(
                info=loaded.info, capability=functools.partial(self.capability, name),
                layout_support=functools.partial(self.layout_support, name),
                runtime_overheads=functools.partial(self.runtime_overheads, name),
                check_plan=functools.partial(self.check_planned, name))
                for name, loaded in sorted(self.backends.items())])
        return self._models

    def failed_builtins(self) -> list[str]:
        """Built-in backends that are not working because a plugin failed (not those disabled on purpose)."""
        return sorted({f.backend for f in self.failures if f.backend in BUILTIN_BACKENDS} - set(self.backends))

    def failure_for(self, name: str) -> PluginFailure | None:
        """The load failure of the plugin whose entry point is ``name``, if any."""
        for failure in self.failures:
            if name in (failure.source.entry_point, failure.source.distribution) or f"{name!r}" in \
                    failure.diagnostic.message:
                return failure
        return None

    def _call(self, backend: str, hook: str, expected: type | tuple[type, ...], optional: bool,
              **kwargs: Any) -> Any:
        owner = self.backends[backend]
        function = getattr(owner.plugin, hook, None)
        if function is None:
            return None
        where = f"plugin {owner.source.describe()}"
        try:
            result = call_with_timeout(function, {"backend": backend, **kwargs}, self.timeout_s)
        except TimeoutError:
            raise PluginError([Diagnostic(rule="DPC506", message=f"{where}: {hook} did not return within "
                                          f"{self.timeout_s:g} s")]) from None
        except (PluginError, KeyboardInterrupt):
            raise
        except BaseException as exc:  # SystemExit from a plugin must not end deployc with its code
            frames = traceback.extract_tb(exc.__traceback__)
            at = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
            raise PluginError([Diagnostic(rule="DPC502", message=f"{where}: {hook} raised "
                                          f"{type(exc).__name__}: {exc}{at}")]) from exc
        if result is None and optional:
            return None
        if not isinstance(result, expected):
            raise PluginError([Diagnostic(rule="DPC503", message=f"{where}: {hook} returned "
                                          f"{type(result).__name__}, expected {_type_names(expected)}")])
        return result

    # -- typed façade, one method per hook ------------------------------------------------
    def capability(self, backend: str, target: Target, weights_format: str, kv_cache_dtype: str) -> Capability:
        """The engine's verdict on a precision for the target's GPU (supported when it has none)."""
        result = self._call(backend, "deployc_capability", Capability, True, target=target_facts(target, backend),
                            weights_format=weights_format, kv_cache_dtype=kv_cache_dtype)
        return result if result is not None else Capability(supported=True, reason="no constraint stated")

    def layout_support(self, backend: str, target: Target, layout: Layout, gpus_per_node: int,
                       nodes: int) -> Capability:
        """Whether the backend's emitter can deploy a layout (supported when it states no constraint)."""
        result = self._call(backend, "deployc_layout_support", Capability, True, target=target_facts(target, backend),
                            layout=layout,
                            gpus_per_node=gpus_per_node, nodes=nodes)
        return result if result is not None else Capability(supported=True, reason="no constraint stated")

    def runtime_overheads(self, backend: str, query: OverheadQuery) -> RuntimeOverheads:
        """The engine's memory overheads for one layout (a plugin error when it states none)."""
        key = (backend, query)
        found = self._overheads.get(key)
        if found is None:
            found = self._overheads[key] = self._call(
                backend, "deployc_runtime_overheads", RuntimeOverheads, False, query=query)
        return found

    def check_plan(self, backend: str, deployment: Deployment) -> list[Diagnostic]:
        """The engine's own checks of a finished plan, as the deployment it would emit."""
        result = self._call(backend, "deployc_check_plan", (list, tuple), True, deployment=deployment)
        if result is None:
            return []
        for item in result:
            if not isinstance(item, Diagnostic):
                raise PluginError([Diagnostic(rule="DPC503", message=f"plugin "
                                   f"{self.backends[backend].source.describe()}: deployc_check_plan returned "
                                   f"a {type(item).__name__} among its diagnostics")])
        return list(result)

    def check_planned(self, backend: str, plan: Plan) -> list[Diagnostic]:
        """The engine's own checks of a plan, placed as the deployment it would emit (raises
        :class:`deployc.placement.PlacementError` when its servers do not fit the nodes)."""
        return self.check_plan(backend, deployment(plan))

    def emit(self, backend: str, deployment: Deployment) -> Emission:
        """The backend's artifacts for a deployment."""
        emission: Emission = self._call(backend, "deployc_emit", Emission, False, deployment=deployment)
        problem = emission_problem(emission)
        if problem is not None:
            raise PluginError([Diagnostic(rule="DPC503", message=f"plugin {self.backends[backend].source.describe()}: "
                                          f"deployc_emit returned an Emission whose {problem}")])
        return emission

    def engine_logs(self, text: str, gpu: GPU) -> dict[str, EngineLog]:
        """Each working backend's reading of an engine start-up log, for those that recognise it as their engine's."""
        from deployc.contract.enginelog import EngineLog  # noqa: PLC0415  (check-log only)

        found: dict[str, EngineLog] = {}
        for name in self.names():
            log = self._call(name, "deployc_parse_engine_log", EngineLog, True, text=text, gpu=gpu)
            if log is not None:
                found[name] = evolve(log, engine=name)
        return found

    def log_readers(self) -> list[str]:
        """The engines whose start-up logs a working backend reads (``deployc_parse_engine_log``), by backend name."""
        return [loaded.info.engine for _, loaded in sorted(self.backends.items())
                if getattr(loaded.plugin, "deployc_parse_engine_log", None) is not None]

    def catalog_gpus(self) -> list[GPU]:
        """GPUs contributed by plugins (a plugin whose hook fails is recorded in ``failures`` and skipped)."""
        from deployc.catalog import GPU  # noqa: PLC0415  (the catalog loads only when a spec needs it)

        return self._collect("deployc_catalog_gpus", GPU)

    def catalog_models(self) -> list[CatalogModel]:
        """Models contributed by plugins (a plugin whose hook fails is recorded in ``failures`` and skipped)."""
        from deployc.catalog import CatalogModel  # noqa: PLC0415

        return self._collect("deployc_catalog_models", CatalogModel)

    def _collect(self, hook: str, expected: type) -> list[Any]:
        """Every working plugin's contribution; a failing plugin is recorded and skipped, not fatal."""
        out: list[Any] = []
        for name, loaded in sorted(self.backends.items()):
            function = getattr(loaded.plugin, hook, None)
            if function is None or (hook, name) in self._collect_failed:
                continue
            where = f"plugin {loaded.source.describe()}: {hook}"
            try:
                items = call_with_timeout(function, {}, self.timeout_s)
            except TimeoutError:
                self._collect_fail(hook, name, loaded, "DPC506", f"{where} did not return within {self.timeout_s:g} s")
                continue
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # contained: the plugin's entries are skipped
                self._collect_fail(hook, name, loaded, "DPC502", f"{where} raised {type(exc).__name__}: {exc}")
                continue
            if not isinstance(items, (list, tuple)) or not all(isinstance(i, expected) for i in items):
                self._collect_fail(hook, name, loaded, "DPC503",
                                   f"{where} returned {type(items).__name__}, expected a list of {expected.__name__}")
                continue
            out.extend(items)
        return out

    def _collect_fail(self, hook: str, name: str, loaded: LoadedBackend, rule: str, message: str) -> None:
        self._collect_failed.add((hook, name))
        self.failures.append(PluginFailure(loaded.source, Diagnostic(rule=rule, message=message)))

    def option_schemas(self) -> dict[str, dict[str, Any]]:
        """The ``[backends.NAME]`` schema fragment of each working backend."""
        return {name: loaded.info.options_schema for name, loaded in sorted(self.backends.items())}


_BACKEND_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


def _info_problem(info: object) -> str | None:
    """Why a deployc_backend_info result is unusable (None when it is fine); attrs does not check types."""
    if not isinstance(info, BackendInfo):
        return f"{type(info).__name__}, not BackendInfo"
    for field in ("engine", "engine_version", "image", "image_tag", "summary"):
        if not isinstance(getattr(info, field), str):
            return f"a BackendInfo whose {field} is {type(getattr(info, field)).__name__}, not str"
    if not isinstance(info.name, str) or not _BACKEND_NAME.fullmatch(info.name) or info.name == "auto":
        return f"a BackendInfo whose name {info.name!r} is not 1-32 lower-case letters, digits, - or _ (nor 'auto')"
    schema = info.options_schema
    if not isinstance(schema, dict) or schema.get("type") != "object":
        return "a BackendInfo whose options_schema is not a JSON Schema object (type: object)"
    import jsonschema  # noqa: PLC0415  (only when plugins register)

    try:
        json.dumps(schema)
        jsonschema.Draft202012Validator.check_schema(schema)
    except (TypeError, ValueError, jsonschema.SchemaError) as exc:
        return f"a BackendInfo whose options_schema is not valid JSON Schema: {str(exc).splitlines()[0]}"
    return None


def _type_names(expected: type | tuple[type, ...]) -> str:
    types = expected if isinstance(expected, tuple) else (expected,)
    return " or ".join(t.__name__ for t in types)


def _disabled() -> set[str]:
    return {name.strip() for name in os.environ.get(DISABLE_ENV, "").split(",") if name.strip()}


def discover(group: str = ENTRY_POINT_GROUP) -> PluginRegistry:
    """Load every entry point of the group, containing import failures."""
    disabled = _disabled()
    limit_s = timeout_s()
    plugins: list[tuple[PluginSource, object]] = []
    failures: list[PluginFailure] = []
    eps = sorted(metadata.entry_points(group=group), key=lambda e: (e.name, e.value))
    labels: dict[int, tuple[str, str]] = {}  # by the id of a distribution object eps holds (alive meanwhile)
    for ep in eps:
        source = _source(ep, labels)
        if ep.name in disabled or source.distribution in disabled:
            continue
        hint = f"fix or uninstall {source.distribution}, or set {DISABLE_ENV}={ep.name}"
        try:
            # On the worker, like a hook: an import that hangs must not hang `validate` (and the pre-commit hook).
            module = call_with_timeout(ep.load, {}, limit_s)
        except TimeoutError:
            failures.append(PluginFailure(source, Diagnostic(
                rule="DPC506", message=f"plugin {source.describe()} did not finish importing within {limit_s:g} s",
                hint=hint), backend=ep.name))
            continue
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                raise
            failures.append(PluginFailure(source, Diagnostic(
                rule="DPC501", message=f"plugin {source.describe()} failed to import: {type(exc).__name__}: {exc}",
                hint=hint), backend=ep.name))
            continue
        plugins.append((source, module))
    return PluginRegistry(plugins, failures)


@functools.cache
def default_registry() -> PluginRegistry:
    """The registry of installed plugins, discovered once per process."""
    return discover()


def module_source(module: ModuleType, name: str) -> PluginSource:
    """A source for a plugin registered directly (tests, embedding applications)."""
    return PluginSource(distribution=module.__name__, version="-", entry_point=name, value=module.__name__)
