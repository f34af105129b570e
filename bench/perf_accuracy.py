"""How close deployc's performance model comes to published measurements.

Prints, for every calibration row of ``planner/data/calibration.json``, the configuration, the
measured value, deployc's prediction and the error; then the median and worst absolute error,
overall, on the fitted rows and per GPU family; exits 1 when the fitted rows miss ``TARGET``
(asserted by tests/planner/test_accuracy.py). ``--fit`` searches the efficiency factors that
minimise the mean absolute log error (coordinate descent over a grid) and prints them;
``--write`` also stores them in calibration.json.

    PYTHONPATH=compiler python bench/perf_accuracy.py [--fit [--write]]
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
from deployc.planner import perf
from deployc.planner.formats import weight_format
from deployc.planner.perf import Calibration, Efficiency, PerfInputs
from deployc.planner.types import Layout
from deployc.planner.weights import weights_per_gpu

CALIBRATION = Path(__file__).resolve().parent.parent / "compiler/deployc/planner/data/calibration.json"
FORMAT_BYTES = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0}
FAMILIES_FITTED = ("hopper", "ampere", "ada")


def catalog_model(name: str) -> ModelArch:
    """A catalog model (never downloaded)."""
    return resolve_model(name, base_dir=Path(), allow_download=False)


def kv_bytes_per_token_per_gpu(model: ModelArch, kv_dtype: str, tp: int) -> float:
    """2 (K, V) × layers × KV heads on this GPU (replicated when fewer than TP) × head_dim × bytes."""
    heads_per_gpu = max(model.num_kv_heads / tp, 1.0)
    return 2 * model.num_layers * heads_per_gpu * model.head_dim * FORMAT_BYTES[kv_dtype]


def intra_link(gpu_name: str) -> Link:
    """NVLink where the GPU has it, else its PCIe generation."""
    gpu = resolve_gpu(gpu_name)
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
    raise ValueError(f"unknown row kind {kind!r}")


# The fit's loss per row is |ln(predicted / measured)| capped at ln 2: a row off by more than 2x
# (a different engine regime) stops pulling the factors.
LOSS_CAP = math.log(2)


def log_errors(rows: list[dict[str, Any]]) -> list[float]:
    """min(|ln(predicted / measured)|, ln 2) per row."""
    return [min(abs(math.log(predict(r) / r["measured"])), LOSS_CAP) for r in rows]


@frozen
class RowResult:
    """One calibration row: measured, predicted, signed relative error, GPU family, fitted or held out."""

    row_id: str
    unit: str
    measured: float
    predicted: float
    family: str
    fitted: bool

    @property
    def error(self) -> float:
        """predicted / measured − 1."""
        return self.predicted / self.measured - 1


def evaluate(rows: list[dict[str, Any]]) -> list[RowResult]:
    """deployc's prediction for every row, with the current calibration."""
    return [RowResult(row_id=r["id"], unit=r["unit"], measured=r["measured"], predicted=predict(r),
                      family=perf.gpu_family(resolve_gpu(r["gpu"])), fitted=r.get("fit", True) is not False)
            for r in rows]


def groups(results: list[RowResult]) -> dict[str, list[float]]:
    """|error| per group: ``all``, ``fitted`` (the rows the factors were fitted on) and each GPU family."""
    out: dict[str, list[float]] = {"all": [abs(r.error) for r in results],
                                   "fitted": [abs(r.error) for r in results if r.fitted]}
    for r in results:
        out.setdefault(r.family, []).append(abs(r.error))
    return out


@frozen
class Target:
    """The accuracy target on the fitted rows: |error| median and worst bounds."""

    median: float
    worst: float


# Asserted by tests/planner/test_accuracy.py. The worst fitted row today is a 128-token TTFT on A100 (-30%: a
# fixed per-request cost the roofline does not model); held-out rows (other TP sizes, a different engine
# regime) are reported, not targeted.
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
    out(f"{'row':<62} {'measured':>10} {'predicted':>10} {'error':>7}")
    for r in results:
        mark = "" if r.fitted else "  (held out)"
        out(f"{r.row_id:<62} {r.measured:>10,.1f} {r.predicted:>10,.1f} {r.error:>+7.1%}  {r.unit}{mark}")
    out("")
    for name, errs in sorted(groups(results).items(), key=lambda kv: (kv[0] not in ("all", "fitted"), kv[0])):
        out(f"{name:<10} rows {len(errs):>3}  median |error| {statistics.median(errs):6.1%}  worst {max(errs):6.1%}")
    out(f"target on fitted rows: median {TARGET.median:.0%}, worst {TARGET.worst:.0%}")


def _with(cal: Calibration, family: str | None, **changes: float) -> Calibration:
    if family is None:
        scalars = {k: v for k, v in changes.items() if k.endswith("_s")}
        return Calibration(
            by_family=cal.by_family,
            default=cal.default,
            step_overhead_s=scalars.get("step_overhead_s", cal.step_overhead_s),
            layer_overhead_s=scalars.get("layer_overhead_s", cal.layer_overhead_s),
            eager_layer_overhead_s=cal.eager_layer_overhead_s,
        )
    old = cal.by_family.get(family, cal.default) if family != "default" else cal.default
    new = Efficiency(
        prefill_compute=changes.get("prefill_compute", old.prefill_compute),
        decode_compute=changes.get("decode_compute", old.decode_compute),
        decode_bandwidth=changes.get("decode_bandwidth", old.decode_bandwidth),
        source=old.source,
    )
    if family == "default":
        return Calibration(
            by_family=cal.by_family,
            default=new,
            step_overhead_s=cal.step_overhead_s,
            layer_overhead_s=cal.layer_overhead_s,
            eager_layer_overhead_s=cal.eager_layer_overhead_s,
        )
    return Calibration(
        by_family={**cal.by_family, family: new},
        default=cal.default,
        step_overhead_s=cal.step_overhead_s,
        layer_overhead_s=cal.layer_overhead_s,
        eager_layer_overhead_s=cal.eager_layer_overhead_s,
    )


