"""Plans of every sample with the SGLang backend forced, built once per session."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from deployc.api import plan
from deployc.diagnostics import DeploycError
from deployc.planner.plan import Plan
from tests.conftest import REPO

SAMPLES = sorted((REPO / "samples").glob("*.toml"))


@pytest.fixture(scope="session")
def sample_plans() -> dict[str, Plan]:
    """Every sample SGLang can serve, by file stem (the others raise a diagnostic, tested separately)."""
    plans: dict[str, Plan] = {}
    for path in SAMPLES:
        try:
            plans[path.stem], _ = plan(Path(path), "sglang", display_name=path.name)
        except DeploycError:
            continue
    return plans


def with_knobs(p: Plan, **changes: object) -> Plan:
    """The plan with every pool's knobs changed (decisions kept)."""
    pools = tuple(attrs.evolve(pool, knobs=attrs.evolve(pool.knobs, **changes)) for pool in p.pools)
    return attrs.evolve(p, pools=pools)
