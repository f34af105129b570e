"""What the core hands a backend, for tests that call a built-in backend's functions directly."""

from __future__ import annotations

from typing import TYPE_CHECKING

from deployc import placement

if TYPE_CHECKING:
    from deployc.contract import Deployment, TargetFacts
    from deployc.planner.plan import Plan
    from deployc.target import Target


def deploy(plan: Plan) -> Deployment:
    """The Deployment the plan's backend receives (servers placed, image resolved)."""
    return placement.deployment(plan)


def facts(target: Target, backend: str) -> TargetFacts:
    """What the capability and layout hooks of ``backend`` are told about the target."""
    return placement.target_facts(target, backend)
