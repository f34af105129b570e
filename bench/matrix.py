"""The whole catalog matrix: every catalog GPU × model × {1, 2, 4, 8 GPUs, 2 × 8} × workload kind × goal × backend.

Each case is planned with the library API and, when it plans, emitted as ``build`` would
(see ``tests/reliability/matrix.py``). Prints how many cases built, were refused with a
diagnostic (exit 1) or failed (an internal error, a plugin failure, or a plan its backend
cannot build), each kind of failure once with its first cases, and exits 1 when any failed.
CI runs a fixed-seed sample of the same cases (``tests/reliability/test_catalog_matrix.py``).

    python bench/matrix.py [--processes 2] [--sample N --seed S] [--gpu NAME ...] [--model NAME ...]
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.reliability.matrix import Case, Outcome, all_cases, catalog_names, draw, run_case  # noqa: E402

_WORKDIR: list[Path] = []


def _run(case: Case) -> Outcome:
    if not _WORKDIR:
        _WORKDIR.append(Path(tempfile.mkdtemp(prefix="deployc-matrix-")))
    return run_case(case, _WORKDIR[0])


def main(argv: list[str] | None = None) -> int:
    """Run the matrix (or the part asked for) and print its counts; 1 when any case failed."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--processes", type=int, default=1, help="worker processes (default 1)")
    ap.add_argument("--sample", type=int, default=None, help="run only this many cases, drawn with --seed")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--gpu", action="append", default=None, help="only this GPU (repeatable)")
    ap.add_argument("--model", action="append", default=None, help="only this model (repeatable)")
    ap.add_argument("--examples", type=int, default=3, help="cases shown per kind of failure")
    args = ap.parse_args(argv)
    gpus, models, backends = catalog_names()
    cases = list(all_cases(args.gpu or gpus, args.model or models, backends))
    if args.sample is not None:
        cases = draw(cases, args.sample, args.seed)
    print(f"catalog matrix: {len(cases):,} cases ({len(args.gpu or gpus)} GPUs × {len(args.model or models)} models "
          f"× 5 sizes × 4 workloads × 3 goals × (auto + {len(backends)} backends: {', '.join(backends)})",
          flush=True)
    start = time.perf_counter()
    counts: collections.Counter[str] = collections.Counter()
    built_by: collections.Counter[str] = collections.Counter()
    failures: dict[str, list[Outcome]] = collections.defaultdict(list)
    with multiprocessing.Pool(args.processes) if args.processes > 1 else _Serial() as pool:
        for done, outcome in enumerate(pool.imap_unordered(_run, cases, chunksize=16), 1):
            counts[outcome.status] += 1
            if outcome.status == "built":
                built_by[f"{outcome.case.backend}→{outcome.backend}"] += 1
            if outcome.failed:
                failures[f"{outcome.status}: {outcome.detail}"].append(outcome)
            if done % 5000 == 0:
                print(f"  {done:,} cases, {time.perf_counter() - start:.0f} s", flush=True)
    seconds = time.perf_counter() - start
    for status in ("built", "refused", "internal-error", "plugin-failure", "plan-but-cannot-build"):
        print(f"{status:>22}: {counts[status]:,}")
    print("built, by backend asked → backend chosen: " + ", ".join(f"{k} {v:,}" for k, v in sorted(built_by.items())))
    print(f"{len(cases):,} cases in {seconds:.0f} s ({1000 * seconds / max(len(cases), 1):.0f} ms per case)")
    for kind, outcomes in sorted(failures.items(), key=lambda item: -len(item[1])):
        print(f"\n{len(outcomes):,} × {kind}")
        for outcome in outcomes[:args.examples]:
            print(f"    {outcome.case.label()}")
    return 1 if failures else 0


class _Serial:
    """``multiprocessing.Pool``'s ``imap_unordered`` in this process (one process: no pickling, easier to debug)."""

    def __enter__(self) -> _Serial:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def imap_unordered(self, function, items, chunksize=1):  # type: ignore[no-untyped-def]  # noqa: ARG002  (Pool's signature)
        """Apply ``function`` to each item in order."""
        return map(function, items)


if __name__ == "__main__":
    sys.exit(main())
