"""Byte units, defined once: every module that converts bytes imports them from here."""

from __future__ import annotations

KIB = 1 << 10
MIB = 1 << 20
GIB = 1 << 30
