"""`deployc size` end to end: the table, the chart, the stop rule, exit codes, JSON and --write round trips."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from deployc import cli
from deployc.api import build, load_spec, plan
from deployc.plugins import default_registry
from deployc.sizing.frontier import CHART_HEIGHT
from deployc.sizing.report import (
    COLUMNS,
    MONOTONIC_NOTE,
    SCREEN_NOTE,
    latency_columns,
    size_json,
    size_json_text,
    size_text,
)
from deployc.sizing.run import Sized, size
from deployc.sizing.search import cost_key, plan_one
from deployc.sizing.space import Size
from deployc.sizing.write import resized_text, write_spec
from tests.conftest import REPO

SAMPLE = REPO / "samples" / "llama8b-fp8-h100-stable.toml"  # 128 users, TTFT p99 1.5 s, ITL p99 40 ms, $3.99/h


@pytest.fixture(scope="module")
def searched() -> Sized:
    """One small search shared by the tests: H100 and L40S up to 4 GPUs."""
    return size(SAMPLE, gpus="H100,L40S", max_gpus=4, display_name="samples/llama8b-fp8-h100-stable.toml")


@pytest.fixture(scope="module")
def cli_run(searched: Sized, tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str, str, Path]:
    """The same search through the command line, with --write."""
    out = tmp_path_factory.mktemp("size") / "sized.toml"

    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = cli.main(["size", str(SAMPLE), "--gpus", "H100,L40S", "--max-gpus", "4", "--write", str(out)])
    return code, stdout.getvalue(), stderr.getvalue(), out


def test_winners_serve_and_are_cheapest_first(searched: Sized):
    winners = searched.report.search.winners
    assert winners, "the sample serves on one H100"
    assert all(w.serves for w in winners)
    assert list(winners) == sorted(winners, key=cost_key)
    assert len({w.gpu for w in winners}) == len(winners)  # one per GPU type
    h100 = next(w for w in winners if w.gpu == "H100 SXM")  # the spec's own GPU (2 × L40S with FP8 KV is cheaper)
    assert h100.size.gpus == 1
    assert h100.usd_per_hour == pytest.approx(3.99)  # the spec's price, for its own GPU type
    assert h100.usd_per_million_output_tokens == pytest.approx(3.99 / (h100.output_tokens_per_s * 3600) * 1e6)


def test_no_gpu_type_is_planned_above_its_first_serving_size(searched: Sized):
    search = searched.report.search
    for winner in search.winners:
        sizes = [d.size.gpus for d in search.evaluated if d.gpu == winner.gpu]
        assert max(sizes) == winner.size.gpus
        below = [d for d in search.evaluated if d.gpu == winner.gpu and d.size.gpus < winner.size.gpus]
        assert not any(d.serves for d in below)


def test_other_gpu_types_are_not_priced_with_the_specs_price(searched: Sized):
    others = [d for d in searched.report.search.evaluated if d.gpu != "H100 SXM" and d.simulated]
    assert others
    assert all(d.usd_per_hour is None or "slo.gpu_hour_usd" not in (d.price_source or "") for d in others)


def test_a_winner_is_what_plan_says_for_that_spec(searched: Sized):
    winner = next(w for w in searched.report.search.winners if w.gpu == "H100 SXM")  # the sample's hardware
    assert winner.plan is not None and winner.size.gpus == 1
    again, _ = plan(SAMPLE)
    assert (again.primary.layout.label(), again.backend.name, again.primary.knobs.weights_format) == (
        winner.layout, winner.backend, winner.weights_format)
    assert again.primary.serving is not None
    assert again.primary.serving.output_tokens_per_s == pytest.approx(winner.output_tokens_per_s)


def test_text_output_has_the_table_and_the_chart(cli_run: tuple[int, str, str, Path], searched: Sized):
    code, out, _, _ = cli_run
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("deployc size llama8b-stable-fleet: Llama-3.1-8B, 128 concurrent users, prompts 800 / "
                               "outputs 250 tokens (mean); SLO: TTFT p99 ≤ 1,500 ms, ITL p99 ≤ 40 ms")
    header = lines.index("Cheapest deployments that serve the traffic within the SLO (one per GPU type, cheapest "
                         "first):")
    assert latency_columns(searched.loaded.spec.slo) == ("TTFT p99", "ITL p99")  # the sample's targets
    assert lines[header + 1].split() == [w for c in (*COLUMNS, "TTFT p99", "ITL p99") for w in c.split()]
    winners = searched.report.search.winners
    rows = lines[header + 2: header + 2 + len(winners)]
    for rank, (row, winner) in enumerate(zip(rows, winners, strict=True), 1):
        assert row.split()[0] == str(rank)
        assert f"{winner.size.gpus} × {winner.gpu}" in row
        assert f"{winner.tokens_per_s_per_gpu:,.0f}" in row
    chart = lines.index("  output tokens/s per GPU")
    plot = lines[chart + 1: chart + 1 + CHART_HEIGHT]
    assert all(line.startswith("  ") and ("|" in line or "+" in line) for line in plot)
    assert "A" in "".join(plot)
    assert any(line.startswith("    A  1 × H100 SXM") for line in lines)
    screened = sum(d.screened for d in searched.report.search.evaluated)
    assert screened, "L40S on one or two GPUs misses by far: screened"
    note = SCREEN_NOTE.format(screened=screened, requests=100, full=2000, screen_rounds=2, rounds=5, margin=1.3)
    assert lines[-2:] == [MONOTONIC_NOTE, note]


def test_output_is_deterministic(cli_run: tuple[int, str, str, Path], capsys: pytest.CaptureFixture[str]):
    _, out, _, _ = cli_run
    assert cli.main(["size", str(SAMPLE), "--gpus", "H100,L40S", "--max-gpus", "4"]) == 0
    assert capsys.readouterr().out == out


def test_write_round_trip_validates_plans_the_same_and_builds(cli_run: tuple[int, str, str, Path], searched: Sized,
                                                              tmp_path: Path):
    _, _, err, written = cli_run
    winner = searched.report.search.winners[0]
    assert err == (f"wrote {written}: {winner.label()} (the hardware, and [plan] pins of the backend, layout and "
                   "precision)\n")
    text = written.read_text()
    assert text.startswith("# Written by `deployc size ")
    loaded = load_spec(written)
    assert (loaded.spec.hardware.gpus_per_node, loaded.spec.hardware.nodes) == (winner.size.gpus_per_node,
                                                                                winner.size.nodes)
    assert winner.plan is not None
    layout = winner.plan.primary.layout
    pins = loaded.spec.plan
    assert (pins.backend, pins.tp, pins.pp, pins.dp, pins.ep, pins.quantization) == (
        winner.backend, layout.tp, layout.pp, layout.dp, layout.ep, winner.weights_format)
    again, _ = plan(written)
    assert (again.target.gpu.name, again.primary.layout.label(), again.backend.name) == (
        winner.gpu, winner.layout, winner.backend)
    result = build(written, tmp_path / "out")
    assert (tmp_path / "out" / "plan.json").is_file() and result.plan.primary.verdict is not None
    assert result.plan.primary.verdict.serves


def test_write_of_another_gpu_type_builds(searched: Sized, tmp_path: Path):

    other = next(w for w in searched.report.search.winners if w.gpu != "H100 SXM")
    path = tmp_path / "other.toml"
    write_spec(path, resized_text(searched.loaded.document, searched.loaded.spec, "H100 SXM", other), SAMPLE)
    spec = load_spec(path).spec
    assert (spec.hardware.gpu, spec.slo.gpu_hour_usd, spec.hardware.gpus_per_node) == (other.gpu, None,
                                                                                        other.size.gpus)
    result = build(path, tmp_path / "out")
    assert result.plan.primary.layout.label() == other.layout
    assert result.plan.primary.verdict is not None and result.plan.primary.verdict.serves


def test_json_has_the_same_answer(searched: Sized):
    doc = json.loads(json.dumps(size_json(searched.report)))
    winners = searched.report.search.winners
    assert doc["serves"] is True
    assert [d["gpu"] for d in doc["deployments"]] == [w.gpu for w in winners]
    assert [d["usd_per_hour"] for d in doc["deployments"] if d["gpu"] == "H100 SXM"] == [3.99]
    assert len(doc["evaluated"]) == len(searched.report.search.evaluated)
    assert [s["gpus"] for s in doc["sizes"]] == [1, 2, 4]
    assert {f["gpu"] for f in doc["frontier"]} <= {e["gpu"] for e in doc["evaluated"]}


def test_nothing_serves_exits_1_with_the_closest_and_writes_nothing(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]):
    out = tmp_path / "never.toml"
    # The spec's own GPU is always searched: on one L4 (the sample's fleet, moved to an L4) nothing serves.
    on_l4 = tmp_path / "on-l4.toml"
    on_l4.write_text(SAMPLE.read_text().replace('gpu = "NVIDIA H100 80GB HBM3"', 'gpu = "L4"'))
    assert cli.main(["size", str(on_l4), "--gpus", "L4", "--max-gpus", "1", "--write", str(out)]) == 1
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert "No deployment serves the traffic within the SLO on up to 1 GPUs." in lines
    closest = next(line for line in lines if line.startswith("Closest: "))
    assert closest.startswith("Closest: 1 × L4, TP1, ") and "misses the SLO: " in closest
    err = captured.err.splitlines()
    assert err[0] == (f"{on_l4}: error: no deployment on L4 with up to 1 GPUs serves the traffic within the SLO "
                      "[DPC324]")
    assert err[1].startswith("  hint: closest: 1 × L4, TP1, ") and "misses the SLO: " in err[1]
    assert err[2:] == [f"deployc size: nothing serves the traffic; {out} not written"]
    assert not out.exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--gpus", "H1000"], "deployc size: --gpus: unknown GPU 'H1000'; did you mean 'H100'?\n"),
    (["--max-gpus", "0"], "deployc size: --max-gpus: expected a positive number of GPUs, got 0\n"),
    (["--jobs", "0"], "deployc size: --jobs: expected a positive number of processes, got 0\n"),
])
def test_bad_arguments_exit_2_exactly(args: list[str], message: str, capsys: pytest.CaptureFixture[str]):
    assert cli.main(["size", str(SAMPLE), *args]) == 2
    assert capsys.readouterr().err == message


def test_write_refuses_to_replace_the_spec(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    spec = tmp_path / "s.toml"
    spec.write_text(SAMPLE.read_text())
    assert cli.main(["size", str(spec), "--gpus", "H100", "--max-gpus", "1", "--write", str(spec)]) == 1
    assert capsys.readouterr().err.endswith(
        f"{spec}: error: --write {spec} would replace the spec it is sized from [DPC602]\n"
        "  hint: give another file name\n")
    assert spec.read_text() == SAMPLE.read_text()


def test_json_format_on_the_command_line(capsys: pytest.CaptureFixture[str]):
    assert cli.main(["size", str(SAMPLE), "--gpus", "H100", "--max-gpus", "1", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["deployments"][0]["gpu"] == "H100 SXM" and doc["deployments"][0]["status"] == "serves"


def test_a_pinned_specs_layout_pins_are_not_carried_to_other_sizes(tmp_path: Path):
    pinned = tmp_path / "pinned.toml"
    pinned.write_text(SAMPLE.read_text() + "\n[plan]\ntp = 1\nmax_num_seqs = 512\nbackend = \"vllm\"\n")
    sized = size(pinned, gpus="L40S", max_gpus=2)
    evaluated = sized.report.search.evaluated
    assert [d.variant.backend for d in evaluated] == ["vllm"] * len(evaluated)  # the pinned backend is kept
    two = next(d for d in evaluated if d.size.gpus == 2 and d.plan is not None)
    assert two.plan is not None
    assert (two.plan.target.spec.plan.tp, two.plan.target.spec.plan.max_num_seqs) == (None, None)
    assert "the spec's [plan] pins of tp, max_num_seqs describe its own GPUs: not applied in the search" in (
        size_text(sized.report).splitlines())


def test_the_stop_rule_holds_here_one_size_up_serves_too(searched: Sized):
    """The search plans nothing above a GPU type's first serving size because more GPUs never serve worse."""
    winner = searched.report.search.winners[0]
    gpu = next(g for g in searched.report.search.gpus if g.name == winner.gpu)
    bigger = plan_one(searched.loaded, searched.target, default_registry(), gpu,
                      Size(gpus_per_node=winner.size.gpus * 2, nodes=1), winner.variant)
    assert bigger.serves
    assert bigger.output_tokens_per_s >= winner.output_tokens_per_s