GRIDS: dict[str, list[float]] = {
    "prefill_compute": [x / 100 for x in range(10, 96, 2)],
    "decode_compute": [x / 100 for x in range(10, 96, 2)],
    "decode_bandwidth": [x / 100 for x in range(40, 100, 2)],
    "step_overhead_s": [x * 1e-4 for x in range(0, 41, 2)],
    "layer_overhead_s": [x * 1e-6 for x in range(0, 41, 2)],
}


def _use(cal: Calibration) -> None:
    perf.calibration = lambda: cal  # type: ignore[assignment]  # the bench swaps the cached loader


def _score(rows: list[dict[str, Any]]) -> float:
    return statistics.fmean(log_errors(rows))


def _descend(
    cal: Calibration, rows: list[dict[str, Any]], family: str | None, keys: list[str], passes: int = 4
) -> Calibration:
    for _ in range(passes):
        for key in keys:
            _use(cal)
            best = (_score(rows), cal)
            for value in GRIDS[key]:
                trial = _with(cal, family, **{key: value})
                _use(trial)
                score = _score(rows)
                if score < best[0] - 1e-6:  # flat directions keep the starting (all-row) value
                    best = (score, trial)
            cal = best[1]
    _use(cal)
    return cal


def fit(rows: list[dict[str, Any]]) -> Calibration:
    """Global overheads and default factors on every row, then each family's factors on its rows."""
    start = perf.calibration()
    effs = ["prefill_compute", "decode_compute", "decode_bandwidth"]
    overheads = ["step_overhead_s", "layer_overhead_s"]
    # The default (for families without rows) is fitted with no family factors at all.
    cal = Calibration(
        by_family={},
        default=start.default,
        step_overhead_s=start.step_overhead_s,
        layer_overhead_s=start.layer_overhead_s,
        eager_layer_overhead_s=start.eager_layer_overhead_s,
    )
    for _ in range(2):
        cal = _descend(cal, rows, "default", effs)
        cal = _descend(cal, rows, None, overheads)
    default = cal.default
    for _ in range(2):
        for family in FAMILIES_FITTED:
            own = [r for r in rows if perf.gpu_family(resolve_gpu(r["gpu"])) == family]
            if own:
                cal = _descend(cal, own, family, effs)
        cal = _descend(cal, rows, None, overheads)
    return Calibration(
        by_family=cal.by_family,
        default=default,
        step_overhead_s=cal.step_overhead_s,
        layer_overhead_s=cal.layer_overhead_s,
        eager_layer_overhead_s=cal.eager_layer_overhead_s,
    )


def write(cal: Calibration, rows: list[dict[str, Any]], doc: dict[str, Any]) -> None:
    """Store the fitted factors (with the rows they came from) in calibration.json."""
    rows = [r for r in rows if r.get("fit", True) is not False]

    def entry(e: Efficiency, ids: list[str]) -> dict[str, Any]:
        return {
            "prefill_compute": e.prefill_compute,
            "decode_compute": e.decode_compute,
            "decode_bandwidth": e.decode_bandwidth,
            "source": f"fitted by bench/perf_accuracy.py --fit on {len(ids)} rows: {', '.join(ids)}",
        }

    by_family = {}
    for family, eff in sorted(cal.by_family.items()):
        ids = [r["id"] for r in rows if perf.gpu_family(resolve_gpu(r["gpu"])) == family]
        by_family[family] = entry(eff, ids)
    factors = doc["factors"]
    factors["by_family"] = by_family
    factors["default"] = entry(cal.default, [r["id"] for r in rows])
    factors["default"]["source"] = "used for GPU families without measurements; " + factors["default"]["source"]
    all_ids = f"fitted by bench/perf_accuracy.py --fit on all {len(rows)} rows"
    factors["step_overhead_s"] = {"value": round(cal.step_overhead_s, 6), "source": all_ids}
    factors["layer_overhead_s"] = {"value": round(cal.layer_overhead_s, 7), "source": all_ids}
    CALIBRATION.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None, out: Callable[[str], None] = print) -> int:
    """Print the accuracy table (after fitting, with --fit)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fit", action="store_true", help="search the efficiency factors first")
    parser.add_argument("--write", action="store_true", help="with --fit: store them in calibration.json")
    args = parser.parse_args(argv)
    doc = json.loads(CALIBRATION.read_text(encoding="utf-8"))
    rows = doc["rows"]
    if args.fit:
        cal = fit([r for r in rows if r.get("fit", True) is not False])
        out(
            f"fitted: default {cal.default}; overheads step {cal.step_overhead_s * 1e3:.2f} ms, "
            f"layer {cal.layer_overhead_s * 1e6:.1f} µs"
        )
        for family, eff in sorted(cal.by_family.items()):
            out(
                f"  {family}: prefill {eff.prefill_compute:.2f}, decode compute {eff.decode_compute:.2f}, "
                f"decode bandwidth {eff.decode_bandwidth:.2f}"
            )
        if args.write:
            write(cal, rows, doc)
    results = evaluate(rows)
    report(results, out)
    missed = failures(results, TARGET)
    for line in missed:
        out(f"MISSED: {line}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
