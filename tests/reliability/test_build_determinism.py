"""Same input, same bytes: across runs, hash seeds, current directories, locales, time zones and umasks."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.reliability._support import PIPELINE_SAMPLE, SAMPLES, require_pipeline, run_cli


@pytest.fixture(autouse=True, scope="module")
def _pipeline_works() -> None:
    require_pipeline()


MULTI_NODE = PIPELINE_SAMPLE.parent / "llama405b-2nodes-16gpu.toml"


def _snapshot(root: Path) -> dict[str, tuple[bytes | None, int]]:
    """Every file and directory under root: bytes (None for a directory) and permission bits."""
    return {str(p.relative_to(root)): (None if p.is_dir() else p.read_bytes(), p.stat().st_mode & 0o777)
            for p in sorted(root.rglob("*"))}


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.stem)
def test_two_builds_are_byte_identical(tmp_path: Path, sample: Path) -> None:
    first = run_cli(["build", str(sample), "-o", str(tmp_path / "a")])
    assert first.code == 0, f"{sample.name} does not build (exit {first.code}):\n{first.err}"
    assert run_cli(["build", str(sample), "-o", str(tmp_path / "b")]).code == 0
    assert _snapshot(tmp_path / "a") == _snapshot(tmp_path / "b")


def _subprocess_build(spec_dir: Path, out: Path, **env_overrides: str) -> dict[str, tuple[bytes | None, int]]:
    """``python -m deployc build spec.toml -o <out>`` run from ``spec_dir`` in a fresh interpreter."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LC_", "PYTHONHASHSEED"))}
    umask = env_overrides.pop("UMASK", None)
    env.update(env_overrides)
    done = subprocess.run([sys.executable, "-c", "import os, sys, runpy; "
                           f"os.umask(int({umask or '0o022'!r}, 8)); sys.argv = ['deployc', *sys.argv[1:]]; "
                           "runpy.run_module('deployc', run_name='__main__')",
                           "build", "spec.toml", "-o", str(out)],
                          cwd=spec_dir, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return _snapshot(out)


@pytest.fixture(scope="module", params=[PIPELINE_SAMPLE, MULTI_NODE], ids=lambda p: p.stem)
def reference(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The sample copied into a directory of its own (with the model configs it names), built once."""
    spec_dir = tmp_path_factory.mktemp("spec")
    shutil.copy(request.param, spec_dir / "spec.toml")
    shutil.copytree(PIPELINE_SAMPLE.parent / "models", spec_dir / "models")
    return spec_dir, _subprocess_build(spec_dir, spec_dir / "out", PYTHONHASHSEED="0", LC_ALL="C.UTF-8")


@pytest.mark.parametrize("env", [
    {"PYTHONHASHSEED": "1", "LC_ALL": "C", "TZ": "Pacific/Kiritimati"},
    {"PYTHONHASHSEED": "4242", "LC_ALL": "POSIX", "LANG": "tr_TR.UTF-8", "TZ": "America/St_Johns"},
    {"PYTHONHASHSEED": "random", "LC_ALL": "de_DE.UTF-8"},
    {"UMASK": "0o077"}, {"UMASK": "0o000"},  # directories too: a world-writable k8s/ could be fed manifests
], ids=["hashseed-1-c-kiritimati", "hashseed-4242-posix-tr-newfoundland", "hashseed-random-de", "umask-077",
        "umask-000"])
def test_build_does_not_depend_on_the_environment(reference: tuple[Path, dict], tmp_path: Path,
                                                  env: dict[str, str]) -> None:
    spec_dir, expected = reference
    assert _subprocess_build(spec_dir, tmp_path / "out", **env) == expected


def test_build_does_not_depend_on_where_the_spec_is(reference: tuple[Path, dict], tmp_path: Path) -> None:
    spec_dir, expected = reference
    elsewhere = tmp_path / "some" / "other place"
    shutil.copytree(spec_dir, elsewhere, ignore=shutil.ignore_patterns("out"))
    assert _subprocess_build(elsewhere, tmp_path / "out") == expected


def test_output_names_no_machine_user_time_or_path(reference: tuple[Path, dict]) -> None:
    spec_dir, expected = reference
    text = b"\n".join(data for data, _ in expected.values() if data is not None).decode("utf-8", "replace")
    host = socket.gethostname()
    for leak in [str(spec_dir), str(spec_dir.parent), time.strftime("%Y-%m-%d"), *([host] if len(host) >= 8 else [])]:
        assert leak not in text, f"the output names {leak!r}"