CUSTOM_GPU = """version = 1
name = "custom"
[model]
id = "Qwen/Qwen3-8B"
[hardware]
gpu = "RTX 4000 Ada"
gpus_per_node = 2
[hardware.custom]
memory_gib = 19.5
bandwidth_gb_s = 360
bf16_tflops = 53.4
fp8_tflops = 106.9
compute_capability = "8.9"
[workload]
prompt_tokens = { mean = 4000, p99 = 12000 }
output_tokens = { mean = 300, p99 = 800 }
concurrency = 4
[slo]
ttft_ms = { p99 = 20000 }
tpot_ms = { p99 = 80 }
"""


def test_a_custom_gpu_is_searched_beside_the_catalog_gpus_named(tmp_path: Path) -> None:
    # With --gpus the spec's own GPU was dropped, and [hardware.custom] (which describes the spec's GPU) was carried
    # to the catalog GPUs: every L40S deployment read "not possible: ... describes only a GPU it lacks".
    spec = tmp_path / "custom.toml"
    spec.write_text(CUSTOM_GPU)
    report = size(spec, gpus="L40S", max_gpus=2).report
    assert [g.name for g in report.search.gpus] == ["RTX 4000 Ada", "L40S"]
    assert report.gpu_source == "--gpus and the spec's RTX 4000 Ada"
    on_l40s = [d for d in report.search.evaluated if d.gpu == "L40S"]
    assert on_l40s and all(d.status != "not_possible" for d in on_l40s)
    assert any(d.gpu == "L40S" and d.serves for d in report.search.winners)


def test_workers_give_the_same_report_as_one_process(searched: Sized):
    forked = size(SAMPLE, gpus="H100,L40S", max_gpus=4, display_name="samples/llama8b-fp8-h100-stable.toml", jobs=2)
    assert forked.report == searched.report
    assert size_json_text(forked.report) == size_json_text(searched.report)
