"""`deployc check-log` on the shipped real start-up logs: predicted against observed, attributed."""

from __future__ import annotations

import pytest

from deployc.checklog import compare
from deployc.cli import main
from tests.conftest import REPO

LOGS = REPO / "samples" / "logs"


def test_tp2_log_weights_match_and_rows_carry_observed_numbers() -> None:
    rows = {r.label: r for r in compare(LOGS / "qwen2-7b-a100.toml", LOGS / "qwen2-7b-a100-tp2.log")}
    assert rows["weights per GPU"].observed == pytest.approx(7.1217)
    assert abs(rows["weights per GPU"].error or 1) < 0.02
    assert rows["KV cache tokens"].observed == 450_192
    assert abs(rows["KV cache tokens"].error or 1) < 0.10


def test_log_settings_replace_the_plan(capsys: pytest.CaptureFixture[str]) -> None:
    # The TP1 log states no tensor_parallel_size: vLLM prints only non-defaults, so it ran with TP 1.
    assert main(["check-log", str(LOGS / "qwen2-7b-a100.toml"), str(LOGS / "qwen2-7b-a100-tp1.log")]) == 0
    out = capsys.readouterr().out
    assert "at the log's settings: TP 1, memory fraction 0.25, max model length 16384" in out
    assert "weights per GPU           14.19 GiB predicted, 14.25 observed (-0.4%) ok" in out


def test_a_file_without_engine_lines_is_a_clean_error(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    log = tmp_path / "x.log"
    log.write_text("hello\n")
    assert main(["check-log", str(LOGS / "qwen2-7b-a100.toml"), str(log)]) == 1
    assert "no vLLM or SGLang start-up lines found [DPC001]" in capsys.readouterr().err
