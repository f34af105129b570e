"""SGLang extra_args (like vLLM's) and the agent parsers, on real plans."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import tomli_w

from deployc.api import plan
from deployc.planner.plan import Plan
from deployc_sglang.checks import check_plan
from deployc_sglang.command import launch_command
from deployc_sglang.flags import load_manifest
from deployc_sglang.options import parse_options
from deployc_sglang.parsers import _TABLE
from tests.contract_helpers import deploy
from tests.plugins.vllm.plans import spec_dict


def _plan(tmp_path: Path, **changes: Any) -> Plan:
    path = tmp_path / "s.toml"
    path.write_text(tomli_w.dumps(spec_dict(**changes)))
    planned, _ = plan(path, "sglang", display_name="s.toml")
    return planned


def _argv(p: Plan) -> list[str]:
    options = parse_options(p.target.spec.backends.get("sglang"))
    return [str(w) for w in launch_command(deploy(p), deploy(p).servers[0], options).argv]


def test_extra_args_are_appended_split_and_checked(tmp_path: Path) -> None:
    p = _plan(tmp_path, backends={"sglang": {"extra_args": ["--log-level", "debug", "--show-time-cost",
                                                            "--watchdog-timeout=600"]}})
    assert _argv(p)[-5:] == ["--log-level", "debug", "--show-time-cost", "--watchdog-timeout", "600"]
    assert [d.message for d in check_plan(deploy(p))] == []


def test_extra_args_may_not_set_what_deployc_derives_in_any_spelling(tmp_path: Path) -> None:
    p = _plan(tmp_path, backends={"sglang": {"extra_args": ["--tensor-parallel-size", "2", "--nope"]}})
    messages = [d.message for d in check_plan(deploy(p))]
    assert "extra_args sets --tensor-parallel-size, which deployc derives from the plan" in messages
    assert "SGLang 0.5.23 would reject the command of 'demo': --nope is not a flag of SGLang 0.5.23" in messages


def test_agent_workload_gets_the_models_parsers(tmp_path: Path) -> None:
    p = _plan(tmp_path, model={"id": "Qwen/Qwen3-8B"}, workload={"kind": "agent"})
    argv = _argv(p)
    assert argv[argv.index("--tool-call-parser") + 1] == "qwen25"
    assert argv[argv.index("--reasoning-parser") + 1] == "qwen3"
    chat = _plan(tmp_path, model={"id": "Qwen/Qwen3-8B"})
    assert "--tool-call-parser" not in _argv(chat)


def test_agent_workload_with_an_unknown_format_is_warned(tmp_path: Path) -> None:
    p = _plan(tmp_path, model={"id": "meta-llama/Llama-2-7b-chat-hf"}, workload={"kind": "agent"})
    assert "--tool-call-parser" not in _argv(p)
    assert [d.message for d in check_plan(deploy(p))] == [
        "an agent workload, but deployc knows no SGLang tool-call parser for meta-llama/Llama-2-7b-chat-hf: tool "
        "calls come back as plain text in the answer"]


def test_every_parser_name_is_a_choice_of_the_pinned_parser() -> None:
    manifest = load_manifest()
    tools = manifest["--tool-call-parser"]["choices"]
    reasoning = manifest["--reasoning-parser"]["choices"]
    for _fam, _pattern, _what, tool, think in _TABLE:
        assert tool is None or tool in tools, json.dumps(tool)
        assert think is None or think in reasoning, json.dumps(think)
