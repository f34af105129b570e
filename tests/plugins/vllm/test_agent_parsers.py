"""Agent workloads get the tool-call and reasoning parsers their model needs, by vLLM 0.33.0's names."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import tomli_w

from deployc.api import plan
from deployc.planner.plan import Plan
from deployc_vllm.checks import check_plan
from deployc_vllm.command import serve_command
from deployc_vllm.options import parse_options
from deployc_vllm.parsers import _TABLE
from tests.contract_helpers import deploy
from tests.engine_parsers import require_or_skip
from tests.plugins.vllm.plans import spec_dict


def _plan(tmp_path: Path, **changes: Any) -> Plan:
    path = tmp_path / "s.toml"
    path.write_text(tomli_w.dumps(spec_dict(**changes)))
    planned, _ = plan(path, "vllm", display_name="s.toml")
    return planned


def _argv(p: Plan) -> list[str]:
    return [str(w) for w in serve_command(deploy(p), deploy(p).servers[0], parse_options(None)).argv]


def test_agent_llama_gets_auto_tool_choice_and_its_json_parser(tmp_path: Path) -> None:
    argv = _argv(_plan(tmp_path, workload={"kind": "agent"}))
    assert "--enable-auto-tool-choice" in argv
    assert argv[argv.index("--tool-call-parser") + 1] == "llama3_json"
    assert "--reasoning-parser" not in argv


def test_agent_reasoning_models_get_both_parsers(tmp_path: Path) -> None:
    argv = _argv(_plan(tmp_path, model={"id": "openai/gpt-oss-20b"}, workload={"kind": "agent"}))
    assert argv[argv.index("--tool-call-parser") + 1] == "openai"
    assert argv[argv.index("--reasoning-parser") + 1] == "openai_gptoss"


def test_chat_workload_gets_no_parser_and_unknown_agents_are_warned(tmp_path: Path) -> None:
    assert "--tool-call-parser" not in _argv(_plan(tmp_path))
    p = _plan(tmp_path, model={"id": "google/gemma-2-9b-it"}, workload={"kind": "agent"})
    assert "--tool-call-parser" not in _argv(p)
    warned = [d.message for d in check_plan(deploy(p)) if d.key_path == "workload.kind"]
    assert warned == ["an agent workload, but deployc knows no vLLM tool-call parser for google/gemma-2-9b-it: tool "
                      "calls come back as plain text in the answer"]


def test_every_parser_name_is_registered_in_the_pinned_vllm() -> None:
    python = require_or_skip("vllm")
    code = ("from vllm.tool_parsers import ToolParserManager as T; from vllm.reasoning import ReasoningParserManager "
            "as R; print(' '.join(T.list_registered())); print(' '.join(R.list_registered()))")
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=300, check=True,
                         env={"VLLM_TARGET_DEVICE": "cpu", "PATH": "/usr/bin:/bin"}).stdout.splitlines()
    tools, reasoning = set(out[-2].split()), set(out[-1].split())
    for _fam, _pattern, _what, tool, think in _TABLE:
        assert tool is None or tool in tools, tool
        assert think is None or think in reasoning, think
