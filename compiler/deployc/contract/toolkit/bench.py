"""``bench.sh`` for any OpenAI-compatible server: ``vllm bench serve`` with the spec's workload, then the SLO check.

The client is vLLM's ``vllm bench serve`` (``--backend openai``: plain OpenAI completions, so it
measures any engine's server the same way) run from an image the backend names, with random
prompts shaped like the spec's traffic: mean lengths, a spread that reaches the p99, the shared
prefix, and the concurrency or request rate.  The flags used are those of ``vllm bench serve``
in vLLM 0.33.0 (``vllm/benchmarks/serve.py`` and ``vllm/benchmarks/datasets/datasets.py``),
listed in :data:`BENCH_FLAGS`.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Sequence
from typing import TYPE_CHECKING

from attrs import frozen

from deployc.contract.deployment import ServerLoad
from deployc.contract.toolkit import EnvRef, Word
from deployc.contract.toolkit.shell import ScriptBuilder, group

if TYPE_CHECKING:
    from deployc.contract.deployment import Deployment, Pool, Slo
    from deployc.spec.model import TokenDistribution

BENCH_FLAGS = frozenset({
    "--backend", "--base-url", "--model", "--served-model-name", "--dataset-name", "--random-input-len",
    "--random-output-len", "--random-prefix-len", "--random-range-ratio", "--ignore-eos", "--num-prompts",
    "--max-concurrency", "--request-rate", "--percentile-metrics", "--metric-percentiles",
    "--ready-check-timeout-sec", "--seed",
})
MAX_RANGE_RATIO = 0.95  # vLLM requires the ratio below 1
HF_CACHE_IN_CONTAINER = "/root/.cache/huggingface"
CLIENT_VERSION = "vLLM 0.33.0"  # the version whose `vllm bench serve` flags BENCH_FLAGS lists

CHECK_FUNCTION = (
    "check() {  # result file, metric label as vLLM prints it, target in ms",
    "    local got",
    "    got=\"$(awk -v label=\"$2\" 'index($0, label) == 1 { print $NF }' \"$1\")\"",
    "    if [ -z \"$got\" ]; then echo \"  $2 not reported\" >&2; return 0; fi",
    "    if awk -v got=\"$got\" -v want=\"$3\" 'BEGIN { exit !(got + 0 <= want + 0) }'; then",
    "        echo \"  $2 $got <= $3: met\"",
    "    else",
    "        echo \"  $2 $got > $3: MISSED\" >&2",
    "        failed=1",
    "    fi",
    "}",
)


@frozen(kw_only=True)
class BenchTarget:
    """One server to measure: its name, the port its API listens on, its pool, the node serving its API."""

    name: str
    port: int
    pool: Pool
    node: int = 0  # contract 1.4: the node whose address the API listens on (a server's first node)


@frozen(kw_only=True)
class BenchClient:
    """Where ``vllm bench serve`` runs: an image with vLLM's CLI and the entrypoint that starts it."""

    image: str
    entrypoint: str = "vllm"
    engine: str  # the serving engine, for the script header ("SGLang 0.5.23 (image ...)")
    notes: tuple[str, ...] = ()
    token_export: str | None = None  # trusted bash exporting HF_TOKEN from the spec's variable


def range_ratio(dist: TokenDistribution) -> float:
    """The spread of uniform lengths ``mean × (1 ± r)`` whose 99th percentile is the distribution's p99."""
    ratio = (dist.p99_tokens / dist.mean - 1) / 0.98
    return round(min(max(ratio, 0.0), MAX_RANGE_RATIO), 3)


def _load(load: ServerLoad) -> tuple[str, str, int]:
    if load.concurrency is not None:
        return "--max-concurrency", str(load.concurrency), min(max(10 * load.concurrency, 100), 2000)
    rate = load.request_rate_per_s or 0.0
    return "--request-rate", f"{rate:.3g}", min(max(math.ceil(rate * 120), 100), 5000)


def bench_words(deployment: Deployment, pool: Pool, servers_in_pool: int) -> list[tuple[Word, ...]]:
    """The ``vllm bench serve`` arguments for one server of ``pool``, one option per line."""
    model = deployment.model
    prompt, output = pool.prompt_tokens, pool.output_tokens
    prefix = min(deployment.workload.shared_prefix_tokens, prompt.mean - 1)
    load_flag, load_value, prompts = _load(ServerLoad.divide(deployment.workload, pool, servers_in_pool))
    return [
        ("bench", "serve"), ("--backend", "openai"), ("--base-url", EnvRef("url", required=False)),
        ("--model", model.id), ("--served-model-name", model.served_name or model.id),
        ("--dataset-name", "random"), ("--random-input-len", str(prompt.mean - prefix)),
        ("--random-output-len", str(output.mean)), ("--random-prefix-len", str(prefix)),
        ("--random-range-ratio", f"{range_ratio(prompt):g}"), ("--ignore-eos",), ("--num-prompts", str(prompts)),
        (load_flag, load_value), ("--percentile-metrics", "ttft,tpot,itl,e2el"),
        ("--metric-percentiles", _metric_percentiles(deployment.slo)),
        ("--ready-check-timeout-sec", "600"), ("--seed", "0"),
    ]


def _metric_percentiles(slo: Slo) -> str:
    """``50,99``, plus 90 and 95 when a target names them (``vllm bench serve`` prints only the percentiles asked)."""
    targets = [t for t in (slo.ttft_ms, slo.tpot_ms, slo.itl_ms) if t is not None]
    named = {name for t in targets for name, _ in t.given()} | {"p50", "p99"}
    return ",".join(name[1:] for name in ("p50", "p90", "p95", "p99") if name in named)


