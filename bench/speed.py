"""Wall time of `deployc validate` on all samples in one process, and of one cold `deployc build`.

    python bench/speed.py

Targets: validating 100 specs in one call under 1 s; a cold build under 0.5 s; planning 64 GPUs under
100 ms; one simulated layout of 2,000 requests under 50 ms; every sample's full plan under 0.5 s.
Runs the installed `deployc` in fresh processes, so import time is included. Wall and CPU (process)
time are printed for the in-process figures: on a shared machine CPU time is the steadier one.
"""

from __future__ import annotations

import contextlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RUNS = 5


def _time(argv: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    deployc = [sys.executable, "-m", "deployc"]
    samples = sorted(str(p.relative_to(REPO)) for p in (REPO / "samples").glob("*.toml"))
    hundred = (samples * (100 // len(samples) + 1))[:100]
    validate = [_time([*deployc, "validate", *hundred], REPO) for _ in range(RUNS)]
    import_only = [_time([sys.executable, "-c", "import deployc.cli"], REPO) for _ in range(RUNS)]
    out = Path(tempfile.mkdtemp())
    builds = []
    try:
        for i in range(RUNS):
            builds.append(_time([*deployc, "build", samples[0], "-o", str(out / str(i))], REPO))
    finally:
        shutil.rmtree(out, ignore_errors=True)
    print(f"machine: {sys.platform}, python {sys.version.split()[0]}, {RUNS} runs each, median (min)")
    print(f"import deployc.cli:                    {statistics.median(import_only):.3f} s ({min(import_only):.3f})")
    print(f"validate 100 specs in one process:     {statistics.median(validate):.3f} s ({min(validate):.3f})"
          f"   target < 1 s")
    print(f"cold build of {samples[0]}: {statistics.median(builds):.3f} s ({min(builds):.3f})   target < 0.5 s")
    print(f"full plan of a 64-GPU spec, in process:  {_plan_64_gpus():.3f} s   target < 0.1 s (search over 64 GPUs)")
    wall, cpu = _simulate_2000()
    print(f"one simulated layout, 2,000 requests:  {wall * 1e3:.0f} ms wall, {cpu * 1e3:.0f} ms CPU   target < 50 ms")
    for name, (wall, cpu) in _plan_samples().items():
        print(f"full plan of {name:34} {wall:.3f} s wall, {cpu:.3f} s CPU   target < 0.5 s")
    return 0


def _simulate_2000() -> tuple[float, float]:
    """Median wall and CPU time of one 2,000-request simulation of a sample's chosen layout (warm step costs)."""
    from deployc.api import plan  # noqa: PLC0415
    from deployc.planner.replay import pool_shape, serving_setup  # noqa: PLC0415
    from deployc.planner.serving.simulate import simulate_pool  # noqa: PLC0415
    from deployc.planner.serving.stepcost import StepCostModel  # noqa: PLC0415
    from deployc.plugins import default_registry  # noqa: PLC0415

    planned, _ = plan(REPO / "samples" / "llama70b-a100-nvlink.toml")
    setup = serving_setup(planned, planned.primary, default_registry().models()[planned.backend.name])
    shape = pool_shape(planned, planned.primary)
    cost = StepCostModel(setup.perf) if setup.perf is not None else None
    simulate_pool(setup, shape, cost=cost)  # warm the step-cost memo, as the planner's ranking runs do
    walls, cpus = [], []
    for _ in range(RUNS):
        wall, cpu = time.perf_counter(), time.process_time()
        simulate_pool(setup, shape, cost=cost)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def _plan_samples() -> dict[str, tuple[float, float]]:
    """Wall and CPU time of deployc.api.plan on every sample, in one warm process."""
    from deployc.api import clear_plan_cache, plan  # noqa: PLC0415
    from deployc.diagnostics import DeploycError  # noqa: PLC0415

    out = {}
    for spec in sorted((REPO / "samples").glob("*.toml")):
        clear_plan_cache()
        wall, cpu = time.perf_counter(), time.process_time()
        with contextlib.suppress(DeploycError):  # a sample that does not serve is timed all the same
            plan(spec)
        out[spec.name] = (time.perf_counter() - wall, time.process_time() - cpu)
    return out


def _plan_64_gpus() -> float:
    """Median wall time of deployc.api.plan on 8 nodes × 8 GPUs (load, validate, resolve, search, knobs)."""
    from deployc.api import clear_plan_cache, plan  # noqa: PLC0415  (only this measurement needs the library)

    spec = REPO / "bench" / "data" / "specs" / "llama70b-64xh100.toml"
    plan(spec)  # warm: catalog files and the schema validator load once per process
    times = []
    for _ in range(RUNS):
        clear_plan_cache()
        start = time.perf_counter()
        plan(spec)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


if __name__ == "__main__":
    sys.exit(main())
