"""A long fuzzing campaign against ``deployc validate`` (and ``deployc build``), and the cost of hostile input.

Runs the generators of ``tests/reliability/specgen.py`` for many more examples than CI does, checks
every example with the same oracle (exit 0, or exit 1 with rule-tagged, located diagnostics; never a
crash), also checks that text output is safe for a terminal, and prints how many examples were tried
and every kind of failure found with its shortest example.  ``--build`` also builds each spec that
validates.  ``--limits`` times oversized, deeply nested and pathological specs.

    python bench/fuzz.py [--examples 2000] [--seed 0] [--build] [--limits]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from attrs import define, field
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.reliability import specgen  # noqa: E402  (the generators live beside the tests that use them)
from tests.reliability._support import run_cli  # noqa: E402


@define
class Finding:
    """One kind of failure: how often it was seen and the shortest input that showed it."""

    count: int = 0
    example: bytes = b""
    detail: str = ""


@define
class Campaign:
    """Examples tried and failures found, per generator."""

    workdir: Path
    build: bool
    tried: dict[str, int] = field(factory=dict)
    failed: dict[str, int] = field(factory=dict)
    findings: dict[str, Finding] = field(factory=dict)
    seconds: dict[str, float] = field(factory=dict)

    def check(self, generator: str, data: bytes) -> None:
        """Run one example through validate (JSON and text) and, when asked, build; record what went wrong."""
        self.tried[generator] = self.tried.get(generator, 0) + 1
        spec = self.workdir / "spec.toml"
        spec.write_bytes(data)
        run = run_cli(["validate", "--format", "json", str(spec)])
        problems = specgen.validate_problems(run)
        if not problems:
            text = run_cli(["validate", str(spec)])
            problems += [f"terminal: {p}" for p in specgen.terminal_problems(text.err, len(json.loads(run.out)))]
            if self.build and run.code == 0:
                problems += self._build_problems(spec)
        if problems:
            self.failed[generator] = self.failed.get(generator, 0) + 1
        for problem in problems:
            kind = _kind(problem)
            finding = self.findings.setdefault(kind, Finding())
            finding.count += 1
            if not finding.example or len(data) < len(finding.example):
                finding.example, finding.detail = data, problem

    def _build_problems(self, spec: Path) -> list[str]:
        out = self.workdir / "out"
        shutil.rmtree(out, ignore_errors=True)
        run = run_cli(["build", str(spec), "-o", str(out)])
        if run.code not in (0, 1):
            return [f"build: exit code {run.code}: {run.err[-300:]}"]
        if (run.code == 0) != out.is_dir():
            return [f"build: exit {run.code} but the output directory {'is missing' if run.code == 0 else 'exists'}"]
        return []


def _kind(problem: str) -> str:
    """A failure's kind: its text without the parts that vary from example to example."""
    head = re.split(r": [{'\"]", problem, maxsplit=1)[0]
    for marker in ("control characters in terminal output", "a crash: ", "exit code ", "stdout is not JSON"):
        if marker in head:
            return head[: head.index(marker) + len(marker)].strip()
    return re.sub(r"\d+", "N", head)[:100]


GENERATORS: dict[str, st.SearchStrategy[bytes]] = {
    "mutated samples": specgen.mutated_tables().map(lambda doc: specgen.spec_text(doc).encode()),
    "raw text edits": specgen.mutated_bytes(),
    "arbitrary tables": st.dictionaries(specgen.keys, specgen.values, max_size=8).map(
        lambda doc: specgen.spec_text(doc).encode()),
    "hostile text edits": specgen.mutated_bytes(specgen.HOSTILE_TOKENS),
    "hostile field values": st.tuples(  # every nasty string in every string field
        st.sampled_from(specgen.STRING_FIELDS), st.sampled_from(specgen.NASTY_STRINGS)).map(
        lambda pair: specgen.spec_text(specgen.with_value(specgen.FULL_SPEC, *pair)).encode()),
}


