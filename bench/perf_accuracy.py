"""How close deployc's performance model comes to published measurements.

Prints, for every calibration row of ``planner/data/calibration.json``, the configuration, the
measured value, deployc's prediction and the error; then the median and worst absolute error,
overall, on the fitted rows (dense, MoE, per GPU with its own factors) and per GPU family; exits 1
when the fitted rows miss ``TARGET`` (asserted by tests/planner/test_accuracy.py). ``--fit`` searches
the efficiency factors that minimise the mean absolute log error (coordinate descent over a grid)
and prints them; ``--write`` also stores them in calibration.json. The fit is staged so each factor
is fitted on the rows that measure it: family factors and overheads on dense rows, the MoE
factor on MoE rows, a GPU's own factors on that GPU's rows. Models named by a path (a
``config.json`` the catalog lacks) resolve under ``bench/data``.

    PYTHONPATH=compiler python bench/perf_accuracy.py [--fit [--write]] [--fit --family cdna3 [--write]]

``--family`` fits one family's factors on its own dense rows and leaves every other factor as stored.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from attrs import frozen

from deployc.catalog import Link, ModelArch, resolve_gpu, resolve_link, resolve_model
from deployc.planner import calibration as calibration_module
from deployc.planner import kv, perf
from deployc.planner.calibration import Calibration, Efficiency
from deployc.planner.formats import weight_format
from deployc.planner.perf import PerfInputs
from deployc.planner.types import Layout
from deployc.planner.weights import weights_per_gpu

CALIBRATION = Path(__file__).resolve().parent.parent / "compiler/deployc/planner/data/calibration.json"
BENCH_DATA = Path(__file__).resolve().parent / "data"
FORMAT_BYTES = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0}
FAMILIES_FITTED = ("hopper", "ampere", "ada", "cdna3")
# GPUs whose own rows disagree with their family's factors; only their HBM/GDDR efficiency is fitted
# (their rows are all memory-bound decode).
GPUS_FITTED = ("RTX 4090",)


def catalog_model(name: str) -> ModelArch:
    """A catalog model, or a config.json under bench/data (never downloaded)."""
    return resolve_model(name, base_dir=BENCH_DATA, allow_download=False)


def kv_bytes_per_token_per_gpu(model: ModelArch, kv_dtype: str, tp: int) -> float:
    """The planner's per-GPU KV bytes per token (``planner/kv.py``): 2 (K, V) × layers × KV heads on this
    GPU (replicated when fewer than TP) × head_dim × bytes, or, with MLA, the latent and its RoPE key
    on every rank (DeepSeek-R1: 576 values a layer, not 2 × 128 heads × 192)."""
    return float(kv.kv_bytes_per_token_per_gpu(model, FORMAT_BYTES[kv_dtype], tp=tp, pp=1))


def intra_link(gpu_name: str) -> Link:
    """NVLink where the GPU has it, the Infinity Fabric mesh on AMD Instinct boards, else its PCIe generation."""
    gpu = resolve_gpu(gpu_name)
    if gpu.xgmi_link:
        return resolve_link(gpu.xgmi_link)
    if gpu.nvlink is not None:
        return resolve_link(f"nvlink{gpu.nvlink.gen}" if gpu.nvlink.topology == "nvswitch" else "nvlink-bridge")
    return resolve_link(f"pcie{gpu.pcie_gen or 4}")


def inputs_for(row: dict[str, Any]) -> PerfInputs:
    """The performance model's inputs for one published configuration."""
    model, gpu = catalog_model(row["model"]), resolve_gpu(row["gpu"])
    tp, pp = int(row["tp"]), int(row.get("pp", 1))
    weights = weights_per_gpu(model, weight_format(row["weights_format"]), tp=tp, pp=pp)
    return PerfInputs(
        model=model,
        gpu=gpu,
        layout=Layout(tp=tp, pp=pp, dp=1),
        intra_link=intra_link(row["gpu"]),
        network=None,
        gpus_per_node=max(tp * pp, 8),
        weights_bytes_per_gpu=weights.total_bytes,
        expert_weights_bytes_per_gpu=weights.moe_expert_bytes,
        embedding_bytes_per_gpu=weights.embedding_bytes,
        kv_bytes_per_token_per_gpu=kv_bytes_per_token_per_gpu(model, row["kv_dtype"], tp),
        weights_format=row["weights_format"],
        prompt_tokens=row["prompt_tokens"],
        output_tokens=row["output_tokens"],
        concurrency=row["concurrency"],
        prefix_cached_tokens=row.get("prefix_cached_tokens", 0),
        cuda_graphs=row.get("cuda_graphs", True),
        max_num_batched_tokens=row.get("max_num_batched_tokens", 8192),
    )


