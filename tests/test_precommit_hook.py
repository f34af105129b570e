"""The real pre-commit, running this repository's deployc-validate hook on a repo of specs.

`pre-commit try-repo` installs the hook from this checkout into its own environment (it
needs the package index for deployc's dependencies, as every pre-commit user does).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import MINIMAL_SPEC, REPO


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


@pytest.mark.slow
def test_try_repo_passes_good_spec_and_fails_bad_one(tmp_path: Path) -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    source = tmp_path / "deployc-src"
    # try-repo wants a git repository: a snapshot of the working tree, committed.
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".git", ".venv", "*.egg-info", "build", "dist",
                                                                 "__pycache__", "out", "golden"))
    _git(source, "init", "-q")
    _git(source, "-c", "user.email=t@example.com", "-c", "user.name=t", "add", "-A")
    _git(source, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "snapshot")
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "good.toml").write_text(MINIMAL_SPEC)
    (specs / "bad.toml").write_text(MINIMAL_SPEC.replace('gpu = "H100 SXM"', 'gpu = "H100 SXM"\ngpus_per_nod = 2'))
    _git(specs, "init", "-q")
    _git(specs, "add", "-A")
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "cache"), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    run = [sys.executable, "-m", "pre_commit", "try-repo", str(source), "deployc-validate", "--files"]
    good = subprocess.run([*run, "good.toml"], check=False, cwd=specs, capture_output=True, text=True, env=env,
                          timeout=900)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "Passed" in good.stdout
    bad = subprocess.run([*run, "bad.toml"], check=False, cwd=specs, capture_output=True, text=True, env=env,
                         timeout=900)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "Failed" in bad.stdout
    assert ("bad.toml:9: error: hardware.gpus_per_nod: unknown key 'gpus_per_nod' [DPC010]\n"
            "  hint: did you mean 'gpus_per_node'?") in bad.stdout
