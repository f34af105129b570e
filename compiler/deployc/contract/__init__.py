"""The backend contract: everything a backend plugin may see of deployc, and nothing else.

A plugin imports from ``deployc.contract`` (and its ``toolkit``) only; a test fails when one imports any other
``deployc`` module.  The types here are the stable API documented in ``docs/plugins.md``: a change that
removes or renames a name or a field, or changes a hook's arguments, raises :data:`CONTRACT_VERSION`'s major
number; an added name or field raises its minor number.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from deployc import hookimpl
from deployc.catalog import GPU, CatalogModel, CheckpointQuant
from deployc.contract.backend import (
    Artifact,
    BackendInfo,
    Capability,
    Emission,
    EngineBuild,
    FlagReason,
    OverheadQuery,
    PlacementPolicy,
    PpLayerSplit,
    RuntimeOverheads,
    SchedulerPolicy,
    Strength,
    VendorImage,
)
from deployc.contract.decisions import Alternative, Decision, Quantity, format_number
from deployc.contract.deployment import (
    AttentionFacts,
    Deployment,
    Hardware,
    ImageRef,
    Knobs,
    Latency,
    Layout,
    ModelFacts,
    ModelRef,
    Operations,
    Pool,
    Prediction,
    Server,
    ServerLoad,
    SimulatedLoad,
    Slo,
    TargetFacts,
    Workload,
)
from deployc.diagnostics import Diagnostic, Severity
from deployc.spec.model import Percentiles, TokenDistribution
from deployc.units import GIB, KIB, MIB

if TYPE_CHECKING:
    from deployc.contract.enginelog import EngineLog

#: The contract's version: ``major.minor`` (see the module docstring for what raises which).
CONTRACT_VERSION = "1.4"


__all__ = [
    "CONTRACT_VERSION",
    "GIB",
    "GPU",
    "KIB",
    "MIB",
    "Alternative",
    "Artifact",
    "AttentionFacts",
    "BackendInfo",
    "Capability",
    "CatalogModel",
    "CheckpointQuant",
    "Decision",
    "Deployment",
    "Diagnostic",
    "Emission",
    "EngineBuild",
    "EngineLog",
    "FlagReason",
    "Hardware",
    "ImageRef",
    "Knobs",
    "Latency",
    "Layout",
    "ModelFacts",
    "ModelRef",
    "Operations",
    "OverheadQuery",
    "Percentiles",
    "PlacementPolicy",
    "Pool",
    "PpLayerSplit",
    "Prediction",
    "Quantity",
    "RuntimeOverheads",
    "SchedulerPolicy",
    "Server",
    "ServerLoad",
    "Severity",
    "SimulatedLoad",
    "Slo",
    "Strength",
    "TargetFacts",
    "TokenDistribution",
    "VendorImage",
    "Workload",
    "format_number",
    "hookimpl",
]


def __getattr__(name: str) -> Any:
    """``EngineLog`` loads on first use: only ``deployc check-log`` reads engine logs, not a build."""
    if name == "EngineLog":
        from deployc.contract.enginelog import EngineLog  # noqa: PLC0415

        return EngineLog
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
