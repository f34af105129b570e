"""The performance model's fitted factors, read once from ``planner/data/calibration.json``.

Split out of ``perf.py`` so the roofline stays one job. Every factor is fitted by
``bench/perf_accuracy.py --fit`` on the public measurements listed in the same file (each row cites
its source); ``docs/performance-model.md`` §9 explains them.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from attrs import frozen

from deployc.catalog import GPU


@frozen(kw_only=True)
class Efficiency:
    """Fractions of peak one GPU family (or one GPU) reaches, and the calibration rows they were fitted on."""

    prefill_compute: float
    decode_compute: float
    decode_bandwidth: float
    source: str
    step_overhead_s: float | None = None  # a GPU's own fixed per-step cost; None: the global one


@frozen(kw_only=True)
class Calibration:
    """Fitted factors (``planner/data/calibration.json``).

    ``by_gpu`` overrides ``by_family`` for one catalog GPU whose own measurements disagree with its
    family's (the RTX 4090 against the L40S-fitted Ada factors). ``moe_compute`` is the fraction of
    the 16-bit dense tensor peak that routed-expert (grouped) GEMMs reach.
    """

    by_family: dict[str, Efficiency]
    default: Efficiency
    step_overhead_s: float
    layer_overhead_s: float
    eager_layer_overhead_s: float
    moe_compute: float
    by_gpu: dict[str, Efficiency]


def _efficiency(entry: dict[str, Any]) -> Efficiency:
    return Efficiency(
        prefill_compute=float(entry["prefill_compute"]),
        decode_compute=float(entry["decode_compute"]),
        decode_bandwidth=float(entry["decode_bandwidth"]),
        source=str(entry["source"]),
        step_overhead_s=float(entry["step_overhead_s"]) if "step_overhead_s" in entry else None,
    )


@cache
def calibration() -> Calibration:
    """The fitted efficiency factors, read once from the package data."""
    text = resources.files("deployc.planner").joinpath("data", "calibration.json").read_text(encoding="utf-8")
    raw = json.loads(text)["factors"]
    return Calibration(
        by_family={k: _efficiency(v) for k, v in raw["by_family"].items()},
        default=_efficiency(raw["default"]),
        step_overhead_s=float(raw["step_overhead_s"]["value"]),
        layer_overhead_s=float(raw["layer_overhead_s"]["value"]),
        eager_layer_overhead_s=float(raw["eager_layer_overhead_s"]["value"]),
        moe_compute=float(raw["moe_compute"]["value"]),
        by_gpu={k: _efficiency(v) for k, v in raw.get("by_gpu", {}).items()},
    )


def gpu_family(gpu: GPU) -> str:
    """The catalog architecture slug: ``hopper``, ``ampere``, ``ada``, ``blackwell-consumer``..."""
    return gpu.arch


def efficiency(gpu: GPU) -> Efficiency:
    """The factors fitted for this GPU, else for its architecture, else the all-rows default."""
    cal = calibration()
    return cal.by_gpu.get(gpu.name) or cal.by_family.get(gpu_family(gpu), cal.default)


def step_overhead_s(gpu: GPU) -> float:
    """The fixed per-step cost (scheduler, sampling, launch): the GPU's own when fitted, else the global one."""
    own = efficiency(gpu).step_overhead_s
    return calibration().step_overhead_s if own is None else own


def fitted_for(gpu: GPU) -> str | None:
    """What the factors used for ``gpu`` were fitted for (the GPU's name or its family), or None."""
    cal = calibration()
    if gpu.name in cal.by_gpu:
        return gpu.name
    family = gpu_family(gpu)
    return family if family in cal.by_family else None
