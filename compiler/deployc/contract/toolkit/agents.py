"""Matching a model to its tool-call and reasoning parsers, for agent workloads.

Each backend names its engine's parsers in a table of rows ``(model family from config.json, pattern on the
lower-cased model id, what the format is, tool parser, reasoning parser)``; the first row whose family
matches and whose pattern is found in the id wins.
"""

from __future__ import annotations

import re

from attrs import frozen

ParserRow = tuple[str, str, str, str | None, str | None]


@frozen(kw_only=True)
class AgentParsers:
    """The parsers of one model family (None: the model has no such output)."""

    model: str
    tool: str | None
    reasoning: str | None


def find_parsers(table: tuple[ParserRow, ...], family: str, model_id: str) -> AgentParsers | None:
    """The parsers for a model from a backend's table, or None when the table knows no tool-call format for it."""
    lowered = model_id.lower()
    for fam, pattern, what, tool, reasoning in table:
        if fam == family and re.search(pattern, lowered):
            return AgentParsers(model=what, tool=tool, reasoning=reasoning)
    return None
