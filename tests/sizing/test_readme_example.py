"""The README's "Will it serve my traffic?" example: the spec it shows exists, misses on one L4, and sizes."""

from __future__ import annotations

import pytest

from deployc import cli
from deployc.api import plan
from tests.conftest import REPO

EXAMPLE = REPO / "docs" / "examples" / "chat-8b-l4.toml"


def test_the_readme_shows_this_example():
    readme = (REPO / "README.md").read_text()
    assert "$ deployc plan docs/examples/chat-8b-l4.toml      # exit code 1" in readme
    assert "$ deployc size docs/examples/chat-8b-l4.toml --gpus L4,L40S,A100-80GB,H100" in readme


def test_one_l4_cannot_keep_up(capsys: pytest.CaptureFixture[str]):
    result, _ = plan(EXAMPLE)
    verdict = result.primary.verdict
    assert verdict is not None and verdict.status == "overloaded"
    assert cli.main(["plan", str(EXAMPLE)]) == 1
    assert "error DPC320: cannot keep up: 2 requests/s arrive" in capsys.readouterr().out


def test_one_h100_serves_it(capsys: pytest.CaptureFixture[str]):
    assert cli.main(["size", str(EXAMPLE), "--gpus", "H100", "--max-gpus", "1"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert any(row.startswith("  1  1 × H100 SXM") for row in rows)
