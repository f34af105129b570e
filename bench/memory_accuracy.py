"""Predicted vs observed memory on real vLLM and SGLang start-up logs.

    python bench/memory_accuracy.py

For each case in bench/data/engine_memory_cases.json (and engine_memory_cases_extra.json) the
planner's own functions predict, with the case's settings (TP, memory fraction, max model
length, engine version), the weights per GPU, the KV-cache memory and the KV-cache tokens the
engine reported. Prints the error per case and overall. Targets on the vLLM V1 cases: weights
within 2%, KV tokens within 5% median and 10% worst.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path
from typing import Any

from attrs import evolve

from deployc.backend import OverheadQuery
from deployc.catalog import GPU, ModelArch, resolve_gpu, resolve_model
from deployc.planner.formats import kv_dtype_bytes, weight_format
from deployc.planner.kv import kv_bytes_per_token_per_gpu, kv_capacity_tokens
from deployc.planner.memory import MemoryInputs, plan_memory
from deployc.planner.types import Layout
from deployc.planner.weights import weights_per_gpu

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "bench" / "data"
GIB = 1 << 30
MIB = 1 << 20


def _load_cases() -> list[dict[str, Any]]:
    cases = json.loads((DATA / "engine_memory_cases.json").read_text())["cases"]
    extra = DATA / "engine_memory_cases_extra.json"
    if extra.exists():
        cases += json.loads(extra.read_text())["cases"]
    return cases


def _gpu(case: dict[str, Any], mapping: dict[str, Any]) -> GPU | None:
    for rule in mapping["gpus"]:
        if rule["match"] in case["gpu"]:
            gpu = resolve_gpu(rule["gpu"])
            if "memory_mib" in rule:
                gpu = evolve(gpu, memory_bytes=rule["memory_mib"] * MIB)
            reported = case.get("gpu_total_gib_reported")
            return evolve(gpu, memory_bytes=int(reported * GIB)) if reported else gpu
    return None


def _model(case: dict[str, Any], mapping: dict[str, Any]) -> ModelArch | None:
    entry = mapping["models"].get(case["arch_key"] if "arch_key" in case else case["model"])
    if entry is None:
        entry = mapping["models"].get(case["model"])
    if entry is None:
        return None
    return resolve_model(entry["ref"], base_dir=REPO, allow_download=False)


def _vllm_profile(case: dict[str, Any], mapping: dict[str, Any]) -> Any:
    from deployc_vllm.overheads import HISTORICAL_PROFILES, PROFILE  # noqa: PLC0415

    version = case.get("engine_version", "")
    # V1 became the default in 0.8; older logs (V0, or a version below 0.8 named) profile differently.
    named = re.search(r"(\d+)\.(\d+)", version)
    if "V0" in version or (named and (int(named.group(1)), int(named.group(2))) < (0, 8)):
        return None
    for rule in mapping["vllm_profiles"]:
        if rule["match"] in version:
            return HISTORICAL_PROFILES[rule["profile"]]
    return PROFILE


def _dense_format(model: ModelArch) -> Any:
    """The checkpoint's own dtype; a quantized checkpoint's format is applied by weights_per_gpu."""
    return weight_format("fp16" if model.checkpoint_dtype == "float16" else "bf16")


def _predict_vllm(case: dict[str, Any], model: ModelArch, gpu: GPU, profile: Any) -> dict[str, float]:
    from deployc_vllm.overheads import runtime_overheads  # noqa: PLC0415

    tp = case.get("tensor_parallel_size", 1)
    weights = weights_per_gpu(model, _dense_format(model), tp=tp, pp=1)
    # vLLM's scheduler defaults when the log does not state them (vllm/engine/arg_utils.py get_batch_defaults):
    # 8192 tokens / 1024 sequences for the API server on H100-class GPUs, 2048 / 256 below 70 GiB or on A100.
    big = "H100" in gpu.name or "H200" in gpu.name
    budget = case.get("max_num_batched_tokens") or (8192 if big else 2048)
    seqs = 1024 if big else 256
    query = OverheadQuery(
        model_name=model.name, num_layers=model.num_layers, hidden_size=model.hidden_size,
        intermediate_size=max(model.intermediate_size, model.moe_intermediate_size), vocab_size=model.vocab_size,
        num_attention_heads=model.num_attention_heads, is_moe=model.is_moe, gpu_name=gpu.name,
        gpu_memory_bytes=gpu.memory_bytes, tp=tp, pp=1, activation_dtype_bytes=2, max_num_batched_tokens=budget,
        max_num_seqs=seqs, cuda_graphs=not case.get("enforce_eager"), weights_bytes_per_gpu=weights.total_bytes)
    fraction = case.get("gpu_memory_utilization") or profile.default_gpu_memory_utilization
    overheads = evolve(runtime_overheads(query, profile), default_memory_fraction=fraction)
    kv_bytes = kv_dtype_bytes("fp8" if str(case.get("kv_cache_dtype", "auto")).startswith("fp8") else "bfloat16")
    memory = plan_memory(MemoryInputs(
        model=model, gpu=gpu, layout=Layout(tp=tp, pp=1, dp=1), weights_bytes_per_gpu=weights.total_bytes,
        kv_dtype_bytes=kv_bytes, reserved_bytes=0, overheads=overheads, max_model_len=case.get("max_model_len") or 4096,
        typical_request_tokens=case.get("max_model_len") or 4096, backend="vllm"))
    # The bench compares with what the engine reported, without deployc's own safety margin.
    kv = memory.per_gpu.kv_cache_bytes
    return {"weights_gib": weights.total_bytes / GIB, "available_kv_gib": kv / GIB,
            "kv_tokens": kv_capacity_tokens(model, kv, kv_bytes, tp=tp, pp=1)}


def _predict_sglang(case: dict[str, Any], model: ModelArch) -> dict[str, float]:
    """SGLang: the KV pool is what the log says it allocated; tokens = pool / bytes per token."""
    tp = case.get("tensor_parallel_size", 1)
    kv_bytes = 2.0
    pool = case["observed"].get("available_kv_gib", 0.0) * GIB
    weights = weights_per_gpu(model, _dense_format(model), tp=tp, pp=1)
    per_token = kv_bytes_per_token_per_gpu(model, kv_bytes, tp=tp, pp=1)
    return {"weights_gib": weights.total_bytes / GIB, "kv_tokens": pool / per_token if pool else float("nan")}


def _error(predicted: float | None, observed: float | None) -> float | None:
    if predicted is None or observed in (None, 0):
        return None
    return (predicted - observed) / observed  # type: ignore[operator]


def _fmt(err: float | None) -> str:
    return "      -" if err is None else f"{err:+7.1%}"


def main() -> int:
    mapping = json.loads((DATA / "case_inputs.json").read_text())
    print(f"{'case':<48} {'engine':<8} {'weights':>8} {'KV mem':>8} {'KV tok':>8}  note")
    v1: dict[str, list[float]] = {"weights": [], "kv_mem": [], "kv_tok": []}
    for case in _load_cases():
        model, gpu = _model(case, mapping), _gpu(case, mapping)
        if model is None or gpu is None:
            print(f"{case['id']:<48} {case['engine']:<8} skipped: no {'model config' if model is None else 'GPU'} "
                  "mapping")
            continue
        obs = case["observed"]
        if case["engine"] == "vllm":
            profile = _vllm_profile(case, mapping)
            if profile is None:
                print(f"{case['id']:<48} {'vllm V0':<8} skipped: V0 profiled a different dummy batch")
                continue
            pred = _predict_vllm(case, model, gpu, profile)
            note = f"profile {profile.version}"
        else:
            pred = _predict_sglang(case, model)
            note = "KV pool from the log; tokens = pool / bytes per token"
        errs = (_error(pred.get("weights_gib"), obs.get("weights_gib")),
                _error(pred.get("available_kv_gib"), obs.get("available_kv_gib")),
                _error(pred.get("kv_tokens"), obs.get("kv_tokens")))
        excluded = mapping["excluded_from_targets"].get(case["id"])
        if excluded:
            note += f"; not counted: {excluded}"
        elif case["engine"] == "vllm":
            for key, err in zip(v1, errs, strict=True):
                if err is not None:
                    v1[key].append(abs(err))
        print(f"{case['id']:<48} {case['engine']:<8} {_fmt(errs[0])} {_fmt(errs[1])} {_fmt(errs[2])}  {note}")
    print()
    for key, label, target in (("weights", "weights", "within 2%"), ("kv_mem", "KV memory", ""),
                               ("kv_tok", "KV tokens", "5% median, 10% worst")):
        values = v1[key]
        if values:
            print(f"vLLM V1 {label:<10} n={len(values):<3} median |error| {statistics.median(values):6.2%}  "
                  f"worst {max(values):6.2%}  {('target ' + target) if target else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
