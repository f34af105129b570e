"""What the planner knows of each backend: its description and its models, resolved before planning.

The planner is a pure function of a Target and these values: it never sees the plugin registry.
The registry (:meth:`deployc.plugins.PluginRegistry.models`) builds them, each function wrapping
the backend's hook so a failing plugin still stops planning with a diagnostic naming it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from attrs import field, frozen

from deployc.contract.backend import BackendInfo, Capability, OverheadQuery, RuntimeOverheads

if TYPE_CHECKING:
    from deployc.diagnostics import Diagnostic
    from deployc.planner.plan import Plan
    from deployc.planner.types import Layout
    from deployc.target import Target

# (target, weights_format, kv_cache_dtype) -> the engine's verdict on that precision for the target's GPU
CapabilityModel = Callable[["Target", str, str], Capability]
# (target, layout, gpus_per_node, nodes) -> whether the backend's emitter can deploy the layout
LayoutSupportModel = Callable[["Target", "Layout", int, int], Capability]
# the engine's own memory use beside weights and KV cache, for one candidate layout
OverheadModel = Callable[[OverheadQuery], RuntimeOverheads]
# the engine's own checks of a finished plan
PlanCheck = Callable[["Plan"], "list[Diagnostic]"]


def _sorted(models: Mapping[str, BackendModels]) -> dict[str, BackendModels]:
    return dict(sorted(models.items()))


def _supported(*_: object) -> Capability:
    return Capability(supported=True, reason="no constraint stated")


def _no_checks(_: Plan) -> list[Diagnostic]:
    return []


@frozen(kw_only=True)
class BackendModels:
    """One backend as the planner sees it: its description and the functions answering for its engine."""

    info: BackendInfo
    runtime_overheads: OverheadModel
    capability: CapabilityModel = _supported
    layout_support: LayoutSupportModel = _supported
    check_plan: PlanCheck = _no_checks

    @property
    def name(self) -> str:
        """The backend's name."""
        return self.info.name


@frozen(eq=False)  # compared and hashed by identity: the planner's callers memoise plans per backends value
class Backends:
    """The working backends by name, sorted (what ``make_plan`` chooses among)."""

    by_name: Mapping[str, BackendModels] = field(converter=_sorted)

    @classmethod
    def of(cls, models: Sequence[BackendModels]) -> Backends:
        """The backends of a list of models (names must be unique)."""
        by_name = {m.name: m for m in models}
        if len(by_name) != len(models):
            raise ValueError("two backend models share a name")
        return cls(by_name)

    def names(self) -> list[str]:
        """Names of the backends, sorted."""
        return list(self.by_name)

    def infos(self) -> list[BackendInfo]:
        """Descriptions of the backends, sorted by name."""
        return [m.info for m in self.by_name.values()]

    def __contains__(self, name: object) -> bool:
        return name in self.by_name

    def __getitem__(self, name: str) -> BackendModels:
        return self.by_name[name]

    def info(self, name: str) -> BackendInfo:
        """The description of a backend (KeyError if there is none of that name)."""
        return self.by_name[name].info
