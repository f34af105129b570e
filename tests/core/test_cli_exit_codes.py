"""Each exit code, exactly (0 ok, 1 invalid, 2 usage, 3 internal, 4 plugin, 130 interrupted)."""

from __future__ import annotations

from pathlib import Path

import pytest

from deployc import cli
from deployc.diagnostics import ExitCode


def test_usage_error_is_2(capsys: pytest.CaptureFixture[str]):
    assert cli.main(["frobnicate"]) == ExitCode.USAGE == 2
    assert "invalid choice: 'frobnicate'" in capsys.readouterr().err


def test_missing_argument_is_2(capsys: pytest.CaptureFixture[str]):
    assert cli.main(["validate"]) == 2
    assert "the following arguments are required: SPEC" in capsys.readouterr().err


def test_help_is_0(capsys: pytest.CaptureFixture[str]):
    assert cli.main(["build", "--help"]) == 0
    assert "Plan a spec and write the deployment" in capsys.readouterr().out


def test_invalid_spec_is_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    spec = tmp_path / "s.toml"
    spec.write_text("version = 1\nname = 'x'\n")
    assert cli.main(["validate", str(spec)]) == 1
    assert "[DPC014]" in capsys.readouterr().err


def test_internal_error_is_3_with_a_report_and_no_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))

    def bug(args: object) -> int:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(cli, "_cmd_schema", bug)
    assert cli.main(["schema"]) == ExitCode.INTERNAL == 3
    err = capsys.readouterr().err
    assert err == (f"deployc: internal error: ZeroDivisionError: division by zero\n"
                   f"  this is a bug in deployc; the details are in {tmp_path / 'deployc' / 'crash.log'}\n")
    assert "Traceback" in (tmp_path / "deployc" / "crash.log").read_text()


def test_interrupt_is_130(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    def interrupted(args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_cmd_schema", interrupted)
    assert cli.main(["schema"]) == ExitCode.INTERRUPTED == 130
    assert capsys.readouterr().err == "deployc: interrupted\n"


def test_json_format_puts_diagnostics_on_stdout(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    import json

    spec = tmp_path / "s.toml"
    spec.write_text("version = 1\nname = 'x'\nnonsense = 1\n")
    assert cli.main(["validate", "--format", "json", str(spec)]) == 1
    records = json.loads(capsys.readouterr().out)
    assert {r["rule"] for r in records} >= {"DPC010", "DPC014"}
    unknown = next(r for r in records if r["rule"] == "DPC010")
    assert (unknown["key_path"], unknown["line"]) == ("nonsense", 3)
