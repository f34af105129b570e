"""SGLang artifacts for every sample: pinned flag spellings, reasons, shellcheck, manifest check."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from deployc.planner.plan import Plan
from deployc_sglang.checks import check_plan
from deployc_sglang.command import launch_command
from deployc_sglang.emission import emit
from deployc_sglang.flags import check_argv, check_config
from deployc_sglang.options import parse_options
from tests.conftest import SAMPLES
from tests.contract_helpers import deploy
from tests.plugins.sglang.conftest import with_knobs
from tests.system_tools import tool_or_skip


def test_every_sample_plans_with_sglang(sample_plans: dict[str, Plan]) -> None:
    # none failed to plan but the T4 sample: SGLang refuses Turing (test_capability_overheads)
    assert sorted(sample_plans) == sorted(p.stem for p in SAMPLES if p.stem != "qwen7b-awq-t4-edge")


def test_emitted_artifacts_pass_the_plugin_checks(sample_plans: dict[str, Plan]) -> None:
    for name, plan in sample_plans.items():
        assert [d.message for d in check_plan(deploy(plan)) if d.severity.name == "ERROR"] == [], name


def test_config_yaml_equals_the_command(sample_plans: dict[str, Plan]) -> None:
    for plan in sample_plans.values():
        emission = emit(deploy(plan))
        for artifact in emission.artifacts:
            if artifact.path.startswith("sglang-") and artifact.path.endswith(".yaml"):
                doc = yaml.safe_load(artifact.content)
                assert check_config(doc) == []
                assert "cuda-graph-max-bs" not in doc  # ambiguous prefix in 0.5.23


def test_every_flag_has_a_reason_and_plan_settings_name_their_decision(sample_plans: dict[str, Plan]) -> None:
    planned = {"--tp-size", "--context-length", "--mem-fraction-static", "--max-running-requests",
               "--chunked-prefill-size", "--dtype"}
    for plan in sample_plans.values():
        flags = emit(deploy(plan)).flags
        assert all(f.reason for f in flags)
        for flag in flags:
            if flag.flag in planned:
                assert flag.decision is not None, flag


def test_mem_fraction_reason_says_which_way_to_move_it(sample_plans: dict[str, Plan]) -> None:
    emission = emit(deploy(sample_plans["llama8b-fp8-h100-stable"]))
    flag = next(f for f in emission.flags if f.flag == "--mem-fraction-static")
    assert "start-up" in flag.reason and "LOWER" in flag.reason


def test_fp8_kv_cache_is_spelled_fp8_e4m3(sample_plans: dict[str, Plan]) -> None:
    plan = with_knobs(sample_plans["llama8b-fp8-h100-stable"], kv_cache_dtype="fp8")
    argv = launch_command(deploy(plan), deploy(plan).servers[0], parse_options(None)).argv
    assert argv[argv.index("--kv-cache-dtype") + 1] == "fp8_e4m3"
    assert check_argv(argv) == []


def test_graphs_off_and_chunking_off_use_0_5_23_spellings(sample_plans: dict[str, Plan]) -> None:
    plan = with_knobs(sample_plans["llama8b-fp8-h100-stable"], cuda_graphs=False, chunked_prefill=False,
                      prefix_caching=False)
    argv = launch_command(deploy(plan), deploy(plan).servers[0], parse_options(None)).argv
    assert argv[argv.index("--cuda-graph-backend-decode"):][:2] == ("--cuda-graph-backend-decode", "disabled")
    assert "--disable-cuda-graph" not in argv
    assert argv[argv.index("--chunked-prefill-size") + 1] == "-1"
    assert "--disable-radix-cache" in argv
    assert argv[argv.index("--schedule-policy") + 1] == "fcfs"
    assert check_argv(argv) == []


def test_prefix_heavy_traffic_gets_cache_aware_scheduling(sample_plans: dict[str, Plan]) -> None:
    argv = launch_command(deploy(sample_plans["agent-platform-qwen3-32b"]),
                          deploy(sample_plans["agent-platform-qwen3-32b"]).servers[0],
                          parse_options(None)).argv
    assert argv[argv.index("--schedule-policy") + 1] == "lpm"


def test_multi_node_scripts_per_node(sample_plans: dict[str, Plan]) -> None:
    emission = emit(deploy(sample_plans["llama405b-2nodes-16gpu"]))
    paths = {a.path for a in emission.artifacts}
    assert {"node-0.sh", "node-1.sh", "preflight-nccl.sh"} <= paths
    node1 = next(a.content for a in emission.artifacts if a.path == "node-1.sh")
    assert "--node-rank 1" in node1 and "--nnodes 2" in node1 and '--dist-init-addr "${SGLANG_DIST_INIT_ADDR}"' in node1


def test_checker_rejects_what_0_5_23_rejects() -> None:
    assert check_argv(["--model-path", "m", "--cuda-graph-max-bs", "8"])[0].startswith(
        "--cuda-graph-max-bs is an abbreviation")
    assert "not one of" in check_argv(["--model-path", "m", "--kv-cache-dtype", "fp8"])[0]
    assert check_argv(["--model-path", "m", "--master-addr", "x"]) == ["--master-addr is not a flag of SGLang 0.5.23"]
    assert check_argv(["--tp-size", "2"]) == ["--model-path is required"]


def test_scripts_are_shellcheck_clean(sample_plans: dict[str, Plan], tmp_path: Path) -> None:
    shellcheck = tool_or_skip("shellcheck")
    files = []
    for name, plan in sample_plans.items():
        for artifact in emit(deploy(plan)).artifacts:
            if artifact.path.endswith(".sh"):
                path = tmp_path / f"{name}-{artifact.path}"
                path.write_text(artifact.content)
                files.append(str(path))
    result = subprocess.run([shellcheck, "--severity=style", *files], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout
