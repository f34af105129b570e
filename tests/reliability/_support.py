"""Helpers shared by the reliability suites: running the CLI in-process, and the pipeline check."""

from __future__ import annotations

import contextlib
import functools
import io
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from attrs import frozen

REPO = Path(__file__).resolve().parents[2]
SAMPLES = tuple(sorted((REPO / "samples").glob("*.toml")))
PIPELINE_SAMPLE = REPO / "samples" / "llama70b-a100-nvlink.toml"
RULE_ID = re.compile(r"DPC\d{3}")
# Problems with the file as a whole (unreadable, not TOML, too large or too deep) have no key path.
FILE_LEVEL_RULES = frozenset({"DPC001", "DPC002", "DPC003"})


@frozen
class CliRun:
    """What one in-process ``deployc`` invocation did."""

    code: int
    out: str
    err: str


def run_cli(argv: Sequence[str]) -> CliRun:
    """Run ``deployc.cli.main(argv)`` in this process, capturing stdout and stderr."""
    from deployc.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return CliRun(code=code, out=out.getvalue(), err=err.getvalue())


@contextlib.contextmanager
def chdir(path: Path) -> Iterator[None]:
    """Temporarily change the current directory (for relative spec paths)."""
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


@functools.cache
def _reference_build() -> CliRun:
    """``deployc build`` of the reference sample, once per session (a crash report goes away with the directory)."""
    before = os.environ.get("XDG_CACHE_HOME")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["XDG_CACHE_HOME"] = tmp
            return run_cli(["build", str(PIPELINE_SAMPLE), "-o", str(Path(tmp) / "out")])
    finally:
        if before is None:
            os.environ.pop("XDG_CACHE_HOME", None)
        else:
            os.environ["XDG_CACHE_HOME"] = before


def require_pipeline() -> None:
    """Fail (never skip) when ``deployc build`` does not work end to end on the reference sample.

    The build suites need the whole pipeline; when it is broken they fail once with the build's own
    error instead of each reporting a consequence of it, and never pass by skipping.
    """
    run = _reference_build()
    if run.code != 0:
        pytest.fail(f"`deployc build {PIPELINE_SAMPLE.relative_to(REPO)}` exits {run.code}; the build suites need "
                    f"the pipeline:\n{run.err}", pytrace=False)


def tree(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``root``: relative path → (bytes, permission bits)."""
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mode & 0o777)
            for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()}
