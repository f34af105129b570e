"""Plans built by hand for the vLLM backend's tests (the planner's own plans come with the samples).

Each fixture is a real spec (validated with the vLLM options schema, resolved against the
catalog) and a Plan whose pools, knobs and Decisions are written out, so the emitted
artifacts depend only on what the test states.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import tomli_w

from deployc.api import resolve_spec
from deployc.planner.decisions import Decision, Quantity
from deployc.planner.plan import Plan
from deployc.planner.types import Knobs, Layout, MemoryBreakdown, MemoryPlan, Performance, PoolPlan
from deployc.plugins import default_registry
from tests.conftest import REPO

GIB = 1 << 30
HOSTILE = "we ird;$(touch /tmp/pwned)`id`'q\"\\ $HOME ~ * ?"

BASE_SPEC: dict[str, Any] = {
    "version": 1, "name": "demo",
    "model": {"id": "meta-llama/Llama-3.1-8B-Instruct"},
    "hardware": {"gpu": "H100 SXM", "gpus_per_node": 1},
    "workload": {"prompt_tokens": {"mean": 1000, "p99": 4000}, "output_tokens": {"mean": 200, "p99": 800},
                 "concurrency": 16},
    "slo": {"ttft_ms": {"p99": 2000}, "itl_ms": {"p50": 30, "p99": 50}},
}


def spec_dict(**changes: Any) -> dict[str, Any]:
    """BASE_SPEC with top-level sections merged (a section given as a dict updates the base section)."""
    spec = copy.deepcopy(BASE_SPEC)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(spec.get(key), dict):
            spec[key].update(value)
            spec[key] = {k: v for k, v in spec[key].items() if v is not None}  # None removes a key
        else:
            spec[key] = value
    return spec


def knobs(**changes: Any) -> Knobs:
    """Knobs for a BF16 8B-class model, with changes."""
    base: dict[str, Any] = {
        "dtype": "bfloat16", "weights_format": "bf16", "quantization": None, "kv_cache_dtype": "bfloat16",
        "max_model_len": 8192, "max_num_seqs": 64, "max_num_batched_tokens": 8192, "chunked_prefill": True,
        "prefix_caching": True, "cuda_graphs": True, "custom_all_reduce": True, "memory_fraction": 0.9}
    base.update(changes)
    return Knobs(**base)


def _memory(fraction: float, total: int) -> MemoryPlan:
    per_gpu = MemoryBreakdown(total_bytes=total, usable_bytes=int(total * fraction), weights_bytes=15 * GIB,
                              kv_cache_bytes=50 * GIB, activation_bytes=GIB, cuda_graph_bytes=GIB // 2,
                              other_bytes=GIB // 4)
    return MemoryPlan(per_gpu=per_gpu, kv_bytes_per_token=131072, kv_bytes_per_token_model=131072,
                      kv_capacity_tokens=409600, max_concurrency_at_max_context=50.0,
                      max_concurrency_at_typical_request=300.0, memory_fraction=fraction,
                      memory_fraction_kind="total", kv_block_size_tokens=16, backend="vllm", engine_version="0.33.0",
                      fits=True, shortfall_bytes=0, assumptions=("hand-built test plan",))


def pool(name: str, layout: Layout, share: float = 1.0, total: int = 80 * GIB, **knob_changes: Any) -> PoolPlan:
    """A pool with plausible memory and performance figures."""
    k = knobs(**knob_changes)
    perf = Performance(ttft_ms=420.0, itl_ms=21.5, tokens_per_s=3000.0, tokens_per_s_per_gpu=1500.0, bound="memory",
                       bound_share=0.8, batch_size=16.0)
    return PoolPlan(name=name, share=share, layout=layout, pp_layer_split=(), memory=_memory(k.memory_fraction, total),
                    performance=perf, knobs=k)


def decisions_for(p: PoolPlan, prefix: str = "", bus_bandwidth_gbps: float | None = None) -> list[Decision]:
    """One Decision per knob, ids as the planner names them (``<pool>.`` prefixed when there are several)."""
    k, layout = p.knobs, p.layout
    numbers = (Quantity("inter-node all-reduce bus bandwidth", bus_bandwidth_gbps, "GB/s"),) \
        if bus_bandwidth_gbps else ()
    return [
        Decision(id=f"{prefix}parallelism", value=layout.label(), rule="DPC302",
                 reason=f"{layout.label()} keeps the decode step within the ITL target", numbers=numbers),
        Decision(id=f"{prefix}max_model_len", value=k.max_model_len, rule="DPC201",
                 reason="the longest request: 4,000 prompt + 800 output tokens, rounded up"),
        Decision(id=f"{prefix}memory_fraction", value=k.memory_fraction, rule="DPC301",
                 reason=f"{k.memory_fraction} of total memory leaves room for the CUDA context"),
        Decision(id=f"{prefix}max_num_seqs", value=k.max_num_seqs, rule="DPC305",
                 reason="the workload keeps 16.0 requests in flight per replica"),
        Decision(id=f"{prefix}max_num_batched_tokens", value=k.max_num_batched_tokens, rule="DPC402",
                 reason="the largest per-step budget whose steps stay within the ITL target"),
        Decision(id=f"{prefix}chunked_prefill", value=k.chunked_prefill, rule="DPC402",
                 reason="chunks of long prompts share steps with decodes"),
        Decision(id=f"{prefix}prefix_caching", value=k.prefix_caching, rule="DPC402",
                 reason="chat turns re-send their history"),
        Decision(id=f"{prefix}kv_cache_dtype", value=k.kv_cache_dtype, rule="DPC402",
                 reason=f"{k.kv_cache_dtype} KV cache holds the workload"),
        Decision(id=f"{prefix}quantization", value=k.weights_format, rule="DPC210",
                 reason=f"{k.weights_format} weights fit"),
        Decision(id="dtype", value=k.dtype, rule="DPC202", reason=f"the checkpoint's dtype ({k.dtype})"),
        Decision(id=f"{prefix}cuda_graphs", value=k.cuda_graphs, rule="DPC402",
                 reason="graphs fit in the memory left" if k.cuda_graphs else
                 "graph memory does not fit: eager mode, 10-20% slower decode, but it starts"),
        Decision(id=f"{prefix}custom_all_reduce", value=k.custom_all_reduce, rule="DPC402",
                 reason="one-shot all-reduce kernel" if k.custom_all_reduce else
                 "TP4 over PCIe: the custom all-reduce kernel is only supported for 2 PCIe GPUs (vllm#8303)"),
    ]


def build_plan(tmp_path: Path, spec: dict[str, Any], pools: list[PoolPlan],
               bus_bandwidth_gbps: float | None = None) -> Plan:
    """Validate and resolve the spec (with the installed plugins' option schemas), then assemble the Plan."""
    path = tmp_path / f"{spec['name']}.toml"
    path.write_text(tomli_w.dumps(spec))
    registry = default_registry()
    _loaded, target, _warnings = resolve_spec(path, registry, display_name=f"{spec['name']}.toml")
    several = len(pools) > 1
    decisions: list[Decision] = []
    for p in pools:
        for d in decisions_for(p, f"{p.name}." if several else "", bus_bandwidth_gbps):
            if d.id not in {x.id for x in decisions}:
                decisions.append(d)
    return Plan(deployc_version="0.1.0", target=target, backend=registry.info("vllm"), pools=tuple(pools),
                decisions=tuple(decisions))


QWEN_AWQ_CONFIG = str(REPO / "samples" / "models" / "qwen2.5-7b-instruct-awq")


def fixture_plans(tmp_path: Path) -> dict[str, Plan]:
    """Every named fixture plan."""
    plans = {
        "h100-tp1": build_plan(tmp_path, spec_dict(name="h100-tp1"), [pool("main", Layout(tp=1, pp=1, dp=1))]),
        "a100-tp4": build_plan(tmp_path, spec_dict(
            name="a100-tp4", model={"id": "meta-llama/Llama-3.1-70B-Instruct", "served_name": "llama-70b"},
            hardware={"gpu": "A100 80GB SXM", "gpus_per_node": 4}, operations={"model_cache": "/data/hf"}),
            [pool("main", Layout(tp=4, pp=1, dp=1), memory_fraction=0.92, max_num_seqs=128)]),
        "pcie-dp2": build_plan(tmp_path, spec_dict(
            name="pcie-dp2", model={"id": "Qwen/Qwen2.5-32B-Instruct"},
            hardware={"gpu": "RTX PRO 6000 Blackwell", "gpus_per_node": 2, "interconnect": "pcie5"}),
            [pool("main", Layout(tp=1, pp=1, dp=2), total=95 * GIB, chunked_prefill=False, prefix_caching=False,
                  max_model_len=8192, max_num_batched_tokens=8192)]),
        "t4-awq": build_plan(tmp_path, spec_dict(
            name="t4-awq", model={"id": "Qwen/Qwen2.5-7B-Instruct-AWQ", "config": QWEN_AWQ_CONFIG,
                                  "served_name": "drive-thru", "max_context_tokens": 4096},
            hardware={"gpu": "Tesla T4", "reserved_memory_gib": 0.5},
            operations={"port": 9000, "model_cache": "/opt/models/hf-cache"},
            environment={"cooling": "passive", "ambient_c": 35}),
            [pool("main", Layout(tp=1, pp=1, dp=1), total=15 * GIB, dtype="float16", weights_format="awq",
                  kv_cache_dtype="float16", max_model_len=4096, max_num_batched_tokens=2048, max_num_seqs=8,
                  cuda_graphs=False, memory_fraction=0.9)]),
        "l40s-tp4-pcie": build_plan(tmp_path, spec_dict(
            name="l40s-tp4-pcie", model={"id": "meta-llama/Llama-3.1-70B-Instruct"},
            hardware={"gpu": "L40S", "gpus_per_node": 4}),
            [pool("main", Layout(tp=4, pp=1, dp=1), total=45 * GIB, custom_all_reduce=False, quantization="fp8",
                  weights_format="fp8", kv_cache_dtype="fp8")]),
        "mixed-pools": build_plan(tmp_path, spec_dict(
            name="mixed", hardware={"gpu": "A100 80GB SXM", "gpus_per_node": 4},
            workload={"request_rate_per_s": 20, "concurrency": None, "shared_prefix_tokens": 500, "classes": [
                {"name": "short", "share": 0.85, "prompt_tokens": {"mean": 900, "p99": 3500},
                 "output_tokens": {"mean": 250, "p99": 800}},
                {"name": "long", "share": 0.15, "prompt_tokens": {"mean": 24000, "p99": 60000},
                 "output_tokens": {"mean": 600, "p99": 1000}}]}),
            [pool("short", Layout(tp=1, pp=1, dp=2), share=0.85, max_model_len=4352),
             pool("long", Layout(tp=2, pp=1, dp=1), share=0.15, max_model_len=61184, max_num_seqs=8)]),
        "moe-ep-dp": build_plan(tmp_path, spec_dict(
            name="moe-ep", model={"id": "openai/gpt-oss-20b"}, hardware={"gpu": "H100 SXM", "gpus_per_node": 4}),
            [pool("main", Layout(tp=1, pp=1, dp=4, ep=4), weights_format="mxfp4")]),
        "two-nodes": build_plan(tmp_path, spec_dict(
            name="llama405b-2node", model={"id": "meta-llama/Llama-3.1-405B-Instruct"},
            hardware={"gpu": "H100 SXM", "gpus_per_node": 8, "nodes": 2, "network": "ib-ndr",
                      "network_interface": "eth0", "ib_hcas": ["mlx5_0", "mlx5_1"]}),
            [pool("main", Layout(tp=8, pp=2, dp=1), max_model_len=32768)], bus_bandwidth_gbps=45.0),
        "two-nodes-ray": build_plan(tmp_path, spec_dict(
            name="ray-2node", model={"id": "meta-llama/Llama-3.1-405B-Instruct"},
            hardware={"gpu": "H100 SXM", "gpus_per_node": 8, "nodes": 2, "network": "eth-100g",
                      "network_interface": "ens5"}, backends={"vllm": {"distributed_executor_backend": "ray"}}),
            [pool("main", Layout(tp=8, pp=2, dp=1), max_model_len=16384)]),
    }
    plans["hostile"] = hostile_plan(tmp_path)
    return plans


def hostile_plan(tmp_path: Path, extra_args: list[str] | None = None) -> Plan:
    """Every free-text value the schema lets through, made as hostile to a shell as it allows."""
    spec = spec_dict(
        name="hostile",
        model={"id": f"org/{HOSTILE}", "config": QWEN_AWQ_CONFIG, "served_name": HOSTILE, "revision": "main"},
        hardware={"gpu": "H100 SXM", "gpus_per_node": 2},
        operations={"model_cache": f"/data/{HOSTILE}", "hf_token_env": "MY_HF_TOKEN"},
        backends={"vllm": {"extra_args": extra_args if extra_args is not None else
                           ["--response-role", HOSTILE, "--max-logprobs=5"]}})
    return build_plan(tmp_path, spec, [pool("main", Layout(tp=1, pp=1, dp=2), dtype="float16",
                                            weights_format="awq", kv_cache_dtype="float16")])
