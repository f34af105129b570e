"""The tool-call and reasoning parsers SGLang 0.5.23 needs for a model, for agent workloads.

An agent's requests carry ``tools`` and expect ``tool_calls`` back; SGLang's OpenAI server
extracts them only with the ``--tool-call-parser`` that reads the model's own call format, and
moves a reasoning model's ``<think>`` text to ``reasoning_content`` only with
``--reasoning-parser``.  Names are choices of both flags in SGLang 0.5.23's parser
(``data/sglang-0.5.23.json``), matched to models as SGLang's "Tool Parser" and "Reasoning
Parser" documentation pages do.
"""

from __future__ import annotations

from deployc.contract.toolkit.agents import AgentParsers, ParserRow, find_parsers

__all__ = ["AgentParsers", "agent_parsers"]

# (model family from config.json, pattern on the served id, what it is, tool parser, reasoning parser)
_TABLE: tuple[ParserRow, ...] = (
    ("llama", r"llama-3\.[123].*instruct", "Llama 3.1-3.3 Instruct JSON tool calls", "llama3", None),
    ("mistral", r"instruct-v0\.3", "Mistral Instruct v0.3 [TOOL_CALLS]", "mistral", None),
    ("mixtral", r"8x22b-instruct", "Mixtral-8x22B Instruct [TOOL_CALLS]", "mistral", None),
    ("qwen2", r"qwen2\.5.*instruct", "Qwen2.5 Instruct <tool_call>", "qwen25", None),
    ("qwen3", r"", "Qwen3 <tool_call> and <think>", "qwen25", "qwen3"),
    ("qwen3_moe", r"", "Qwen3 <tool_call> and <think>", "qwen25", "qwen3"),
    ("deepseek_v3", r"deepseek-r1", "DeepSeek-R1 tool calls and <think>", "deepseekv3", "deepseek-r1"),
    ("deepseek_v3", r"", "DeepSeek-V3 tool calls", "deepseekv3", None),
    ("gpt_oss", r"", "gpt-oss harmony channels (analysis, commentary)", "gpt-oss", "gpt-oss"),
)


def agent_parsers(family: str, model_id: str) -> AgentParsers | None:
    """The parsers for a model, or None when deployc knows no tool-call format for it."""
    return find_parsers(_TABLE, family, model_id)
