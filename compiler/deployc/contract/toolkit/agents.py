"""Matching a model to its tool-call and reasoning parsers, for agent workloads.

Each backend names its engine's parsers in a table of rows ``(model family from config.json, pattern on the
lower-cased model id, what the format is, tool parser, reasoning parser)``; the first row whose family
matches and whose pattern is found in the id wins.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from attrs import frozen

from deployc.diagnostics import Diagnostic, Severity

if TYPE_CHECKING:
    from deployc.contract.deployment import Deployment

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


# One flag of an engine's command line and why it is there: (argv words, reason).
Flag = tuple[tuple[str, ...], str]


def agent_flags(workload_kind: str, parsers: AgentParsers | None, *, before_tool: tuple[Flag, ...] = ()) -> list[Flag]:
    """The flags that turn on a model's tool-call and reasoning parsers for an agent workload (none otherwise).

    ``--tool-call-parser`` and ``--reasoning-parser`` are spelled alike by vLLM and SGLang; ``before_tool`` holds
    what an engine needs beside the tool parser (vLLM's ``--enable-auto-tool-choice``).
    """
    if workload_kind != "agent" or parsers is None:
        return []
    out: list[Flag] = []
    if parsers.tool:
        out += [*before_tool, (("--tool-call-parser", parsers.tool),
                               f"agent workload: tool calls in the model's format ({parsers.model}) come back as "
                               "OpenAI tool_calls instead of plain text")]
    if parsers.reasoning:
        out.append((("--reasoning-parser", parsers.reasoning),
                    "a reasoning model: its thinking goes to reasoning_content, not into the answer "
                    f"({parsers.model})"))
    return out


def lacks_tool_parser(workload_kind: str, parsers: AgentParsers | None, extra_args: tuple[str, ...]) -> bool:
    """An agent workload whose model has no known tool-call parser and whose extra_args name none either."""
    named = any(a.partition("=")[0] == "--tool-call-parser" for a in extra_args)
    return workload_kind == "agent" and parsers is None and not named


def missing_parser_warning(deployment: Deployment, parsers: AgentParsers | None, extra_args: tuple[str, ...], *,
                           backend: str, example: str, rule: str = "DPC402") -> list[Diagnostic]:
    """The warning for an agent workload whose tool calls would come back as plain text (none otherwise).

    ``backend`` names the ``[backends.NAME]`` table and the engine (``deployment.backend.engine``) the message;
    ``example`` is the ``extra_args`` value the hint suggests.
    """
    if not lacks_tool_parser(deployment.workload.kind, parsers, extra_args):
        return []
    return [Diagnostic(rule=rule, severity=Severity.WARNING, file=deployment.spec_file, key_path="workload.kind",
                       message=f"an agent workload, but deployc knows no {deployment.backend.engine} tool-call parser "
                               f"for {deployment.model.id}: tool calls come back as plain text in the answer",
                       hint=f"name the model's parser in [backends.{backend}] extra_args, e.g. {example}")]