def burst_prefill_tokens_per_s(inputs: PerfInputs) -> float:
    """Input tokens/s of a burst of long prompts with short outputs: prompts prefilled one after another
    in chunks of the token budget (the decode work of the few output tokens is left out)."""
    seconds, _ = perf.ttft_s(inputs, 1.0, inputs.prompt_tokens)
    return inputs.prompt_tokens / seconds


def static_batch_seconds(inputs: PerfInputs) -> float:
    """A static batch: all prompts in one pass, then (output − 1) decode steps together."""
    batch, prompt, out = int(inputs.concurrency), int(inputs.prompt_tokens), int(inputs.output_tokens)
    prefill, _ = perf.prefill_time_s(inputs, batch * prompt, sequences=batch)
    step, _, _ = perf.decode_step_time_s(inputs, batch, prompt + out / 2)
    return prefill + (out - 1) * step


def predict(row: dict[str, Any]) -> float:
    """deployc's prediction of the row's measured quantity, in the row's unit."""
    inputs = inputs_for(row)
    kind = row["kind"]
    if kind == "ttft":
        return perf.ttft_s(inputs, inputs.concurrency, inputs.prompt_tokens + inputs.output_tokens / 2)[0] * 1e3
    if kind == "itl":
        return perf.estimate_performance(inputs).itl_ms
    if kind == "throughput":
        return perf.estimate_performance(inputs).tokens_per_s
    if kind == "static_batch_latency":
        return static_batch_seconds(inputs) * 1e3
    if kind == "static_batch_throughput_per_gpu":
        return inputs.concurrency * inputs.output_tokens / static_batch_seconds(inputs) / inputs.layout.gpus_used
    if kind == "burst_prefill_throughput":
        return burst_prefill_tokens_per_s(inputs)
    raise ValueError(f"unknown row kind {kind!r}")


# The fit's loss per row is |ln(predicted / measured)| capped at ln 2: a row off by more than 2x
# (a different engine regime) stops pulling the factors.
LOSS_CAP = math.log(2)


def log_errors(rows: list[dict[str, Any]]) -> list[float]:
    """min(|ln(predicted / measured)|, ln 2) per row."""
    return [min(abs(math.log(predict(r) / r["measured"])), LOSS_CAP) for r in rows]


def group(row: dict[str, Any]) -> str:
    """Which factors a row is fitted with: a GPU's own, the MoE factor, or its family's (dense)."""
    if row["gpu"] in GPUS_FITTED:
        return row["gpu"]
    return "moe" if catalog_model(row["model"]).is_moe else "dense"


@frozen
class RowResult:
    """One calibration row: measured, predicted, signed relative error, GPU family, factor group, fitted or held out."""

    row_id: str
    unit: str
    measured: float
    predicted: float
    family: str
    fitted: bool
    group: str = "dense"

    @property
    def error(self) -> float:
        """predicted / measured − 1."""
        return self.predicted / self.measured - 1


def evaluate(rows: list[dict[str, Any]]) -> list[RowResult]:
    """deployc's prediction for every row, with the current calibration."""
    return [RowResult(row_id=r["id"], unit=r["unit"], measured=r["measured"], predicted=predict(r),
                      family=perf.gpu_family(resolve_gpu(r["gpu"])), fitted=r.get("fit", True) is not False,
                      group=group(r))
            for r in rows]


def groups(results: list[RowResult]) -> dict[str, list[float]]:
    """|error| per group: ``all``, ``fitted`` (the rows the factors were fitted on), ``fitted <group>``
    (dense, moe, a GPU with its own factors) and each GPU family."""
    out: dict[str, list[float]] = {"all": [abs(r.error) for r in results],
                                   "fitted": [abs(r.error) for r in results if r.fitted]}
    for r in results:
        if r.fitted:
            out.setdefault(f"fitted {r.group}", []).append(abs(r.error))
    for r in results:
        out.setdefault(r.family, []).append(abs(r.error))
    return out


@frozen
class Target:
    """The accuracy target on the fitted rows: |error| median and worst bounds."""

    median: float
    worst: float


