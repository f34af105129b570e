"""deployc's cattrs converter builds each attrs class's hooks once, and they do what cattrs' own do."""

from __future__ import annotations

import cattrs
from attrs import frozen

from deployc.contract.deployment import Latency
from deployc.converter import Converter
from deployc.serialise import converter as plan_converter
from deployc.spec.model import Percentiles
from deployc.spec.structure import converter as spec_converter


@frozen
class _Sample:
    latency: Latency
    values: tuple[float, ...]


def _latency() -> Latency:
    return Latency(p50=1.5, p90=2.0, p95=2.5, p99=3.25, mean=1.75)


def test_an_unstructure_hook_survives_cattrs_emptying_its_dispatch_cache() -> None:
    plain, once = cattrs.Converter(), Converter()
    for c in (plain, once):
        c.get_unstructure_hook(Latency)
    # A new sequence type: cattrs registers the hook it makes, which empties its dispatch cache.
    for c in (plain, once):
        c.get_unstructure_hook(tuple[int, ...])
    first = {id(c): c.get_unstructure_hook(Latency) for c in (plain, once)}
    for c in (plain, once):
        c.get_unstructure_hook(tuple[str, ...])
    assert plain.get_unstructure_hook(Latency) is not first[id(plain)]  # cattrs generated it again
    assert once.get_unstructure_hook(Latency) is first[id(once)]


def test_a_structure_hook_is_built_once() -> None:
    once = Converter(forbid_extra_keys=True)
    hook = once.get_structure_hook(Percentiles)
    once.get_unstructure_hook(tuple[int, ...])
    once.get_structure_hook(tuple[str, ...])
    assert once.get_structure_hook(Percentiles) is hook


def test_the_hooks_give_what_cattrs_gives() -> None:
    value = _Sample(latency=_latency(), values=(0.5, 1.0))
    assert Converter().unstructure(value) == cattrs.Converter().unstructure(value)
    data = {"latency": {"p50": 1.5, "p90": 2.0, "p95": 2.5, "p99": 3.25, "mean": 1.75}, "values": [0.5, 1]}
    assert Converter().structure(data, _Sample) == cattrs.Converter().structure(data, _Sample)


def test_deployc_converters_are_the_caching_kind() -> None:
    assert isinstance(plan_converter(), Converter)
    assert isinstance(spec_converter(), Converter)
