"""TensorRT-LLM backend: capability per flow, emitted flags and YAML keys against data/ manifests, scripts."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from deployc.api import plan
from deployc.contract.toolkit.bench import BENCH_FLAGS
from deployc.diagnostics import DeploycError, Severity
from deployc.planner.plan import Plan
from deployc_trtllm.capability import pytorch_weights_capability, weights_capability
from deployc_trtllm.checks import check_plan
from deployc_trtllm.commands import build_command, engine_extra_options
from deployc_trtllm.commands import serve_command as engine_serve_command
from deployc_trtllm.emission import emit
from deployc_trtllm.manifests import check_flags, check_llm_api_yaml, load
from deployc_trtllm.monitoring import COLLECTOR_METRICS, METRICS
from deployc_trtllm.pytorch import extra_options, graph_batch_sizes, serve_command
from tests.conftest import REPO
from tests.contract_helpers import deploy
from tests.system_tools import tool_or_skip

SAMPLES = sorted((REPO / "samples").glob("*.toml"))
REFUSED = {  # sample → words of the diagnostic saying why TensorRT-LLM cannot serve it
    "qwen7b-awq-t4-edge": "supports Ampere, Ada, Hopper and Blackwell",
    "llama70b-awq-rtx-pro-6000": "awq checkpoints are not among them",
    "llama70b-fp8-mi300x-chat": "runs only on NVIDIA GPUs; MI300X is not one",
    "deepseek-r1-mi300x8": "runs only on NVIDIA GPUs; MI300X is not one",
}
PYTORCH_FLOW = {"gpt-oss-120b-h100", "deepseek-r1-h200x8", "llama405b-2nodes-16gpu", "llama70b-a100-nvlink",
                "mixed-short-long-a100", "qwen32b-2x-pcie-multiuser"}


def _plan(path: Path) -> Plan:
    result, _ = plan(path, "trtllm", display_name=path.name)
    return result


def _with_table(tmp_path: Path, stem: str, table: str) -> Path:
    path = tmp_path / f"{stem}.toml"
    path.write_text((REPO / "samples" / f"{stem}.toml").read_text() + f"\n[backends.trtllm]\n{table}\n")
    return path


@pytest.fixture(scope="module")
def plans() -> dict[str, Plan]:
    out: dict[str, Plan] = {}
    for path in SAMPLES:
        try:
            out[path.stem] = _plan(path)
        except DeploycError:
            continue
    return out


def _artifact(p: Plan, name: str) -> str:
    return next(a.content for a in emit(deploy(p)).artifacts if a.path == name)


@pytest.mark.parametrize("stem", sorted(REFUSED))
def test_refused_samples_say_why(stem: str) -> None:
    with pytest.raises(DeploycError) as info:
        _plan(REPO / "samples" / f"{stem}.toml")
    assert REFUSED[stem] in " ".join(f"{d.message} {d.hint or ''}" for d in info.value.diagnostics)


def test_flows_of_the_samples(plans: dict[str, Plan]) -> None:
    assert set(plans) | set(REFUSED) == {p.stem for p in SAMPLES}
    for name, p in plans.items():
        flow = next(d for d in emit(deploy(p)).decisions if d.id == "trtllm.flow")
        assert str(flow.value).startswith("pytorch" if name in PYTORCH_FLOW else "engine"), name


def test_every_emitted_flag_and_yaml_key_is_in_the_manifests(plans: dict[str, Plan]) -> None:
    for name, p in plans.items():
        assert [d for d in check_plan(deploy(p)) if d.severity is Severity.ERROR] == [], name
        pytorch = name in PYTORCH_FLOW
        for artifact in emit(deploy(p)).artifacts:
            if artifact.path.startswith("extra-llm-api-options"):
                doc = yaml.safe_load(artifact.content)
                assert check_llm_api_yaml(doc, "pytorch" if pytorch else "tensorrt") == [], name


def test_gpt_oss_and_deepseek_run_the_pytorch_flow_with_manifest_keys(plans: dict[str, Plan]) -> None:
    models = load("llm-api")["models"]
    for name in ("gpt-oss-120b-h100", "deepseek-r1-h200x8"):
        p = plans[name]
        doc = yaml.safe_load(_artifact(p, f"extra-llm-api-options-{p.target.spec.name}.yaml"))
        for key, value in doc.items():
            field = models["TorchLlmArgs"]["fields"][key]  # KeyError: a key the refreshed manifest lacks
            if isinstance(value, dict):
                assert set(value) <= set(models[field["model"]]["fields"]), key
        args = serve_command(deploy(p), deploy(p).primary, 8000, "/etc/deployc/x.yaml").args
        assert args[:3] == (p.target.spec.model.id, "--backend", "pytorch")
        assert check_flags("serve", args, 1) == []
    gpt = yaml.safe_load(_artifact(plans["gpt-oss-120b-h100"], "extra-llm-api-options-gpt-oss-120b.yaml"))
    assert gpt["moe_config"] == {"backend": "TRITON"}  # MXFP4 experts on Hopper
    deepseek = plans["deepseek-r1-h200x8"]
    ds = yaml.safe_load(_artifact(deepseek, "extra-llm-api-options-deepseek-r1.yaml"))
    layout = deepseek.primary.layout
    assert ds["enable_attention_dp"] is True and "speculative_config" not in ds
    args = serve_command(deploy(deepseek), deploy(deepseek).primary, 8000, "x").args
    assert args[args.index("--tp_size") + 1] == str(layout.tp * layout.dp)
    assert args[args.index("--ep_size") + 1] == str(layout.ep)


def test_manifest_rejects_keys_of_the_other_flow_and_wrong_spellings() -> None:
    assert check_flags("build", ["--tp_size", "2"]) == [
        "--tp_size is not a flag of trtllm-build (manifest tensorrt-llm 1.2.1)"]
    assert check_flags("serve", ["m", "--tp-size", "2"], positionals=1)[0].startswith("--tp-size is not a flag")
    assert check_llm_api_yaml({"cuda_graph_config": {"batch_sizes": [1, 2]}}, "tensorrt") == [
        "cuda_graph_config is not a field of TrtLlmArgs"]
    assert check_llm_api_yaml({"build_config": {}}, "pytorch") == ["build_config is not a field of TorchLlmArgs"]
    assert check_llm_api_yaml({"kv_cache_connector_config": {}}, "pytorch") == [
        "kv_cache_connector_config is not a field of TorchLlmArgs"]
    assert check_llm_api_yaml({"kv_cache_config": {"free_gpu_mem_fraction": 0.9}}, "pytorch") == [
        "kv_cache_config.free_gpu_mem_fraction is not a field of KvCacheConfig"]
    assert check_llm_api_yaml({"moe_config": {"backend": "MARLIN"}}, "pytorch")[0].startswith(
        "moe_config.backend 'MARLIN' is not one of")


def test_pytorch_flow_capability() -> None:
    assert pytorch_weights_capability((8, 0), "bf16", None).supported
    assert not pytorch_weights_capability((9, 0), "fp8", None).supported  # no online quantization
    from deployc.catalog.arch import CheckpointQuant
    block = CheckpointQuant(method="fp8", bits=8, block_size=(128, 128), weight_type="float")
    assert not pytorch_weights_capability((8, 9), "fp8", block).supported
    assert pytorch_weights_capability((9, 0), "fp8", block).supported
    per_tensor = CheckpointQuant(method="fp8", bits=8, weight_type="float")
    assert pytorch_weights_capability((8, 9), "fp8", per_tensor).supported
    assert not pytorch_weights_capability((8, 9), "mxfp4", CheckpointQuant(method="mxfp4", bits=4)).supported
    assert pytorch_weights_capability((9, 0), "mxfp4", CheckpointQuant(method="mxfp4", bits=4)).supported
    assert not pytorch_weights_capability((9, 0), "nvfp4", CheckpointQuant(method="nvfp4", bits=4)).supported
    assert not pytorch_weights_capability((9, 0), "awq", CheckpointQuant(method="awq", bits=4)).supported
    assert not weights_capability((8, 0), "fp8", False).supported
    assert weights_capability((8, 9), "fp8", False).supported
    assert weights_capability((8, 0), "awq", False).supported  # quantize.py --qformat int4_awq


def test_pinned_flows(tmp_path: Path) -> None:
    with pytest.raises(DeploycError) as info:
        _plan(_with_table(tmp_path, "llama8b-fp8-h100-stable", 'flow = "pytorch"'))
    assert "PyTorch flow serves a pre-quantized checkpoint" in str(info.value.diagnostics[0].hint)
    with pytest.raises(DeploycError) as info:
        _plan(_with_table(tmp_path, "gpt-oss-120b-h100", 'flow = "engine"'))
    assert "engine flow (quantize.py + trtllm-build) has no mxfp4 path" in str(info.value.diagnostics[0].hint)
    p = _plan(_with_table(tmp_path, "llama70b-a100-nvlink", 'flow = "engine"'))
    assert {a.path for a in emit(deploy(p)).artifacts} >= {"build.sh", "build-engine.sh", "run.sh", "compose.yaml"}
    args = build_command(deploy(p), deploy(p).primary).args
    assert args[args.index("--max_batch_size") + 1] == str(p.primary.knobs.max_num_seqs)
    assert "--tp_size" not in args  # fixed at quantization in TensorRT-LLM
    assert "--kv_cache_free_gpu_memory_fraction" in engine_serve_command(deploy(p), deploy(p).primary, 8000).args
    assert engine_extra_options(deploy(p).primary)["kv_cache_config"]["free_gpu_memory_fraction"] == 0.9
    with pytest.raises(DeploycError) as info:  # refused while planning (deployc_layout_support), not at build
        _plan(_with_table(tmp_path, "llama405b-2nodes-16gpu", 'flow = "engine"'))
    assert "the TensorRT-LLM engine flow is emitted for one node" in str(info.value.diagnostics[0].hint)


def test_auto_flow_never_falls_back_to_the_engine_flow_across_nodes(tmp_path: Path) -> None:
    text = (REPO / "samples" / "llama405b-2nodes-16gpu.toml").read_text().replace('quantization = "none"',
                                                                               'quantization = "fp8"')
    path = tmp_path / "two-nodes-fp8.toml"
    path.write_text(text)
    with pytest.raises(DeploycError) as info:
        _plan(path)
    assert "PyTorch flow serves a pre-quantized checkpoint" in str(info.value.diagnostics[0].hint)
    path.write_text(text.replace('quantization = "fp8"', 'quantization = "auto"'))
    p = _plan(path)
    assert p.primary.knobs.weights_format == "bf16" and check_plan(deploy(p)) == []


def test_yaml_settings_follow_the_plan(plans: dict[str, Plan]) -> None:
    p = plans["llama70b-a100-nvlink"]
    doc = extra_options(deploy(p), deploy(p).primary)
    k = p.primary.knobs
    assert doc["kv_cache_config"] == {"free_gpu_memory_fraction": round(k.memory_fraction, 2),
                                      "enable_block_reuse": k.prefix_caching}
    assert doc["cuda_graph_config"] == {"enable_padding": True, "batch_sizes": graph_batch_sizes(k.max_num_seqs)}
    assert doc["return_perf_metrics"] is True and doc["enable_iter_perf_stats"] is True
    assert graph_batch_sizes(48) == [1, 2, 4, 8, 16, 32, 48] and graph_batch_sizes(64)[-2:] == [32, 64]
    assert graph_batch_sizes(2000)[-1] == 512


def test_containers_as_nvidia_runs_them(plans: dict[str, Plan]) -> None:
    for name in ("llama70b-a100-nvlink", "llama8b-fp8-h100-stable"):  # PyTorch flow, engine flow
        run = _artifact(plans[name], "run.sh")
        assert "--ulimit memlock=-1 \\" in run and "--ulimit stack=67108864 \\" in run
        server = plans[name].target.spec.name
        assert f"if docker container inspect {server} >/dev/null 2>&1; then" in run
        compose = yaml.safe_load(_artifact(plans[name], "compose.yaml"))
        assert compose["services"][server]["ulimits"] == {"memlock": -1, "stack": 67108864}


def test_multi_node_launch_and_preflight(plans: dict[str, Plan]) -> None:
    p = plans["llama405b-2nodes-16gpu"]
    paths = {a.path for a in emit(deploy(p)).artifacts}
    assert {"serve-slurm-llama405b-2node.sh", "preflight-nccl.sh"} <= paths and "run.sh" not in paths
    slurm = _artifact(p, "serve-slurm-llama405b-2node.sh")
    for words in ("--mpi pmix", "--ntasks-per-node 8", "--nodes 2", "trtllm-llmapi-launch \\", "trtllm-serve \\",
                  "export NCCL_IB_HCA=mlx5_0,mlx5_1", "--tp_size 8", "--pp_size 2"):
        assert words in slurm, words
    preflight = _artifact(p, "preflight-nccl.sh")
    assert "all_reduce_perf" in preflight and "TRTLLM_NODE_ADDRS" in preflight
    lws, _service = list(yaml.safe_load_all(_artifact(p, "k8s/llama405b-2node.yaml")))[1:]
    leader = lws["spec"]["leaderWorkerTemplate"]["leaderTemplate"]["spec"]["containers"][0]
    assert leader["command"] == ["bash"] and "mpirun --allow-run-as-root" in leader["args"][1]
    assert leader["args"][3:5] == ["trtllm-serve", p.target.spec.model.id]


def test_single_node_servers_of_a_multi_node_plan_get_one_script_per_node(tmp_path: Path) -> None:
    path = tmp_path / "fleet.toml"
    path.write_text('version = 1\nname = "fleet"\n[model]\nid = "meta-llama/Llama-3.1-8B-Instruct"\n'
                    'quantization = "none"\n[hardware]\ngpu = "H100 SXM"\ngpus_per_node = 8\nnodes = 2\n'
                    'network = "eth-100g"\nnetwork_interface = "eth0"\n[workload]\nkind = "chat"\n'
                    "prompt_tokens = { mean = 1000, p99 = 4000 }\noutput_tokens = { mean = 200, p99 = 800 }\n"
                    "concurrency = 512\n")
    p = _plan(path)
    layout = p.primary.layout
    assert layout.gpus_used == 16 and layout.tp * layout.pp <= 8
    paths = {a.path for a in emit(deploy(p)).artifacts}
    assert {"run-node-0.sh", "run-node-1.sh"} <= paths and "compose.yaml" not in paths
    assert "preflight-nccl.sh" not in paths  # no server spans nodes: no collective crosses the fabric
    per_node = 8 // (layout.tp * layout.pp)
    for node in (0, 1):
        script = _artifact(p, f"run-node-{node}.sh")
        names = [f"fleet-{r}" for r in range(node * per_node, (node + 1) * per_node)]
        assert [line.split()[1] for line in script.splitlines() if line.startswith("    --name ")] == names
        assert "    --publish 8000:8000 \\" in script  # each node's first server on the spec's port
    (deployment, _service) = list(yaml.safe_load_all(_artifact(p, "k8s/fleet.yaml")))[1:]
    assert deployment["spec"]["replicas"] == layout.dp


def test_bench_and_monitoring(plans: dict[str, Plan]) -> None:
    p = plans["gpt-oss-120b-h100"]
    bench = _artifact(p, "bench.sh")
    flags = {w for line in bench.splitlines() for w in line.split() if w.startswith("--") and "=" not in w}
    assert {"--random-input-len", "--max-concurrency"} <= flags
    assert flags - {"--", "--rm", "--network", "--volume", "--env", "--entrypoint"} <= BENCH_FLAGS
    rules = yaml.safe_load(_artifact(p, "prometheus-rules.yaml"))["groups"][0]["rules"]
    exprs = " ".join(r["expr"] for r in rules)
    assert "trtllm_time_per_output_token_seconds_bucket" in exprs and "trtllm_num_requests_waiting" in exprs
    assert ":8000/prometheus/metrics" in _artifact(p, "monitoring.md")
    queried = set(re.findall(r"trtllm_[a-z_]+", exprs + " ".join(
        [METRICS.kv_usage, METRICS.queue, METRICS.hit_rate or "", METRICS.ttft_histogram, METRICS.itl_histogram])))
    assert {q.removesuffix("_bucket") for q in queried} <= COLLECTOR_METRICS


def test_shellcheck(plans: dict[str, Plan], tmp_path: Path) -> None:
    files = []
    for name, p in plans.items():
        for artifact in emit(deploy(p)).artifacts:
            if artifact.path.endswith(".sh"):
                path = tmp_path / f"{name}-{artifact.path}"
                path.write_text(artifact.content)
                files.append(str(path))
    lws = list(yaml.safe_load_all(_artifact(plans["llama405b-2nodes-16gpu"], "k8s/llama405b-2node.yaml")))[1]
    for role in ("leaderTemplate", "workerTemplate"):
        args = lws["spec"]["leaderWorkerTemplate"][role]["spec"]["containers"][0]["args"]
        path = tmp_path / f"k8s-{role}.sh"
        path.write_text("#!/usr/bin/env bash\n" + args[1].replace("$$", "$") + "\n")  # as Kubernetes passes it
        files.append(str(path))
    result = subprocess.run([tool_or_skip("shellcheck"), *files], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout
