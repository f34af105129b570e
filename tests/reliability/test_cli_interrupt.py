"""Ctrl-C during ``deployc build`` exits 130 and leaves no output directory (no pipeline needed)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.reliability._support import PIPELINE_SAMPLE, run_cli


@pytest.mark.parametrize("stage", ["load_spec", "plan"])
def test_ctrl_c_in_a_stage_exits_130_with_no_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    stage: str) -> None:
    from deployc import api

    def interrupt(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(api, stage, interrupt)
    run = run_cli(["build", str(PIPELINE_SAMPLE), "-o", str(tmp_path / "out")])
    assert (run.code, run.out, run.err) == (130, "", "deployc: interrupted\n")
    assert list(tmp_path.iterdir()) == []


def test_python_m_deployc_exits_130_on_ctrl_c(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import runpy, sys
        import deployc.api
        def interrupt(*args, **kwargs):
            raise KeyboardInterrupt
        deployc.api.plan = interrupt
        sys.argv = ["deployc", "build", {str(PIPELINE_SAMPLE)!r}, "-o", {str(tmp_path / "out")!r}]
        runpy.run_module("deployc", run_name="__main__")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert (done.returncode, done.stderr) == (130, "deployc: interrupted\n")
    assert not (tmp_path / "out").exists()
