"""The build suites' pipeline check fails, never skips, when ``deployc build`` is broken."""

from __future__ import annotations

import pytest

from tests.reliability import _support
from tests.reliability._support import CliRun, require_pipeline


def test_the_reference_build_works() -> None:
    require_pipeline()  # raises pytest's Failed otherwise


def test_a_failing_build_fails_the_suites(monkeypatch: pytest.MonkeyPatch) -> None:
    crashed = CliRun(code=3, out="", err="deployc: internal error: ValueError: boom\n")
    monkeypatch.setattr(_support, "_reference_build", lambda: crashed)
    with pytest.raises(pytest.fail.Exception) as exc:
        require_pipeline()
    assert str(exc.value) == ("`deployc build samples/llama70b-a100-nvlink.toml` exits 3; the build suites need "
                              "the pipeline:\ndeployc: internal error: ValueError: boom\n")


def test_an_exception_escaping_the_cli_is_not_swallowed(monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(argv: object) -> CliRun:
        raise RuntimeError("the CLI let an exception out")

    monkeypatch.setattr(_support, "run_cli", crash)
    with pytest.raises(RuntimeError, match="the CLI let an exception out"):
        _support._reference_build.__wrapped__()
