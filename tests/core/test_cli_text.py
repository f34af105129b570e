"""The text output of ``plan``, ``explain`` and ``catalog`` says what their JSON says.

Each text output is parsed line by line (every line must match its expected shape) and every
figure in it is compared with the same command's ``--format json`` output or with plan.json,
so a text renderer that drops, misplaces, mislabels or misrounds a number fails here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from deployc import api, cli
from deployc.render.explain import explain_markdown, prose
from tests.conftest import REPO, SAMPLES

GIB = 1 << 30
BAR_WIDTH = 60
BAR_LETTERS = {"W": "weights_bytes", "K": "kv_cache_bytes", "A": "activation_bytes", "G": "cuda_graph_bytes",
               "O": "other_bytes"}

HEADER = re.compile(r"^(?P<name>\S+): (?P<model>.+) on (?P<gpus>\d+) × (?P<gpu>.+) \((?P<link>\S+)\) "
                    r"with (?P<engine>\S+) (?P<version>\S+)$")
POOL = re.compile(r"^pool (?P<name>\S+): (?P<label>\S+) on (?P<gpus>\d+) GPUs?, (?P<weights>\S+) weights, "
                  r"(?P<kv>\S+) KV cache: (?P<verdict>fits|DOES NOT FIT \(short by (?P<short>[\d.]+) GiB per GPU\))$")
BAR = re.compile(r"^  \[(?P<bar>[WKAGO.]{60})\] (?P<total>[\d.]+) GiB per GPU, "
                 r"(?:free (?P<free>[\d.]+) GiB|(?P<over>OVER CAPACITY))$")
LEGEND = re.compile(r"^  W=weights (?P<W>[\d.]+) GiB  K=KV cache (?P<K>[\d.]+) GiB  A=activations (?P<A>[\d.]+) GiB  "
                    r"G=CUDA graphs (?P<G>[\d.]+) GiB  O=other (?P<O>[\d.]+) GiB$")
KV = re.compile(r"^  KV: (?P<per_token>[\d,]+) B/token per GPU, capacity (?P<capacity>[\d,]+) tokens per replica; "
                r"max concurrency (?P<at_max>[\d.]+) at (?P<max_len>[\d,]+) tokens, (?P<at_typical>[\d.]+) at the "
                r"typical request$")
DECODE = re.compile(r"^  decode step: (?P<step>[\d.]+) ms at batch (?P<batch>[\d.]+), (?P<bound>\w+)-bound "
                    r"\((?P<share>\d+)% of the step\); analytic ITL (?P<itl>[\d.]+) ms with arriving prompts' "
                    r"chunks in the steps$")
SIMULATED = re.compile(r"^  simulated \((?P<requests>[\d,]+) requests per replica, (?:(?P<clients>\d+) clients per "
                       r"replica|(?P<rate>[\d.]+) requests/s \(capacity (?P<capacity>[\d.]+)/s\))\):$")
LATENCY = re.compile(r"^    TTFT p50 (?P<t50>[\d,]+) ms, p90 (?P<t90>[\d,]+) ms, p99 (?P<t99>[\d,]+) ms; ITL p50 "
                     r"(?P<i50>[\d.]+) ms, p99 (?P<i99>[\d.]+) ms; TPOT p50 (?P<tp50>[\d.]+) ms, "
                     r"p99 (?P<tp99>[\d.]+) ms$")
THROUGHPUT = re.compile(r"^    queue wait p50 (?P<w50>[\d,]+) ms, p99 (?P<w99>[\d,]+) ms; (?P<tps>[\d,]+) output tok/s "
                        r"\((?P<per_gpu>[\d,]+) per GPU\), (?P<rps>[\d.]+) req/s; KV cache (?P<kv>\d+)% used on "
                        r"average, (?P<preempted>\d+) preemptions$")
COST = re.compile(r"^    cost: \$(?P<hour>[\d,.]+)/hour for (?P<gpus>\d+) GPUs(?:, \$(?P<per_m>[\d.]+) per 1M output "
                  r"tokens)?$")
VERDICT = re.compile(r"^  verdict: (?P<summary>.*)$")
DECISION = re.compile(r"^  (?P<id>\S+) = (?P<value>.*?): (?P<reason>.*)$")
DIAGNOSTIC = re.compile(r"^  (?P<severity>error|warning|info) (?P<rule>DPC\d{3}): (?P<message>.*)$")
EXPLAIN_TITLE = re.compile(r"^### (?P<id>\S+) = (?P<value>.*)  \(`(?P<rule>DP[CD]\d{3})`\)$")
NUMBER = re.compile(r"^- (?P<label>.+) = (?P<value>-?[\d,]+(?:\.\d+)?(?:e[-+]\d+)?)(?: (?P<unit>.+))?$")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """``deployc ARGV`` from the repository root; its stdout (exit 0 required)."""
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def number(text: str) -> float:
    return float(text.replace(",", ""))


def near(shown: str, exact: float, places: int, json_places: int | None = None) -> bool:
    """``shown`` is the value rounded to ``places`` decimals; ``exact`` is it, or plan.json's rounding of it."""
    slack = 0.0 if json_places is None else 0.5 * 10 ** -json_places
    return abs(number(shown) - exact) <= 0.5 * 10 ** -places + slack + 1e-9


