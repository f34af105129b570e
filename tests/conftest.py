"""Shared fixtures: write spec files, and the minimal valid spec other tests mutate."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SAMPLES = sorted((REPO / "samples").glob("*.toml"))

MINIMAL_SPEC = """\
version = 1
name = "tiny"

[model]
id = "meta-llama/Llama-3.1-8B-Instruct"

[hardware]
gpu = "H100 SXM"

[workload]
prompt_tokens = { mean = 1000, p99 = 4000 }
output_tokens = { mean = 200, p99 = 800 }
concurrency = 16
"""


@pytest.fixture
def write_spec(tmp_path: Path) -> Callable[[str], Path]:
    """Write TOML text to ``tmp_path/spec.toml`` and return the path."""

    def write(text: str, name: str = "spec.toml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true",
                     help="rewrite golden files (emitted artifacts, expected messages) instead of comparing")
    parser.addoption("--accept-golden-error", action="append", default=[], metavar="SAMPLE/BACKEND",
                     help="with --update-golden: record this sample's new build failure with this backend as its "
                          "golden ERROR.txt (a backend now meant to refuse the sample); without it a newly failing "
                          "build fails the test and its golden files are left alone")


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    """True when the run was asked to rewrite golden files."""
    return bool(request.config.getoption("--update-golden"))


@pytest.fixture
def accepted_golden_errors(request: pytest.FixtureRequest) -> frozenset[str]:
    """``SAMPLE/BACKEND`` cases whose new failure ``--update-golden`` may record as the golden."""
    return frozenset(request.config.getoption("--accept-golden-error"))
