"""The toolkit's agent-parser flags and the missing-parser check both engines share."""

from __future__ import annotations

from deployc.contract.toolkit.agents import AgentParsers, agent_flags, lacks_tool_parser

QWEN3 = AgentParsers(model="Qwen3 (hermes tool calls, <think> reasoning)", tool="hermes", reasoning="qwen3")
TOOL_ONLY = AgentParsers(model="Llama 3.1 JSON tool calls", tool="llama3_json", reasoning=None)
AUTO = (("--enable-auto-tool-choice",), "vLLM needs it")


def test_an_agent_gets_the_tool_parser_after_what_the_engine_needs_beside_it() -> None:
    flags = agent_flags("agent", QWEN3, before_tool=(AUTO,))
    assert [words for words, _ in flags] == [("--enable-auto-tool-choice",), ("--tool-call-parser", "hermes"),
                                             ("--reasoning-parser", "qwen3")]
    assert flags[1][1] == ("agent workload: tool calls in the model's format (Qwen3 (hermes tool calls, <think> "
                           "reasoning)) come back as OpenAI tool_calls instead of plain text")


def test_no_tool_parser_means_nothing_before_it_either() -> None:
    no_tool = AgentParsers(model="a reasoning model", tool=None, reasoning="deepseek_r1")
    assert [words for words, _ in agent_flags("agent", no_tool, before_tool=(AUTO,))] == [
        ("--reasoning-parser", "deepseek_r1")]
    assert [words for words, _ in agent_flags("agent", TOOL_ONLY)] == [("--tool-call-parser", "llama3_json")]


def test_other_workloads_and_unknown_models_get_no_parser_flags() -> None:
    assert agent_flags("chat", QWEN3, before_tool=(AUTO,)) == []
    assert agent_flags("agent", None, before_tool=(AUTO,)) == []


def test_a_tool_parser_is_missing_only_for_an_agent_without_one_known_or_named() -> None:
    assert lacks_tool_parser("agent", None, ())
    assert not lacks_tool_parser("agent", None, ("--tool-call-parser=hermes",))
    assert not lacks_tool_parser("agent", None, ("--tool-call-parser", "hermes"))
    assert not lacks_tool_parser("agent", TOOL_ONLY, ())
    assert not lacks_tool_parser("chat", None, ())


def test_the_missing_parser_warning_names_the_engine_the_table_and_an_example() -> None:
    from types import SimpleNamespace
    from typing import Any

    from deployc.contract import Severity
    from deployc.contract.toolkit.agents import missing_parser_warning

    deployment: Any = SimpleNamespace(workload=SimpleNamespace(kind="agent"), spec_file="s.toml",
                                      backend=SimpleNamespace(engine="SGLang"), model=SimpleNamespace(id="org/m"))
    (warning,) = missing_parser_warning(deployment, None, (), backend="sglang", example='["--tool-call-parser", "x"]')
    assert (warning.rule, warning.severity, warning.file, warning.key_path) == (
        "DPC402", Severity.WARNING, "s.toml", "workload.kind")
    assert warning.message == ("an agent workload, but deployc knows no SGLang tool-call parser for org/m: tool calls "
                               "come back as plain text in the answer")
    assert warning.hint == 'name the model\'s parser in [backends.sglang] extra_args, e.g. ["--tool-call-parser", "x"]'
    assert missing_parser_warning(deployment, QWEN3, (), backend="sglang", example="") == []
    assert missing_parser_warning(deployment, None, ("--tool-call-parser=x",), backend="sglang", example="") == []
