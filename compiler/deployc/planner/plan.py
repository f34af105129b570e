"""The Plan: what the planner returns and every backend emits from."""

from __future__ import annotations

from typing import TYPE_CHECKING

from attrs import frozen

from deployc.contract.backend import BackendInfo
from deployc.diagnostics import Diagnostic
from deployc.planner.decisions import Decision
from deployc.planner.types import PoolPlan

if TYPE_CHECKING:
    from deployc.target import Target


@frozen(kw_only=True)
class Plan:
    """A complete, explained deployment plan.

    ``pools`` has one entry per serving pool: one for uniform traffic, one per request class
    when the spec has short and long classes (separate KV caches, no eviction cascade).
    ``decisions`` holds every choice, each with its rule, reason, numbers and rejected
    alternatives; backends translate decisions into flags and never re-derive them.
    """

    deployc_version: str
    target: Target
    backend: BackendInfo
    pools: tuple[PoolPlan, ...]
    decisions: tuple[Decision, ...]
    diagnostics: tuple[Diagnostic, ...] = ()

    @property
    def primary(self) -> PoolPlan:
        """The first (or only) pool."""
        return self.pools[0]

    def decision(self, decision_id: str) -> Decision | None:
        """The decision with this id (pool decisions are ``<pool>.<id>`` when there are several pools)."""
        for decision in self.decisions:
            if decision.id == decision_id:
                return decision
        return None