def _explorer(campaign: Campaign, name: str, strategy: st.SearchStrategy[bytes], examples: int,
              seed_value: int) -> Callable[[], None]:
    """A hypothesis test that records every example instead of failing on the first."""
    @seed(seed_value)
    @settings(max_examples=examples, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(data=strategy)
    def explore(data: bytes) -> None:
        campaign.check(name, data)

    return explore


def run_campaign(examples: int, seed_value: int, build: bool) -> Campaign:
    """Every generator for ``examples`` examples (hypothesis, generate phase only, no shrinking)."""
    campaign = Campaign(workdir=Path(tempfile.mkdtemp(prefix="deployc-fuzz-")), build=build)
    os.environ["XDG_CACHE_HOME"] = str(campaign.workdir / "cache")  # crash reports stay out of ~/.cache
    for name, strategy in GENERATORS.items():
        start = time.perf_counter()
        _explorer(campaign, name, strategy, examples, seed_value)()
        campaign.seconds[name] = time.perf_counter() - start
    shutil.rmtree(campaign.workdir, ignore_errors=True)
    return campaign


def print_campaign(campaign: Campaign) -> None:
    """The table of examples and failures, then each kind of failure with its shortest example."""
    print(f"{'generator':<22} {'examples':>9} {'failing':>8} {'per s':>7}")
    for name, tried in campaign.tried.items():
        print(f"{name:<22} {tried:>9} {campaign.failed.get(name, 0):>8} {tried / campaign.seconds[name]:>7.0f}")
    total, failing = sum(campaign.tried.values()), sum(campaign.failed.values())
    print(f"{'total':<22} {total:>9} {failing:>8}")
    print(f"\n{len(campaign.findings)} kinds of failure")
    for kind, finding in sorted(campaign.findings.items(), key=lambda item: -item[1].count):
        print(f"\n[{finding.count}x] {kind}\n  detail:  {finding.detail[:300]}\n  example: {finding.example[:300]!r}")


def _timed(text: str | bytes, workdir: Path) -> tuple[float, int, int]:
    spec = workdir / "spec.toml"
    spec.write_bytes(text.encode() if isinstance(text, str) else text)
    start = time.perf_counter()
    run = run_cli(["validate", "--format", "json", str(spec)])
    return time.perf_counter() - start, run.code, len(run.out)


def limit_cases() -> dict[str, Callable[[], str]]:
    """Hostile specs by name (built lazily: some are large)."""
    minimal = specgen.MINIMAL_SPEC
    cases: dict[str, Callable[[], str]] = {
        "2 MiB spec": lambda: minimal + "# " + "x" * (2 << 20) + "\n",
        "1 MiB spec (at the limit)": lambda: minimal + "# " + "x" * ((1 << 20) - len(minimal) - 3) + "\n",
        "10k nested arrays": lambda: "a = " + "[" * 10_000 + "]" * 10_000 + "\n",
        "10k nested inline tables": lambda: "a = " + "{ b = " * 10_000 + "1" + " }" * 10_000 + "\n",
        "50k unknown keys": lambda: minimal + "".join(f"k{i} = 1\n" for i in range(50_000)),
        "20k request classes": lambda: minimal + '[[workload.classes]]\nname = "a"\n' * 20_000,
        "900 kB model id": lambda: minimal.replace('"meta-llama/Llama-3.1-8B-Instruct"', '"' + "a." * 450_000 + '"'),
        "900 kB enum value": lambda: minimal.replace("[model]\n", '[model]\nquantization = "' + "f" * 900_000 + '"\n'),
        "900 kB unknown key": lambda: minimal.replace("[model]\n", "[model]\n" + "f" * 900_000 + " = 1\n"),
        "4301-digit integer": lambda: minimal.replace("concurrency = 16", "concurrency = " + "9" * 4301),
    }
    for parts in (5_000, 10_000, 20_000, 40_000):  # quadratic in tomllib (and in locate_keys for headers)
        cases[f"dotted key, {parts // 1000}k parts"] = _repeated("", "a.", parts, "a = 1\n")
        cases[f"table header, {parts // 1000}k parts"] = _repeated("[", "a.", parts, "a]\n")
    return cases


def _repeated(head: str, part: str, times: int, tail: str) -> Callable[[], str]:
    return lambda: head + part * times + tail


def print_limits() -> None:
    """How long validation takes on each hostile spec, its exit code and how much it printed."""
    workdir = Path(tempfile.mkdtemp(prefix="deployc-limits-"))
    print(f"\n{'hostile spec':<30} {'bytes':>9} {'seconds':>8} {'exit':>4} {'output bytes':>12}")
    for name, make in limit_cases().items():
        text = make()
        seconds, code, printed = _timed(text, workdir)
        print(f"{name:<30} {len(text.encode()):>9} {seconds:>8.3f} {code:>4} {printed:>12}")
    shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """Run the campaign (and the limits table); exit 1 when any failure was found."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--examples", type=int, default=2000, help="examples per generator (default 2000)")
    parser.add_argument("--seed", type=int, default=0, help="hypothesis seed (default 0)")
    parser.add_argument("--build", action="store_true", help="also build every spec that validates")
    parser.add_argument("--limits", action="store_true", help="also time hostile specs")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    campaign = run_campaign(args.examples, args.seed, args.build)
    print_campaign(campaign)
    if args.limits:
        print_limits()
    print(f"\n{time.perf_counter() - start:.1f} s")
    return 1 if campaign.findings else 0


if __name__ == "__main__":
    sys.exit(main())
