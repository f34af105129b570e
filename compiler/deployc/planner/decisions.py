"""Decisions, as the planner imports them: the types live in the backend contract (:mod:`deployc.contract`).

A backend returns Decisions of its own, so the type is part of the stable plugin API; the planner keeps
importing it from here.
"""

from __future__ import annotations

from deployc.contract.decisions import Alternative, Decision, Quantity, Scalar, format_number

__all__ = ["Alternative", "Decision", "Quantity", "Scalar", "format_number"]
