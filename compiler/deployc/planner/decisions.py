"""Decisions: every choice the planner (or a backend) makes, with its reason and numbers."""

from __future__ import annotations

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


@frozen
class Alternative:
    """An option the planner considered and rejected, and why."""

    value: Scalar
    reason: str


@frozen(kw_only=True)
class Decision:
    """One choice: what (``id``), the value, the rule that chose it, the reason, numbers, alternatives."""

    id: str
    value: Scalar
    rule: str
    reason: str
    numbers: tuple[Quantity, ...] = ()
    rejected: tuple[Alternative, ...] = ()


def format_number(value: float) -> str:
    """Round for reading: integers with thousands separators, others to 3 significant digits."""
    if value == int(value) and abs(value) >= 1:
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"
