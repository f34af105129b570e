"""Type checks of what a plugin's ``deployc_emit`` returns, field by field.

attrs does not check types, so an :class:`~deployc.contract.backend.Emission` can hold bytes for text, an
int for a path, a generator of artifacts (consumed by the first look, so files silently vanish)
or text that cannot be written as UTF-8.  Each of these must be a plugin error naming the field
(DPC503), never a crash of deployc (exit 3) nor a short build.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from deployc.contract.backend import Artifact, Emission, FlagReason
from deployc.contract.decisions import Alternative, Decision, Quantity
from deployc.spec.characters import describe, unsafe_character

_SCALARS = (str, int, float, bool)


def _text(value: object, field: str, *, optional: bool = False) -> str | None:
    """Why ``value`` is not usable text (None when it is)."""
    if value is None and optional:
        return None
    if not isinstance(value, str):
        return f"{field} is {type(value).__name__}, not str"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"{field} cannot be written as UTF-8 (character {exc.start}: a lone surrogate)"
    return None


def _sequence(value: object, field: str, kind: type) -> Iterator[str | tuple[int, Any]]:
    """Each item of a tuple or list field, or the one reason it is not one of ``kind``."""
    if not isinstance(value, (tuple, list)):
        yield f"{field} is {type(value).__name__}, not a tuple of {kind.__name__}"
        return
    for index, item in enumerate(value):
        if not isinstance(item, kind):
            yield f"{field}[{index}] is {type(item).__name__}, not {kind.__name__}"
            return
        yield index, item


def _artifact_problem(index: int, artifact: Artifact) -> str | None:
    where = f"artifacts[{index}]"
    problem = (_text(artifact.path, f"{where}.path") or _text(artifact.content, f"{where}.content")
               or _text(artifact.description, f"{where}.description"))
    if problem:
        return problem
    if not isinstance(artifact.executable, bool):
        return f"{where}.executable is {type(artifact.executable).__name__}, not bool"
    ch = unsafe_character(artifact.path)
    if ch is not None:
        return f"{where}.path {artifact.path!r} contains {describe(ch)}"
    return None


def _flag_problem(index: int, flag: FlagReason) -> str | None:
    where = f"flags[{index}]"
    return (_text(flag.flag, f"{where}.flag") or _text(flag.value, f"{where}.value", optional=True)
            or _text(flag.reason, f"{where}.reason") or _text(flag.decision, f"{where}.decision", optional=True))


def _decision_problem(index: int, decision: Decision) -> str | None:
    where = f"decisions[{index}]"
    problem = _text(decision.id, f"{where}.id") or _text(decision.rule, f"{where}.rule") or _text(
        decision.reason, f"{where}.reason")
    if problem:
        return problem
    if not isinstance(decision.value, _SCALARS) and decision.value is not None:
        return f"{where}.value is {type(decision.value).__name__}, not a string, number or boolean"
    for item in _sequence(decision.numbers, f"{where}.numbers", Quantity):
        if isinstance(item, str):
            return item
        quantity = item[1]
        if _text(quantity.label, "") or _text(quantity.unit, "") or not isinstance(quantity.value, (int, float)):
            return f"{where}.numbers[{item[0]}] is not a (label: str, value: number, unit: str) Quantity"
    for item in _sequence(decision.rejected, f"{where}.rejected", Alternative):
        if isinstance(item, str):
            return item
        if _text(item[1].reason, "") or not isinstance(item[1].value, (*_SCALARS, type(None))):
            return f"{where}.rejected[{item[0]}] is not a (value: scalar, reason: str) Alternative"
    return None


def emission_problem(emission: Emission) -> str | None:
    """Why an Emission cannot be written as it is (None when every field has its documented type)."""
    checks = ((emission.artifacts, "artifacts", Artifact, _artifact_problem),
              (emission.flags, "flags", FlagReason, _flag_problem),
              (emission.decisions, "decisions", Decision, _decision_problem))
    for value, field, kind, check in checks:
        for item in _sequence(value, field, kind):
            if isinstance(item, str):
                return item
            problem = check(*item)
            if problem:
                return problem
    return None