# Asserted by tests/planner/test_accuracy.py. The worst fitted rows today are gpt-oss-120b burst prefill on
# A100 (+31%) and the MoE burst and ITL rows on Hopper (within ±25%); held-out rows (other TP sizes, short-prompt
# TTFT dominated by fixed engine costs, dense controls) are reported, not targeted.
TARGET = Target(median=0.07, worst=0.35)


def failures(results: list[RowResult], target: Target = TARGET) -> list[str]:
    """Every way the fitted rows miss the target, as sentences (empty: met)."""
    fitted = [r for r in results if r.fitted]
    if not fitted:
        return ["no fitted rows"]
    out = []
    median = statistics.median(abs(r.error) for r in fitted)
    if median > target.median:
        out.append(f"fitted rows: median |error| {median:.1%} above the {target.median:.0%} target")
    out += [f"{r.row_id}: {r.error:+.1%} beyond the {target.worst:.0%} worst-row bound"
            for r in fitted if abs(r.error) > target.worst]
    return out


def report(results: list[RowResult], out: Callable[[str], None] = print) -> None:
    """The per-row table and the summary lines."""
    out(f"{'row':<64} {'measured':>10} {'predicted':>10} {'error':>7}")
    for r in results:
        mark = "" if r.fitted else "  (held out)"
        out(f"{r.row_id:<64} {r.measured:>10,.1f} {r.predicted:>10,.1f} {r.error:>+7.1%}  {r.unit}{mark}")
    out("")
    for name, errs in sorted(groups(results).items(), key=lambda kv: (not kv[0].startswith(("all", "fitted")), kv[0])):
        out(f"{name:<16} rows {len(errs):>3}  median |error| {statistics.median(errs):6.1%}  worst {max(errs):6.1%}")
    out(f"target on fitted rows: median {TARGET.median:.0%}, worst {TARGET.worst:.0%}")


def _replace(cal: Calibration, **changes: Any) -> Calibration:
    fields = {
        "by_family": cal.by_family,
        "default": cal.default,
        "step_overhead_s": cal.step_overhead_s,
        "layer_overhead_s": cal.layer_overhead_s,
        "eager_layer_overhead_s": cal.eager_layer_overhead_s,
        "moe_compute": cal.moe_compute,
        "by_gpu": cal.by_gpu,
    }
    fields.update(changes)
    return Calibration(**fields)


def _with(cal: Calibration, target: str | None, **changes: float) -> Calibration:
    """``cal`` with new values: global scalars (target None), the default, a family or a GPU."""
    if target is None:
        return _replace(cal, **changes)
    if target == "default":
        old = cal.default
    elif target in GPUS_FITTED:
        old = cal.by_gpu.get(target) or cal.by_family.get(perf.gpu_family(resolve_gpu(target)), cal.default)
    else:
        old = cal.by_family.get(target, cal.default)
    new = Efficiency(
        prefill_compute=changes.get("prefill_compute", old.prefill_compute),
        decode_compute=changes.get("decode_compute", old.decode_compute),
        decode_bandwidth=changes.get("decode_bandwidth", old.decode_bandwidth),
        source=old.source,
        step_overhead_s=changes.get("gpu_step_overhead_s", old.step_overhead_s),
    )
    if target == "default":
        return _replace(cal, default=new)
    if target in GPUS_FITTED:
        return _replace(cal, by_gpu={**cal.by_gpu, target: new})
    return _replace(cal, by_family={**cal.by_family, target: new})


GRIDS: dict[str, list[float]] = {
    "prefill_compute": [x / 100 for x in range(10, 96, 2)],
    # from 4%: small-batch decode GEMMs of early ROCm builds reached well under 10% of the FP8 peak (cdna3 rows)
    "decode_compute": [x / 100 for x in range(4, 96, 2)],
    "decode_bandwidth": [x / 100 for x in range(40, 100, 2)],
    "step_overhead_s": [x * 1e-4 for x in range(0, 41, 2)],
    "layer_overhead_s": [x * 1e-6 for x in range(0, 41, 2)],
    "moe_compute": [x / 100 for x in range(2, 61, 1)],
    "gpu_step_overhead_s": [x * 1e-4 for x in range(0, 41, 1)],
}


def _use(cal: Calibration) -> None:
    # The bench swaps the cached loader; perf.py reads the factors through this module.
    calibration_module.calibration = lambda: cal  # type: ignore[assignment]


def _score(rows: list[dict[str, Any]]) -> float:
    return statistics.fmean(log_errors(rows))


