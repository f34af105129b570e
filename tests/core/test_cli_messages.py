"""Messages a new user reads: named files, one mention of each backend, rounded numbers, a summary on success."""

from __future__ import annotations

from pathlib import Path

from deployc.api import plan
from tests.conftest import MINIMAL_SPEC
from tests.reliability._support import chdir, run_cli


def test_validate_says_so_in_one_line_when_the_spec_is_valid(tmp_path: Path) -> None:
    (tmp_path / "spec.toml").write_text(MINIMAL_SPEC)
    (tmp_path / "other.toml").write_text(MINIMAL_SPEC)
    with chdir(tmp_path):
        one = run_cli(["validate", "spec.toml"])
        two = run_cli(["validate", "spec.toml", "other.toml"])
        as_json = run_cli(["validate", "--format", "json", "spec.toml"])
    assert (one.code, one.out, one.err) == (0, "spec.toml: valid\n", "")
    assert (two.code, two.out) == (0, "2 specs: all valid\n")
    assert as_json.out == "[]\n"


def test_a_plan_error_without_a_key_names_the_spec_file(tmp_path: Path) -> None:
    (tmp_path / "spec.toml").write_text(MINIMAL_SPEC)
    with chdir(tmp_path):
        run = run_cli(["plan", "spec.toml", "--backend", "nope"])
    assert run.code == 1
    assert run.err.startswith("spec.toml: error: no installed backend named 'nope' [DPC105]")


def test_each_backend_is_named_once_in_why_none_can_serve(tmp_path: Path) -> None:
    (tmp_path / "spec.toml").write_text(MINIMAL_SPEC.replace('gpu = "H100 SXM"', 'gpu = "T4"').replace(
        "[hardware]", "quantization = \"awq\"\n[hardware]"))
    with chdir(tmp_path):
        run = run_cli(["plan", "spec.toml"])
    assert run.code == 1
    hint = run.err.splitlines()[1]
    assert "vllm: vllm" not in hint and "sglang: sglang" not in hint
    assert ("vllm: AWQ needs a checkpoint quantized offline with calibration data; vLLM 0.33.0 cannot produce it "
            "at load time; alternative: fp8 | ") in hint
    assert hint.count("vllm: ") == 1 and hint.count("sglang: ") == 1


def test_the_predicted_batch_is_rounded(tmp_path: Path) -> None:
    path = tmp_path / "spec.toml"
    path.write_text(MINIMAL_SPEC.replace("concurrency = 16", "request_rate_per_s = 3.3"))
    result, _ = plan(path, "vllm")
    batch = result.pools[0].performance.batch_size
    assert round(batch, 1) != batch, "the case must need rounding"
    with chdir(tmp_path):
        run = run_cli(["plan", "spec.toml", "--backend", "vllm"])
    assert f" at batch {round(batch, 1):g}, " in run.out