def shown_value(value: Any) -> str:
    """How a decision's value prints: Python's str of the JSON value."""
    return str(value)


@pytest.fixture(autouse=True)
def _from_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # samples named as the README names them


def _rel(sample: Path) -> str:
    return str(sample.relative_to(REPO))


# --- deployc plan -----------------------------------------------------------------------------------------


def _check_pool(lines: list[str], pool: dict[str, Any], decisions: dict[str, Any], several: bool) -> None:
    head, bar, legend, kv, decode = (lines[0], lines[1], lines[2], lines[3], lines[4])
    m, perf, knobs, par = pool["memory"], pool["performance"], pool["knobs"], pool["parallelism"]
    found = POOL.match(head)
    assert found, head
    label = decisions[f"{pool['name']}.parallelism" if several else "parallelism"]["value"]
    assert (found["name"], found["label"], int(found["gpus"])) == (pool["name"], label, par["gpus_used"])
    assert (found["weights"], found["kv"]) == (knobs["weights_format"], knobs["kv_cache_dtype"])
    assert (found["verdict"] == "fits") == m["fits"]
    if not m["fits"]:
        assert near(found["short"], m["shortfall_bytes"] / GIB, 2)

    per_gpu = m["per_gpu"]
    found = BAR.match(bar)
    assert found, bar
    assert near(found["total"], per_gpu["total_bytes"] / GIB, 2)
    used = sum(per_gpu[key] for key in BAR_LETTERS.values())
    if used > per_gpu["total_bytes"]:
        assert found["over"]
    else:
        assert near(found["free"], per_gpu["free_bytes"] / GIB, 2)
        cells = found["bar"]
        for letter, key in BAR_LETTERS.items():  # each segment is its share of the 60 cells (at least one)
            share = per_gpu[key] / per_gpu["total_bytes"] * BAR_WIDTH
            assert abs(cells.count(letter) - share) <= 1, (letter, cells)
            assert (cells.count(letter) > 0) == (per_gpu[key] > 0), (letter, cells)
        assert re.fullmatch(r"W*K*A*G*O*\.*", cells), cells
    found = LEGEND.match(legend)
    assert found, legend
    for letter, key in BAR_LETTERS.items():
        assert near(found[letter], per_gpu[key] / GIB, 2), (letter, legend)

    found = KV.match(kv)
    assert found, kv
    assert number(found["per_token"]) == m["kv_bytes_per_token"]
    assert number(found["capacity"]) == m["kv_capacity_tokens"]
    assert number(found["max_len"]) == knobs["max_model_len"]
    assert near(found["at_max"], m["max_concurrency"]["at_max_context"], 2, json_places=2)
    assert near(found["at_typical"], m["max_concurrency"]["at_typical_request"], 2, json_places=2)

    found = DECODE.match(decode)
    assert found, decode
    assert near(found["itl"], perf["itl_ms"], 1, json_places=3)
    assert near(found["step"], perf["decode_step_ms"], 1, json_places=3)
    assert perf["decode_step_ms"] <= perf["itl_ms"] + 1e-9
    step_terms = {q["label"]: q["value"] for q in perf["step_breakdown"]}
    assert step_terms["decode step"] == pytest.approx(perf["decode_step_ms"], abs=1e-3)
    assert abs(number(found["batch"]) - perf["batch_size"]) <= 0.01 * perf["batch_size"]
    assert found["bound"] == perf["bound"]
    assert abs(int(found["share"]) - perf["bound_share"] * 100) <= 0.5 + 1e-9
    _check_serving(lines[5:], pool)