def _descend(
    cal: Calibration, rows: list[dict[str, Any]], target: str | None, keys: list[str], passes: int = 4
) -> Calibration:
    for _ in range(passes):
        for key in keys:
            _use(cal)
            best = (_score(rows), cal)
            for value in GRIDS[key]:
                trial = _with(cal, target, **{key: value})
                _use(trial)
                score = _score(rows)
                if score < best[0] - 1e-6:  # flat directions keep the starting (all-row) value
                    best = (score, trial)
            cal = best[1]
    _use(cal)
    return cal


STAGES = ("dense", "moe", "gpus")


def fit(rows: list[dict[str, Any]], stages: tuple[str, ...] = STAGES) -> Calibration:
    """Staged, each stage on the rows that measure it (the others keep their stored values):
    ``dense``: the global overheads and default factors, then each family's factors, on dense rows;
    ``moe``: the routed-expert factor on MoE rows; ``gpus``: each listed GPU's bandwidth and per-step
    cost on its own rows."""
    cal = calibration_module.calibration()
    if "dense" in stages:
        effs = ["prefill_compute", "decode_compute", "decode_bandwidth"]
        overheads = ["step_overhead_s", "layer_overhead_s"]
        dense = [r for r in rows if group(r) == "dense"]
        # The default (for families without rows) is fitted with no family factors at all.
        by_gpu = cal.by_gpu
        cal = _replace(cal, by_family={}, by_gpu={})
        for _ in range(2):
            cal = _descend(cal, dense, "default", effs)
            cal = _descend(cal, dense, None, overheads)
        default = cal.default
        for _ in range(2):
            for family in FAMILIES_FITTED:
                own = [r for r in dense if perf.gpu_family(resolve_gpu(r["gpu"])) == family]
                if own:
                    cal = _descend(cal, own, family, effs)
            cal = _descend(cal, dense, None, overheads)
        cal = _replace(cal, default=default, by_gpu=by_gpu)
    if "moe" in stages:
        cal = _descend(cal, [r for r in rows if group(r) == "moe"], None, ["moe_compute"])
    if "gpus" in stages:
        for gpu in GPUS_FITTED:
            own = [r for r in rows if group(r) == gpu]
            if own:
                cal = _descend(cal, own, gpu, ["decode_bandwidth", "gpu_step_overhead_s"])
    return cal


def fit_family(rows: list[dict[str, Any]], family: str) -> Efficiency:
    """One family's efficiency factors on its own dense rows, every other factor as stored.

    Prefill starts from (and, when every row has a short prompt, keeps) the default factor: short-prompt
    latency rows mostly measure decoding, and a free prefill factor soaks up what decode should explain.
    """
    own = [r for r in rows if group(r) == "dense" and perf.gpu_family(resolve_gpu(r["gpu"])) == family]
    if not own:
        raise SystemExit(f"no dense calibration rows for family {family!r}")
    start = calibration_module.calibration()
    seeded = _with(start, family, prefill_compute=start.default.prefill_compute)
    keys = ["decode_compute", "decode_bandwidth"]
    if any(r["prompt_tokens"] > 512 for r in own):
        keys.insert(0, "prefill_compute")
    return _descend(seeded, own, family, keys).by_family[family]


