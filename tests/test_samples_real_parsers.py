"""Every sample's emitted engine command is accepted by the pinned engine's real argument parser.

The parsers run in their own CPU-only virtualenvs (tools/engine_parsers/install.sh); CI sets
DEPLOYC_REQUIRE_ENGINE_PARSERS=1 so a missing parser fails instead of skipping.
"""

from __future__ import annotations

import pytest

from deployc.api import plan
from deployc.diagnostics import PlanError
from deployc.planner.plan import Plan
from tests.conftest import REPO, SAMPLES
from tests.engine_parsers import check_argvs, require_or_skip
from tests.plugins.vllm.test_real_parser import emitted_cases


def _plans(backend: str) -> dict[str, Plan]:
    plans = {}
    for sample in SAMPLES:
        try:
            plans[sample.stem], _ = plan(sample, backend=backend, display_name=str(sample.relative_to(REPO)))
        except PlanError:
            continue  # the golden tests pin the diagnostic of a backend that cannot serve a sample
    return plans


@pytest.mark.engine_parser
def test_vllm_accepts_every_sample_command() -> None:
    require_or_skip("vllm")
    plans = _plans("vllm")
    assert len(plans) == len(SAMPLES), "vLLM should serve every sample"
    cases = emitted_cases(plans)
    results = check_argvs("vllm", cases)
    assert [(r["id"], r["stage"], r["error"]) for r in results if not r["ok"]] == []
    assert len(results) >= len(SAMPLES)