def _check_serving(lines: list[str], pool: dict[str, Any]) -> None:
    """The simulated block: the same figures as plan.json's ``serving``."""
    serving = pool["serving"]
    found = SIMULATED.match(lines[0])
    assert found, lines[0]
    assert number(found["requests"]) == serving["requests_simulated"]
    if serving["mode"] == "closed":
        assert int(found["clients"]) == serving["clients_per_replica"]
    else:
        assert float(found["rate"]) == serving["offered_requests_per_s"]
        assert near(found["capacity"], serving["capacity_requests_per_s"], 2, json_places=4)
    found = LATENCY.match(lines[1])
    assert found, lines[1]
    for key, metric, percentile, places in (("t50", "ttft_ms", "p50", 0), ("t90", "ttft_ms", "p90", 0),
                                            ("t99", "ttft_ms", "p99", 0), ("i50", "itl_ms", "p50", 1),
                                            ("i99", "itl_ms", "p99", 1), ("tp50", "tpot_ms", "p50", 1),
                                            ("tp99", "tpot_ms", "p99", 1)):
        assert near(found[key], serving[metric][percentile], places, json_places=4), (key, lines[1])
    found = THROUGHPUT.match(lines[2])
    assert found, lines[2]
    assert near(found["w50"], serving["queue_wait_ms"]["p50"], 0, json_places=4)
    assert near(found["tps"], serving["output_tokens_per_s"], 0, json_places=4)
    assert near(found["per_gpu"], serving["output_tokens_per_s_per_gpu"], 0, json_places=4)
    assert near(found["rps"], serving["requests_per_s"], 2, json_places=4)
    assert int(found["preempted"]) == serving["preemptions"]
    rest = lines[3:]
    if serving["cost"] is not None:
        found = COST.match(rest[0])
        assert found, rest[0]
        assert int(found["gpus"]) == serving["cost"]["gpus"]
        assert near(found["hour"], serving["cost"]["usd_per_hour"], 2, json_places=4)
        rest = rest[1:]
    found = VERDICT.match(rest[0])
    assert found, rest[0]
    assert found["summary"] == serving["verdict"]["summary"]
    assert rest[1:] == []


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.stem)
def test_plan_text_says_what_plan_json_says(sample: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = run(capsys, "plan", _rel(sample)).rstrip("\n").split("\n")
    doc = json.loads(run(capsys, "plan", _rel(sample), "--format", "json"))
    decisions = {d["id"]: d for d in doc["decisions"]}
    target = doc["target"]

    found = HEADER.match(text[0])
    assert found, text[0]
    assert found["name"] == doc["spec"]["resolved"]["name"]
    assert found["model"] == target["model"]["name"]
    assert int(found["gpus"]) == target["gpus_per_node"] * target["nodes"]
    assert (found["gpu"], found["link"]) == (target["gpu"]["name"], target["interconnect"])
    assert (found["engine"], found["version"]) == (doc["backend"]["engine"], doc["backend"]["engine_version"])

    rest = text[1:]
    several = len(doc["pools"]) > 1
    for pool in doc["pools"]:  # each pool: a blank line, then its lines up to the next blank one
        assert rest[0] == ""
        size = rest[1:].index("") + 1
        _check_pool(rest[1:size], pool, decisions, several)
        rest = rest[size:]

    assert rest[:2] == ["", "decisions:"]
    rest = rest[2:]
    for decision in doc["decisions"]:
        found = DECISION.match(rest[0])
        assert found, rest[0]
        assert (found["id"], found["value"]) == (decision["id"], shown_value(decision["value"]))
        assert found["reason"] == decision["reason"]
        rest = rest[1:]

    if doc["diagnostics"]:
        assert rest[:2] == ["", "diagnostics:"]
        rest = rest[2:]
        for diag in doc["diagnostics"]:
            found = DIAGNOSTIC.match(rest[0])
            assert found, rest[0]
            assert (found["severity"], found["rule"], found["message"]) == (
                diag["severity"], diag["rule"], diag["message"])
            rest = rest[1:]
            if diag.get("hint"):
                assert rest[0] == f"    hint: {diag['hint']}"
                rest = rest[1:]
    assert rest == [], "lines the plan text should not have"


# --- deployc explain --------------------------------------------------------------------------------------


def _explain_blocks(text: str) -> list[list[str]]:
    """The output split at each ``### `` title (the diagnostics after the decisions left out)."""
    blocks: list[list[str]] = []
    assert text.endswith("\n")
    for line in text.removesuffix("\n").split("\n"):
        if line == "## Diagnostics":
            break
        if line.startswith("### "):
            blocks.append([])
        assert blocks, f"text before the first decision: {line!r}"
        blocks[-1].append(line)
    return blocks


def _shown_number_matches(shown: str, exact: float) -> bool:
    """Quantity.render's rounding: integers exact, 100 and above to units, the rest to 3 significant digits."""
    value = number(shown)
    if exact == int(exact) and abs(exact) >= 1:
        return value == exact
    if abs(exact) >= 100:
        return abs(value - exact) <= 0.5
    return abs(value - exact) <= 0.005 * abs(exact) + 1e-12


def _check_explain_block(block: list[str], decision: dict[str, Any]) -> None:
    found = EXPLAIN_TITLE.match(block[0])
    assert found, block[0]
    assert (found["id"], found["value"], found["rule"]) == (
        decision["id"], shown_value(decision["value"]), decision["rule"])
    assert block[1:4] == ["", decision["reason"], ""]
    rest = block[4:]
    for quantity in decision["numbers"]:
        found = NUMBER.match(rest[0])
        assert found, rest[0]
        assert found["label"] == quantity["label"]
        assert (found["unit"] or "") == quantity["unit"]
        assert _shown_number_matches(found["value"], quantity["value"]), (rest[0], quantity)
        rest = rest[1:]
    if decision["rejected"]:
        assert rest[:2] == ["", "Rejected:"]
        assert rest[2:2 + len(decision["rejected"])] == [f"- {a['value']}: {a['reason']}"
                                                         for a in decision["rejected"]]
        rest = rest[2 + len(decision["rejected"]):]
    assert rest == [""], f"{decision['id']}: unexpected lines {rest}"


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.stem)
def test_explain_prints_every_decision_as_plan_json_has_it(sample: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = run(capsys, "explain", _rel(sample))
    blocks = _explain_blocks(text)
    doc = json.loads(run(capsys, "plan", _rel(sample), "--format", "json"))
    decisions = doc["decisions"]
    # After the decisions, the diagnostics with their hints (an SLO miss's ranked fixes), as plan.json has them.
    shown = text.split("\n## Diagnostics\n\n", 1)[1].rstrip("\n").split("\n") if doc["diagnostics"] else []
    assert shown == [f"- {d['severity']} {d['rule']}: {prose(d['message'])}" + (f" ({prose(d['hint'])})" if d["hint"]
                                                                              else "") for d in doc["diagnostics"]]
    assert [EXPLAIN_TITLE.match(b[0])["id"] for b in blocks] == [d["id"] for d in decisions]  # type: ignore[index]
    for block, decision in zip(blocks, decisions, strict=True):
        _check_explain_block(block, decision)


def test_explain_one_decision_prints_that_block_only(capsys: pytest.CaptureFixture[str]) -> None:
    sample = "samples/llama405b-2nodes-16gpu.toml"
    every = {b[0].split(" ")[1]: b for b in _explain_blocks(run(capsys, "explain", sample))}
    for key in ("parallelism", "max_model_len", "network"):
        assert _explain_blocks(run(capsys, "explain", sample, key)) == [every[key]]


def test_explain_an_unknown_decision_lists_the_known_ones(capsys: pytest.CaptureFixture[str]) -> None:
    sample = "samples/llama70b-a100-nvlink.toml"
    ids = [d["id"] for d in json.loads(run(capsys, "plan", sample, "--format", "json"))["decisions"]]
    assert cli.main(["explain", sample, "paralelism"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"deployc explain: no decision 'paralelism'; decisions: {', '.join(ids)}\n"


# --- deployc catalog --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["gpus", "models"])
def test_catalog_table_holds_the_json_rows_in_aligned_columns(kind: str, capsys: pytest.CaptureFixture[str]) -> None:
    lines = run(capsys, "catalog", kind).rstrip("\n").split("\n")
    rows = json.loads(run(capsys, "catalog", kind, "--format", "json"))
    assert len(rows) >= 10
    columns = list(rows[0])
    header = lines[0]
    assert header.split() == columns
    starts = [header.index(f"{c}  " if i < len(columns) - 1 else c) for i, c in enumerate(columns)]
    assert starts == sorted(starts) and starts[0] == 0
    assert len(lines) == len(rows) + 1
    for line, row in zip(lines[1:], rows, strict=True):
        assert line == line.rstrip()
        ends = [*starts[1:], None]
        for start, end, column in zip(starts, ends, columns, strict=True):
            cell = line[start:end]
            expected = "" if row[column] is None else str(row[column])
            assert cell.strip() == expected, (line, column)
            if end is not None and line[end:].strip():  # the cell fits its column: two spaces before the next
                assert cell.endswith("  "), (line, column)


def test_catalog_rows_are_sorted_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    for kind in ("gpus", "models"):
        names = [row["name"] for row in json.loads(run(capsys, "catalog", kind, "--format", "json"))]
        assert names == sorted(names)


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.stem)
def test_explain_md_serving_figures_are_the_plan_texts(sample: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """EXPLAIN.md's simulated block says, line for line, what ``deployc plan`` prints under each pool."""
    text = run(capsys, "plan", _rel(sample)).split("\n")
    plan_lines = [line.strip() for line in text if line.startswith(("    ", "  verdict: "))
                  and not line.startswith("    hint: ")]
    doc, _ = api.plan(sample)
    markdown = explain_markdown(doc, None).split("\n")
    explain_lines = [line.removeprefix("  - ") for line in markdown if line.startswith("  - ")]
    assert explain_lines == plan_lines
    heads = [line for line in markdown if line.startswith("- Serving (simulated, ")]
    assert len(heads) == sum(1 for pool in doc.pools if pool.serving is not None) > 0
