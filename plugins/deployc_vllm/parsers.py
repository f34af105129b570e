"""The tool-call and reasoning parsers vLLM 0.33.0 needs for a model, for agent workloads.

An agent's requests carry ``tools`` and expect ``tool_calls`` back; vLLM answers them only with
``--enable-auto-tool-choice`` and the ``--tool-call-parser`` that reads the model's own call
format (without them a request with ``tool_choice: "auto"`` is refused with HTTP 400).  A
reasoning model's ``<think>`` text goes to ``reasoning_content`` only with ``--reasoning-parser``.

Names are those registered in vLLM 0.33.0 (``vllm/tool_parsers/__init__.py``
``_TOOL_PARSERS_TO_REGISTER``; ``vllm/reasoning/__init__.py``), matched to models as vLLM's
"Tool Calling" and "Reasoning Outputs" documentation pages do.
"""

from __future__ import annotations

from deployc.contract.toolkit.agents import AgentParsers, ParserRow, find_parsers

__all__ = ["AgentParsers", "agent_parsers"]

# (model family from config.json, pattern on the served id, what it is, tool parser, reasoning parser)
_TABLE: tuple[ParserRow, ...] = (
    ("llama", r"llama-3\.[123].*instruct", "Llama 3.1-3.3 Instruct JSON tool calls", "llama3_json", None),
    ("mistral", r"instruct-v0\.3", "Mistral Instruct v0.3 [TOOL_CALLS]", "mistral", None),
    ("mixtral", r"8x22b-instruct", "Mixtral-8x22B Instruct [TOOL_CALLS]", "mistral", None),
    ("qwen2", r"qwen2\.5.*instruct", "Qwen2.5 Instruct <tool_call> (Hermes format)", "hermes", None),
    ("qwen3", r"", "Qwen3 <tool_call> (Hermes format) and <think>", "hermes", "qwen3"),
    ("qwen3_moe", r"", "Qwen3 <tool_call> (Hermes format) and <think>", "hermes", "qwen3"),
    ("deepseek_v3", r"deepseek-r1", "DeepSeek-R1 tool calls and <think>", "deepseek_v3", "deepseek_r1"),
    ("deepseek_v3", r"", "DeepSeek-V3 tool calls", "deepseek_v3", None),
    ("gpt_oss", r"", "gpt-oss harmony channels (analysis, commentary)", "openai", "openai_gptoss"),
)


def agent_parsers(family: str, model_id: str) -> AgentParsers | None:
    """The parsers for a model, or None when deployc knows no tool-call format for it."""
    return find_parsers(_TABLE, family, model_id)
