"""Predicted vs observed memory on real vLLM and SGLang start-up logs.

    python bench/memory_accuracy.py

For each case in bench/data/engine_memory_cases.json (and engine_memory_cases_extra.json) the
planner's own functions predict, with the case's settings (TP, memory fraction, max model
length, engine version), the weights per GPU, the KV-cache memory and the KV-cache tokens the
engine reported. Prints the error per case and overall, and exits 1 when a target is missed.
Targets on the vLLM V1 cases (``TARGETS``, asserted by tests/planner/test_accuracy.py): weights
within 2% (documented outliers in case_inputs.json ``target_outliers``), KV memory and KV tokens
within 5% median and 10% worst.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path
from typing import Any

from attrs import evolve, frozen

from deployc.catalog import GPU, ModelArch, resolve_gpu, resolve_model
from deployc.contract.backend import OverheadQuery
from deployc.planner.formats import kv_dtype_bytes, weight_format
from deployc.planner.kv import kv_bytes_per_token_per_gpu, kv_capacity_tokens
from deployc.planner.memory import MemoryInputs, plan_memory
from deployc.planner.types import Layout
from deployc.planner.weights import weights_per_gpu
from deployc.units import GIB, MIB

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "bench" / "data"


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


def _predict_sglang(case: dict[str, Any], model: ModelArch, gpu: GPU) -> dict[str, float]:
    """SGLang: tokens = the logged pool / bytes per token; on ROCm also the pool SGLang's rule predicts.

    The rule (memory_hook / model_runner): pool = mem_fraction_static × total − weights, the fraction first
    multiplied by 0.85 when AITER attention (SGLang's ROCm default) serves a context above 8,192 tokens
    (attention_hook.py; deployc_sglang.rocm).
    """
    from deployc_sglang.rocm import AITER_SCALE, aiter_scales_fraction  # noqa: PLC0415

    tp = case.get("tensor_parallel_size", 1)
    kv_bytes = 2.0
    pool = case["observed"].get("available_kv_gib", 0.0) * GIB
    weights = weights_per_gpu(model, _dense_format(model), tp=tp, pp=1)
    per_token = kv_bytes_per_token_per_gpu(model, kv_bytes, tp=tp, pp=1)
    out = {"weights_gib": weights.total_bytes / GIB, "kv_tokens": pool / per_token if pool else float("nan")}
    fraction = case.get("mem_fraction_static")
    if gpu.is_amd and fraction:
        context = case.get("max_model_len") or model.max_position_embeddings
        fraction *= AITER_SCALE if aiter_scales_fraction(True, context) else 1.0
        out["available_kv_gib"] = (fraction * gpu.memory_bytes - weights.total_bytes) / GIB
    return out


def _error(predicted: float | None, observed: float | None) -> float | None:
    if predicted is None or observed in (None, 0):
        return None
    return (predicted - observed) / observed  # type: ignore[operator]


METRICS = ("weights", "kv_mem", "kv_tok")
LABELS = {"weights": "weights", "kv_mem": "KV memory", "kv_tok": "KV tokens"}
OBSERVED = {"weights": "weights_gib", "kv_mem": "available_kv_gib", "kv_tok": "kv_tokens"}


@frozen
class Target:
    """An accuracy target on the vLLM V1 cases: |error| median and worst bounds, over at least ``min_cases``."""

    median: float | None
    worst: float
    min_cases: int

    def describe(self) -> str:
        """``5% median, 10% worst``."""
        return (f"{self.median:.0%} median, " if self.median is not None else "") + f"{self.worst:.0%} worst"


# The targets tests/planner/test_accuracy.py asserts. min_cases: as many counted cases as the data has today, so a
# case that silently stops being counted (a mapping lost, a version misread) fails the target instead of passing it.
TARGETS = {
    "weights": Target(median=None, worst=0.02, min_cases=7),
    "kv_mem": Target(median=0.05, worst=0.10, min_cases=8),
    "kv_tok": Target(median=0.05, worst=0.10, min_cases=3),
}


@frozen
class CaseResult:
    """One case: relative errors per metric (None: not observed), or why it was skipped or not counted."""

    case_id: str
    engine: str
    errors: dict[str, float | None]
    note: str
    skipped: str | None = None
    counted: frozenset[str] = frozenset()


@frozen
class Summary:
    """|error| over the counted vLLM V1 cases of one metric."""

    metric: str
    errors: tuple[float, ...]

    @property
    def median(self) -> float:
        """Median |error|."""
        return statistics.median(self.errors)

    @property
    def worst(self) -> float:
        """Largest |error|."""
        return max(self.errors)


def evaluate() -> list[CaseResult]:
    """Predict every case with the planner's own functions and compare with what the engine reported."""
    mapping = json.loads((DATA / "case_inputs.json").read_text())
    excluded: dict[str, str] = mapping["excluded_from_targets"]
    outliers: dict[str, dict[str, str]] = mapping["target_outliers"]
    results = []
    for case in _load_cases():
        model, gpu = _model(case, mapping), _gpu(case, mapping)
        empty = dict.fromkeys(METRICS)
        if model is None or gpu is None:
            results.append(CaseResult(case["id"], case["engine"], empty, "",
                                      skipped=f"no {'model config' if model is None else 'GPU'} mapping"))
            continue
        if case["engine"] == "vllm":
            profile = _vllm_profile(case, mapping)
            if profile is None:
                results.append(CaseResult(case["id"], "vllm V0", empty, "",
                                          skipped="V0 profiled a different dummy batch"))
                continue
            pred = _predict_vllm(case, model, gpu, profile)
            note = f"profile {profile.version}"
        else:
            pred = _predict_sglang(case, model, gpu)
            note = ("ROCm: KV mem = fraction (x 0.85 for AITER above 8k context) x total - weights" if gpu.is_amd
                    else "KV pool from the log; tokens = pool / bytes per token")
        obs = case["observed"]
        errors = {m: _error(pred.get(OBSERVED[m]), obs.get(OBSERVED[m])) for m in METRICS}
        counted: set[str] = set()
        if case["id"] in excluded:
            note += f"; not counted: {excluded[case['id']]}"
        elif case["engine"] == "vllm":
            counted = {m for m in METRICS if errors[m] is not None}
            for metric, why in outliers.get(case["id"], {}).items():
                counted.discard(metric)
                note += f"; {LABELS[metric]} not counted: {why}"
        results.append(CaseResult(case["id"], case["engine"], errors, note, counted=frozenset(counted)))
    return results


def summarise(results: list[CaseResult]) -> dict[str, Summary]:
    """|error| per metric over the counted vLLM V1 cases."""
    return {m: Summary(m, tuple(abs(r.errors[m]) for r in results  # type: ignore[arg-type]
                                 if m in r.counted)) for m in METRICS}


def failures(summary: dict[str, Summary]) -> list[str]:
    """Every target the summary misses, as a sentence (empty: all met)."""
    out = []
    for metric, target in TARGETS.items():
        s, label = summary[metric], LABELS[metric]
        if len(s.errors) < target.min_cases:
            out.append(f"{label}: {len(s.errors)} counted cases, fewer than the {target.min_cases} the target needs")
            continue
        if target.median is not None and s.median > target.median:
            out.append(f"{label}: median |error| {s.median:.2%} above the {target.median:.0%} target")
        if s.worst > target.worst:
            out.append(f"{label}: worst |error| {s.worst:.2%} above the {target.worst:.0%} target")
    return out


def _fmt(err: float | None) -> str:
    return "      -" if err is None else f"{err:+7.1%}"


def main() -> int:
    """Print every case and the summary; exit 1 when a target is missed."""
    results = evaluate()
    print(f"{'case':<48} {'engine':<8} {'weights':>8} {'KV mem':>8} {'KV tok':>8}  note")
    for r in results:
        if r.skipped:
            print(f"{r.case_id:<48} {r.engine:<8} skipped: {r.skipped}")
        else:
            cells = " ".join(_fmt(r.errors[m]) for m in METRICS)
            print(f"{r.case_id:<48} {r.engine:<8} {cells}  {r.note}")
    print()
    rocm = [r.case_id for r in results if r.note.startswith("ROCm")]
    print(f"ROCm logs: {len(rocm)} ({', '.join(rocm) or 'none'}); their errors are in the rows above")
    summary = summarise(results)
    for metric, target in TARGETS.items():
        s = summary[metric]
        if s.errors:
            print(f"vLLM V1 {LABELS[metric]:<10} n={len(s.errors):<3} median |error| {s.median:6.2%}  "
                  f"worst {s.worst:6.2%}  target {target.describe()}")
    missed = failures(summary)
    for line in missed:
        print(f"MISSED: {line}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
