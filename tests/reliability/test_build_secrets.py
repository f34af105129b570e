"""No secret is ever written: tokens are referenced from the environment by name, never by value."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability import specgen
from tests.reliability._support import PIPELINE_SAMPLE, SAMPLES, require_pipeline, run_cli


@pytest.fixture(autouse=True, scope="module")
def _pipeline_works() -> None:
    require_pipeline()


TOKEN = "hf_" + "kQ3vZ8pL2mX7nR4tY9wB1cD6fG0hJ5sAeU"


def _everything_written(out: Path) -> str:
    return "\n".join(p.read_bytes().decode("utf-8", "replace") for p in sorted(out.rglob("*")) if p.is_file())


@pytest.mark.parametrize("token_env", ["HF_TOKEN", "MY_HF_TOKEN"])
def test_token_in_the_environment_appears_in_no_artifact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         token_env: str) -> None:
    for name in ("HF_TOKEN", "MY_HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.setenv(name, TOKEN)
    doc = specgen.with_value(next(raw for n, _, raw in specgen.BASES if n == PIPELINE_SAMPLE.stem),
                             ("operations", "hf_token_env"), token_env)
    spec = tmp_path / "spec.toml"
    spec.write_text(specgen.spec_text(doc))
    run = run_cli(["build", str(spec), "-o", str(tmp_path / "out")])
    assert run.code == 0, run.err
    written = _everything_written(tmp_path / "out")
    assert TOKEN not in written + run.out + run.err
    assert TOKEN[:12] not in written
    assert token_env in (tmp_path / "out" / "run.sh").read_text()  # referenced by name


def test_token_in_a_spec_field_fails_the_build_and_writes_nothing(tmp_path: Path) -> None:
    doc = specgen.with_value(next(raw for n, _, raw in specgen.BASES if n == PIPELINE_SAMPLE.stem),
                             ("model", "served_name"), TOKEN)
    spec = tmp_path / "spec.toml"
    spec.write_text(specgen.spec_text(doc))
    run = run_cli(["build", str(spec), "-o", str(tmp_path / "out")])
    assert run.code == 1
    assert "[DPC021]" in run.err
    assert TOKEN not in run.out + run.err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.stem)
def test_no_sample_writes_a_token_looking_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sample: Path) -> None:
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    run = run_cli(["build", str(sample), "-o", str(tmp_path / "out")])
    assert run.code == 0, f"{sample.name} does not build (exit {run.code}):\n{run.err}"
    from deployc.spec.secrets import looks_secret

    assert not looks_secret(_everything_written(tmp_path / "out"))
