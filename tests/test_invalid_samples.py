"""Every broken spec in samples/invalid/ fails validation with exactly the message beside it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from deployc.cli import main
from tests.conftest import REPO

INVALID = sorted((REPO / "samples" / "invalid").glob("*.toml"))


@pytest.mark.parametrize("spec", INVALID, ids=[p.stem for p in INVALID])
def test_invalid_sample_message(spec: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                update_golden: bool) -> None:
    monkeypatch.chdir(REPO)
    code = main(["validate", os.path.relpath(spec, REPO)])
    err = capsys.readouterr().err
    expected = spec.with_suffix(".expected")
    if update_golden:
        expected.write_text(err)
    assert code == 1
    assert err == expected.read_text()
    assert "[DPC" in err


def test_every_invalid_sample_has_its_expected_message() -> None:
    assert len(INVALID) >= 10
    for spec in INVALID:
        assert spec.with_suffix(".expected").is_file(), spec.name


def test_valid_samples_validate_in_one_process(capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    samples = sorted(os.path.relpath(p, REPO) for p in (REPO / "samples").glob("*.toml"))
    assert len(samples) >= 10
    code = main(["validate", *samples])
    assert "error" not in capsys.readouterr().err
    assert code == 0
