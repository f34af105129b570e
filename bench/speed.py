"""Wall time of `deployc validate` on all samples in one process, and of one cold `deployc build`.

    python bench/speed.py

Targets: validating 100 specs in one call under 1 s; a cold build under 0.5 s; planning 64 GPUs under
100 ms; one simulated layout of 2,000 requests under 50 ms; every sample's full plan under 0.5 s.
Runs the installed `deployc` in fresh processes, so import time is included. Wall and CPU (process)
time are printed for the in-process figures: on a shared machine CPU time is the steadier one.
"""

from __future__ import annotations

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
    from deployc.planner.serving.simulate import ServingSetup, simulate_pool  # noqa: PLC0415
    from deployc.planner.serving.stepcost import StepCostModel  # noqa: PLC0415
    from deployc.planner.workload import workload_shapes  # noqa: PLC0415

    planned, _ = plan(REPO / "samples" / "llama70b-a100-nvlink.toml")
    pool = planned.primary
    inputs = _inputs_of(planned)
    setup = ServingSetup(perf=inputs, policy=planned.backend.scheduler, max_num_seqs=pool.knobs.max_num_seqs,
                         token_budget=pool.knobs.max_num_batched_tokens, chunked_prefill=True,
                         kv_capacity_tokens=pool.memory.kv_capacity_tokens,
                         kv_block_tokens=pool.memory.kv_block_size_tokens, prefix_tokens=0,
                         replicas=pool.layout.dp)
    shape = workload_shapes(planned.target.spec)[0]
    cost = StepCostModel(inputs)
    simulate_pool(setup, shape, cost=cost)  # warm the step-cost memo, as the planner's ranking runs do
    walls, cpus = [], []
    for _ in range(RUNS):
        wall, cpu = time.perf_counter(), time.process_time()
        simulate_pool(setup, shape, cost=cost)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def _inputs_of(planned: object) -> object:
    """The chosen layout's performance inputs, rebuilt as the planner built them."""
    from deployc.planner.evaluate import Candidate, evaluate_layout, perf_inputs  # noqa: PLC0415
    from deployc.planner.precision import WeightChoice  # noqa: PLC0415
    from deployc.planner.workload import workload_shapes  # noqa: PLC0415
    from deployc.plugins import default_registry  # noqa: PLC0415

    pool = planned.primary  # type: ignore[attr-defined]
    target = planned.target  # type: ignore[attr-defined]
    registry = default_registry()
    k = pool.knobs
    candidate = Candidate(target=target, backend=planned.backend.name, dtype=k.dtype,  # type: ignore[attr-defined]
                          weights=WeightChoice(weights_format=k.weights_format, quantization_flag=k.quantization,
                                               from_checkpoint=False),
                          kv_dtype=k.kv_cache_dtype, shape=workload_shapes(target.spec)[0],
                          gpus_per_node=target.spec.hardware.gpus_per_node, nodes=target.spec.hardware.nodes,
                          kernel=None)
    chosen = evaluate_layout(candidate, pool.layout, registry)
    return perf_inputs(candidate, pool.layout, chosen.weights, chosen.memory.kv_bytes_per_token, k.max_num_seqs,
                       max_num_batched_tokens=k.max_num_batched_tokens)


def _plan_samples() -> dict[str, tuple[float, float]]:
    """Wall and CPU time of deployc.api.plan on every sample, in one warm process."""
    from deployc.api import plan  # noqa: PLC0415

    out = {}
    for spec in sorted((REPO / "samples").glob("*.toml")):
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            plan(spec)
        except Exception:  # noqa: BLE001, S112  (a sample that does not plan is timed all the same)
            pass
        out[spec.name] = (time.perf_counter() - wall, time.process_time() - cpu)
    return out


def _plan_64_gpus() -> float:
    """Median wall time of deployc.api.plan on 8 nodes × 8 GPUs (load, validate, resolve, search, knobs)."""
    from deployc.api import plan  # noqa: PLC0415  (only this measurement needs the library in-process)

    spec = REPO / "bench" / "data" / "specs" / "llama70b-64xh100.toml"
    plan(spec)  # warm: catalog files and the schema validator load once per process
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        plan(spec)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


if __name__ == "__main__":
    sys.exit(main())