def write_family(eff: Efficiency, family: str, rows: list[dict[str, Any]], doc: dict[str, Any]) -> None:
    """Store one family's fitted factors in calibration.json, the rest untouched."""
    ids = [r["id"] for r in rows if group(r) == "dense" and perf.gpu_family(resolve_gpu(r["gpu"])) == family]
    doc["factors"]["by_family"][family] = {
        "prefill_compute": eff.prefill_compute, "decode_compute": eff.decode_compute,
        "decode_bandwidth": eff.decode_bandwidth,
        "source": f"fitted by bench/perf_accuracy.py --fit --family {family} on {len(ids)} rows: {', '.join(ids)}"}
    doc["factors"]["by_family"] = dict(sorted(doc["factors"]["by_family"].items()))
    CALIBRATION.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def write(cal: Calibration, rows: list[dict[str, Any]], doc: dict[str, Any], stages: tuple[str, ...] = STAGES) -> None:
    """Store the fitted factors (with the rows they came from) in calibration.json."""
    rows = [r for r in rows if r.get("fit", True) is not False]
    dense = [r for r in rows if group(r) == "dense"]

    def entry(e: Efficiency, ids: list[str]) -> dict[str, Any]:
        return {
            "prefill_compute": e.prefill_compute,
            "decode_compute": e.decode_compute,
            "decode_bandwidth": e.decode_bandwidth,
            "source": f"fitted by bench/perf_accuracy.py --fit on {len(ids)} rows: {', '.join(ids)}",
        }

    by_family = {}
    for family, eff in sorted(cal.by_family.items()):
        ids = [r["id"] for r in dense if perf.gpu_family(resolve_gpu(r["gpu"])) == family]
        by_family[family] = entry(eff, ids)
    factors = doc["factors"]
    if "dense" in stages:
        factors["by_family"] = by_family
        factors["default"] = entry(cal.default, [r["id"] for r in dense])
        factors["default"]["source"] = "used for GPU families without measurements; " + factors["default"]["source"]
        all_ids = f"fitted by bench/perf_accuracy.py --fit on all {len(dense)} dense rows"
        factors["step_overhead_s"] = {"value": round(cal.step_overhead_s, 6), "source": all_ids}
        factors["layer_overhead_s"] = {"value": round(cal.layer_overhead_s, 7), "source": all_ids}
    moe_ids = [r["id"] for r in rows if group(r) == "moe"]
    if "moe" in stages:
        factors["moe_compute"] = {
            "value": cal.moe_compute,
            "source": f"fitted by bench/perf_accuracy.py --fit on {len(moe_ids)} MoE rows: {', '.join(moe_ids)}",
        }
    by_gpu = {}
    for gpu, eff in sorted(cal.by_gpu.items()):
        ids = [r["id"] for r in rows if group(r) == gpu]
        by_gpu[gpu] = entry(eff, ids)
        if eff.step_overhead_s is not None:
            by_gpu[gpu]["step_overhead_s"] = round(eff.step_overhead_s, 6)
        by_gpu[gpu]["source"] = (
            f"decode_bandwidth and step_overhead_s {by_gpu[gpu]['source']}; the compute factors are its "
            "family's (no compute-bound rows)"
        )
    if "gpus" in stages:
        factors["by_gpu"] = by_gpu
    CALIBRATION.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None, out: Callable[[str], None] = print) -> int:
    """Print the accuracy table (after fitting, with --fit)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fit", action="store_true", help="search the efficiency factors first")
    parser.add_argument("--write", action="store_true", help="with --fit: store them in calibration.json")
    parser.add_argument(
        "--stages",
        default=",".join(STAGES),
        help="with --fit: which factors to fit (comma-separated of dense, moe, gpus; default all)",
    )
    parser.add_argument("--family", help="with --fit: fit only this GPU family's factors (e.g. cdna3)")
    args = parser.parse_args(argv)
    stages = tuple(x.strip() for x in args.stages.split(",") if x.strip())
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        parser.error(f"unknown fit stage {', '.join(unknown)}: choose from {', '.join(STAGES)}")
    doc = json.loads(CALIBRATION.read_text(encoding="utf-8"))
    rows = doc["rows"]
    if args.fit and args.family:
        eff = fit_family([r for r in rows if r.get("fit", True) is not False], args.family)
        out(f"  {args.family}: prefill {eff.prefill_compute:.2f}, decode compute {eff.decode_compute:.2f}, "
            f"decode bandwidth {eff.decode_bandwidth:.2f}")
        if args.write:
            write_family(eff, args.family, rows, doc)
            _use(_replace(calibration_module.calibration(),
                          by_family={**calibration_module.calibration().by_family, args.family: eff}))
    elif args.fit:
        cal = fit([r for r in rows if r.get("fit", True) is not False], stages)
        out(
            f"fitted: default {cal.default}; overheads step {cal.step_overhead_s * 1e3:.2f} ms, "
            f"layer {cal.layer_overhead_s * 1e6:.1f} µs; MoE expert GEMMs {cal.moe_compute:.2f} of the 16-bit peak"
        )
        for family, eff in sorted(cal.by_family.items()):
            out(
                f"  {family}: prefill {eff.prefill_compute:.2f}, decode compute {eff.decode_compute:.2f}, "
                f"decode bandwidth {eff.decode_bandwidth:.2f}"
            )
        for gpu, eff in sorted(cal.by_gpu.items()):
            step = eff.step_overhead_s if eff.step_overhead_s is not None else cal.step_overhead_s
            out(f"  {gpu}: decode bandwidth {eff.decode_bandwidth:.2f}, step overhead {step * 1e3:.2f} ms")
        if args.write:
            write(cal, rows, doc, stages)
    results = evaluate(rows)
    report(results, out)
    missed = failures(results, TARGET)
    for line in missed:
        out(f"MISSED: {line}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
