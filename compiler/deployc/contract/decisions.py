"""Decisions: every choice the planner (or a backend) makes, with its reason and numbers."""

from __future__ import annotations

from typing import Any

from attrs import frozen

Scalar = str | int | float | bool


@frozen
class Quantity:
    """A number behind a decision, with its unit and what it is."""

    label: str
    value: float
    unit: str

    def render(self) -> str:
        """``weights per GPU = 35.2 GiB``: the number rounded for people (JSON keeps it exact)."""
        return f"{self.label} = {format_number(self.value)} {self.unit}".rstrip()

    def to_json(self) -> dict[str, Any]:
        """Plain data for plan.json."""
        return {"label": self.label, "value": self.value, "unit": self.unit}


@frozen
class Alternative:
    """An option the planner considered and rejected, and why."""

    value: Scalar
    reason: str

    def to_json(self) -> dict[str, Any]:
        """Plain data for plan.json."""
        return {"value": self.value, "reason": self.reason}


@frozen(kw_only=True)
class Decision:
    """One choice: what (``id``), the value, the rule that chose it, the reason, numbers, alternatives."""

    id: str
    value: Scalar
    rule: str
    reason: str
    numbers: tuple[Quantity, ...] = ()
    rejected: tuple[Alternative, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """Plain data for plan.json."""
        return {
            "id": self.id,
            "value": self.value,
            "rule": self.rule,
            "reason": self.reason,
            "numbers": [q.to_json() for q in self.numbers],
            "rejected": [a.to_json() for a in self.rejected],
        }


def format_number(value: float) -> str:
    """Round for reading: integers with thousands separators, others to 3 significant digits."""
    if value == int(value) and abs(value) >= 1:
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"