def slo_targets(deployment: Deployment) -> list[tuple[str, float]]:
    """(label as ``vllm bench serve`` prints it, target in ms) for each SLO percentile set.

    ``vllm bench serve --metric-percentiles`` prints ``P<n> <METRIC> (ms):`` for each percentile of
    each metric in ``--percentile-metrics`` (benchmarks/serve.py, vLLM 0.33.0).
    """
    return [(f"P{pct[1:]} {metric} (ms):", value) for metric, pct, value in _goals(deployment)]


def _goals(deployment: Deployment) -> list[tuple[str, str, float]]:
    """(metric, percentile, target ms) for each SLO percentile set: ``("TTFT", "p99", 2000.0)``."""
    slo = deployment.slo
    return [(label, pct, value) for targets, label in ((slo.ttft_ms, "TTFT"), (slo.tpot_ms, "TPOT"),
                                                       (slo.itl_ms, "ITL"))
            if targets is not None for pct, value in targets.given()]


def _expected(deployment: Deployment, pool: Pool) -> str:
    """What the plan's simulation of this pool measured, at the percentiles the SLO names (p50 without one)."""
    r = pool.simulated
    if r is None:  # no simulation (nothing to serve): the analytic steady state is all there is
        perf = pool.performance
        return f"the analytic estimate: TTFT {perf.ttft_ms:.0f} ms, ITL {perf.itl_ms:.1f} ms"
    simulated = {"TTFT": r.ttft_ms, "TPOT": r.tpot_ms, "ITL": r.itl_ms}
    goals = [(metric, pct) for metric, pct, _ in _goals(deployment)] or [("TTFT", "p50"), ("TPOT", "p50")]
    return "the simulation: " + ", ".join(f"{metric} {pct} {_ms(simulated[metric].at(pct))}" for metric, pct in goals)


def _ms(value: float) -> str:
    return f"{value:,.0f} ms" if value >= 100 else f"{value:.1f} ms"


def _hosts(script: ScriptBuilder, nodes: int) -> None:
    """``hosts``: the node addresses from BENCH_HOSTS, checked to name every node."""
    script.raw(f'IFS=, read -r -a hosts <<< "${{BENCH_HOSTS:?set BENCH_HOSTS to the addresses of the {nodes} nodes, '
               'node-0 first, comma-separated}"')
    script.raw(f'if [ "${{#hosts[@]}}" -ne {int(nodes)} ]; then echo "BENCH_HOSTS must list {int(nodes)} addresses" '
               '>&2; exit 1; fi')


def bench_script(deployment: Deployment, targets: Sequence[BenchTarget], client: BenchClient) -> str:
    """``bench.sh``: one benchmark per server, each at its own node's address, followed by its SLO check.

    When every API listens on one node the address is ``BENCH_HOST`` (default 127.0.0.1); when the servers
    listen on several nodes it is that node's entry of ``BENCH_HOSTS`` (every node's address, node-0 first).
    """
    name = deployment.name
    several = any(t.node != 0 for t in targets)
    where = (f"on every node (BENCH_HOSTS: the addresses of the {deployment.nodes_used} nodes, node-0 first; each "
             "server is measured once, at its own node)" if several else "(BENCH_HOST, default 127.0.0.1)")
    script = ScriptBuilder(
        purpose=f"bench.sh: measure deployment {name!r} with its own workload (vllm bench serve) and compare "
                f"with the SLO. Run it where the servers' ports are reachable {where}.",
        generator=f"deployc {deployment.deployc_version}", engine=client.engine, spec_name=name, notes=client.notes)
    if several:
        _hosts(script, deployment.nodes_used)
    else:
        script.raw(': "${BENCH_HOST:=127.0.0.1}"')
    script.raw('results="${BENCH_RESULTS:-bench-results}"')
    script.raw('mkdir -p -- "$results"')
    if client.token_export:
        script.raw(client.token_export)
    script.raw("failed=0")
    for line in CHECK_FUNCTION:
        script.raw(line)
    script.blank()
    per_pool: dict[str, int] = {}
    for target in targets:
        per_pool[target.pool.name] = per_pool.get(target.pool.name, 0) + 1
    goals = slo_targets(deployment)
    slo_text = ", ".join(f"{label.split(' (')[0]} <= {value:g} ms" for label, value in goals) or "none set"
    for target in targets:
        expected = _expected(deployment, target.pool)
        at = f" on node-{target.node}" if several else ""
        script.comment(f"Server {target.name!r} (pool {target.pool.name!r}){at}. SLO: {slo_text}. Expected from "
                       f"{expected}.")
        host = f"${{hosts[{int(target.node)}]}}" if several else "${BENCH_HOST}"
        script.raw(f'url="http://{host}:{target.port}"')
        script.raw(f'echo "== {target.name}: SLO {slo_text}; expected from {expected}"')
        docker = [("docker", "run", "--rm"), ("--network", "host"),
                  ("--volume", f"{deployment.operations.model_cache}:{HF_CACHE_IN_CONTAINER}"), ("--env", "HF_TOKEN"),
                  ("--entrypoint", client.entrypoint), (client.image,)]
        lines = docker + bench_words(deployment, target.pool, per_pool[target.pool.name])
        script.command([group(*line) for line in lines], explain=False, suffix=f' | tee "$results/{target.name}.txt"')
        for label, value in goals:
            script.raw(f'check "$results/{target.name}.txt" {shlex.quote(label)} {value:g}')
        script.blank()
    script.raw('if [ "$failed" -ne 0 ]; then echo "some SLO targets were missed" >&2; exit 1; fi')
    script.raw('echo "all SLO targets met"')
    return script.render()
