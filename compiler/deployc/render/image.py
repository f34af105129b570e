"""The container image a build uses, as the backend emitted it."""

from __future__ import annotations

from deployc.contract.backend import Emission
from deployc.planner.plan import Plan


def emitted_image(plan: Plan, emission: Emission | None) -> str:
    """The backend's ``<name>.image`` decision (the image its artifacts run: a ROCm build on AMD GPUs, the
    spec's override), else the pinned image of its BackendInfo."""
    if emission is not None:
        for decision in emission.decisions:
            if decision.id == f"{plan.backend.name}.image":
                return str(decision.value)
    return f"{plan.backend.image}:{plan.backend.image_tag}"
