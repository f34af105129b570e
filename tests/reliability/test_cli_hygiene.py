"""What the command itself prints and leaves behind: crash reports, SIGTERM, and tokens typed on the command line."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from deployc import cli
from tests.reliability._support import PIPELINE_SAMPLE, run_cli

TOKEN = "hf_" + "aB3dE5gH7j" * 4


def _crash(monkeypatch: pytest.MonkeyPatch) -> None:
    def bug(args: object) -> int:
        raise ZeroDivisionError(f"boom {TOKEN}")

    monkeypatch.setattr(cli, "_cmd_schema", bug)


def test_crash_log_is_private_and_redacted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(sys, "argv", ["deployc", "schema", TOKEN])
    _crash(monkeypatch)
    run = run_cli(["schema"])
    log = tmp_path / "deployc" / "crash.log"
    assert run.code == 3
    assert TOKEN not in run.err + log.read_text()
    assert "boom <redacted>" in run.err
    assert stat.S_IMODE(log.stat().st_mode) == 0o600


def test_crash_log_never_follows_a_planted_link(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (tmp_path / "deployc").mkdir()
    (tmp_path / "deployc" / "crash.log").symlink_to(victim)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    _crash(monkeypatch)
    run = run_cli(["schema"])
    assert run.code == 3
    assert victim.read_text() == "precious\n"
    report = Path(run.err.split("the details are in ")[1].strip())
    assert report.parent == Path(tempfile.gettempdir()) and report.name.startswith("deployc-crash-")
    assert stat.S_IMODE(report.stat().st_mode) == 0o600
    report.unlink()


def test_unusable_cache_dir_never_means_a_fixed_name_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A link at /tmp/crash.log made deployc overwrite its target when the cache directory was unusable."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # mkdir below a file fails
    _crash(monkeypatch)
    reports = [Path(run_cli(["schema"]).err.split("the details are in ")[1].strip()) for _ in range(2)]
    assert reports[0] != reports[1]
    for report in reports:
        assert report.name.startswith("deployc-crash-") and report.name != "crash.log"
        report.unlink()


def test_tokens_on_the_command_line_are_never_echoed(tmp_path: Path) -> None:
    runs = [run_cli(["plan", str(PIPELINE_SAMPLE), "--backend", TOKEN]),
            run_cli(["explain", str(PIPELINE_SAMPLE), TOKEN]),
            run_cli(["catalog", TOKEN]),
            run_cli(["validate", str(tmp_path / TOKEN)])]
    for run in runs:
        assert run.code != 0
        assert TOKEN not in run.out + run.err
        assert "<redacted>" in run.err, run.err


def test_sigterm_is_handled_like_ctrl_c(tmp_path: Path) -> None:
    """SIGTERM (a CI cancel, ``kill``) used to kill deployc at once, leaving its staging directory behind."""
    out = tmp_path / "out"
    script = textwrap.dedent(f"""
        import sys, time
        import deployc.emit
        original = deployc.emit._write_tree
        def slow(root, files, executable):
            original(root, files, executable)
            print("staged", flush=True)
            time.sleep(60)
        deployc.emit._write_tree = slow
        from deployc.cli import main
        sys.exit(main(["build", {str(PIPELINE_SAMPLE)!r}, "-o", {str(out)!r}]))
    """)
    with subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as proc:
        assert proc.stdout is not None and proc.stdout.readline() == "staged\n"
        os.kill(proc.pid, signal.SIGTERM)
        start = time.monotonic()
        _, err = proc.communicate(timeout=30)
    assert time.monotonic() - start < 10
    assert (proc.returncode, err) == (143, "deployc: terminated\n")
    assert list(tmp_path.iterdir()) == []  # no output, no hidden staging directory


def test_sigterm_handler_is_restored_after_main() -> None:
    before = signal.getsignal(signal.SIGTERM)
    cli.main(["--version"])
    assert signal.getsignal(signal.SIGTERM) is before
