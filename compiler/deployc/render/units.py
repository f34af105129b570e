"""Formatting numbers with units for people (JSON keeps exact values)."""

from __future__ import annotations

from deployc.units import GIB


def gib(nbytes: float) -> str:
    """``35.21 GiB``."""
    return f"{nbytes / GIB:.2f} GiB"


def tokens(count: float) -> str:
    """``93,872 tokens``."""
    return f"{int(count):,} tokens"


def count(value: float) -> str:
    """A mean count of requests (a batch, a concurrency) to one decimal: ``17.1``, ``4``."""
    return f"{round(value, 1):g}"
