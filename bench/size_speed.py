"""How long `deployc size` takes: 4 GPU types, up to 16 GPUs; target under 2 s (issue 10).

Sizes each spec given (default: every sample with a single request class) over H100 SXM,
A100 80GB SXM, L40S and L4 with --max-gpus 16, in process after a warm-up run of another spec
(imports and catalog caches excluded); the plan cache and the simulation memo are cleared before
each spec, so each is sized cold. The GPU types are searched in as many worker processes as
``deployc size`` starts by default (the cores available; ``--jobs N`` to choose). Prints wall time
(what a user waits, and what the budget is judged on), CPU time of this process and its workers
(what the search costs), the plans made, the answer, and pass/fail. Judge wall times on a quiet
machine: another busy process takes a core from the workers.

    python bench/size_speed.py [--jobs N] [SPEC ...]
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from deployc.api import clear_plan_cache
from deployc.sizing.run import size
from deployc.sizing.workers import available_cores

TARGET_S = 2.0
GPUS = "H100,A100-80GB,L40S,L4"
GPU_TYPES = len(GPUS.split(","))
MAX_GPUS = 16
SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def _cpu_s() -> float:
    """CPU seconds of this process and of its children that ended (the sizing workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def time_one(spec: Path, jobs: int | None = None) -> tuple[float, float, int, str]:
    """Wall and CPU seconds (workers included) of one sizing, the plans it made, and its answer."""
    clear_plan_cache()
    wall, cpu = time.perf_counter(), _cpu_s()
    report = size(spec, gpus=GPUS, max_gpus=MAX_GPUS, jobs=available_cores() if jobs is None else jobs).report
    wall, cpu = time.perf_counter() - wall, _cpu_s() - cpu
    best = report.search.winners[0].label() if report.search.winners else "nothing serves"
    return wall, cpu, len(report.search.evaluated), best


def default_specs() -> list[Path]:
    """Every sample with a single request class."""
    return sorted(p for p in SAMPLES.glob("*.toml") if "classes" not in p.read_text())


def warm_up(spec: Path) -> None:
    """Size once, untimed: imports, catalog and model caches."""
    size(spec, gpus=GPUS, max_gpus=MAX_GPUS)


def main(argv: list[str]) -> int:
    """Time each spec; exit 1 when any takes longer (wall) than the target."""
    jobs = None
    if argv[:1] == ["--jobs"]:
        jobs, argv = int(argv[1]), argv[2:]
    specs = [Path(a) for a in argv] or default_specs()
    warm_up(specs[-1])
    slow = 0
    print(f"{'spec':<36} {'wall s':>7} {'cpu s':>6} {'budget':>6} {'':4} {'plans':>5}  cheapest that serves")
    for spec in specs:
        wall, cpu, plans, best = time_one(spec, jobs)
        slow += wall >= TARGET_S
        verdict = "pass" if wall < TARGET_S else "FAIL"
        print(f"{spec.stem:<36} {wall:7.2f} {cpu:6.2f} {TARGET_S:6.1f} {verdict:4} {plans:5d}  {best}")
    workers = available_cores() if jobs is None else jobs
    print(f"budget: < {TARGET_S:.1f} s wall per search, {workers} worker(s); {len(specs) - slow} of {len(specs)} met")
    return 1 if slow else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
