"""Links (per GPU, per direction) and the measured NCCL collectives the performance model leans on."""

from __future__ import annotations

from typing import get_args

import pytest

from deployc.catalog import (
    CatalogLookupError,
    allreduce_measurements,
    latency_measurements,
    load_links,
    resolve_gpu,
    resolve_link,
)
from deployc.catalog.interconnects import GB
from deployc.spec.model import Interconnect, Network

SPEC_LINK_IDS = sorted({*get_args(Interconnect), *get_args(Network)} - {"auto", "none"})


@pytest.mark.parametrize("link_id", SPEC_LINK_IDS)
def test_every_link_a_spec_can_name_is_in_the_catalog(link_id: str) -> None:
    link = resolve_link(link_id)
    assert link.id == link_id
    assert link.source
    assert link.per_direction_bytes_per_s > 0


@pytest.mark.parametrize(("link_id", "gb_per_s"), [
    ("pcie3", 15.75), ("pcie4", 31.5), ("pcie5", 63.0), ("pcie6", 121.0),
    ("nvlink3", 300), ("nvlink4", 450), ("nvlink5", 900), ("nvlink-bridge", 300), ("infinity-fabric", 64),
    ("ib-hdr", 25), ("ib-ndr", 50), ("ib-xdr", 100), ("roce-400g", 50), ("eth-10g", 1.25), ("eth-25g", 3.125),
    ("eth-100g", 12.5),
])
def test_link_rates_are_per_direction(link_id: str, gb_per_s: float) -> None:
    link = resolve_link(link_id)
    assert link.per_direction_bytes_per_s == gb_per_s * GB
    assert link.bidirectional_bytes_per_s == 2 * gb_per_s * GB


def test_links_resolve_by_alias_and_suggest_when_unknown() -> None:
    assert resolve_link("NVLink 4").id == "nvlink4"
    assert resolve_link("InfiniBand NDR").id == "ib-ndr"
    with pytest.raises(CatalogLookupError) as exc:
        resolve_link("nvlink6")
    assert exc.value.kind == "interconnect"
    assert "nvlink5" in exc.value.suggestions
    assert len({link.id for link in load_links()}) == len(load_links())


@pytest.mark.parametrize("row", allreduce_measurements(), ids=lambda r: r.system)
def test_allreduce_measurements_are_sourced_and_resolvable(row: object) -> None:
    from deployc.catalog import AllReduceMeasurement

    assert isinstance(row, AllReduceMeasurement)
    assert row.source
    assert resolve_link(row.link_id).id == row.link_id
    if row.gpu is not None:
        assert resolve_gpu(row.gpu).name == row.gpu
    assert row.bus_bandwidth_bytes_per_s > 0
    if row.range_bytes_per_s:
        low, high = row.range_bytes_per_s
        assert low <= row.bus_bandwidth_bytes_per_s <= high


def test_nccl_reaches_about_80_percent_of_nvlink_with_ring() -> None:
    rows = {r.system: r for r in allreduce_measurements()}
    ring = rows["8x H100 SXM, NCCL_ALGO=Ring"]
    nvls = rows["8x H100 SXM (NVSwitch), NCCL NVLS (default)"]
    line_rate = resolve_link("nvlink4").per_direction_bytes_per_s
    assert ring.bus_bandwidth_bytes_per_s / line_rate == pytest.approx(370 / 450)
    assert nvls.bus_bandwidth_bytes_per_s > ring.bus_bandwidth_bytes_per_s
    assert rows["GB200 NVL72, 4 GPUs in one tray, nvbandwidth p2p"].metric == "p2p"
    assert rows["8x RTX 4090 on PCIe Gen4"].range_bytes_per_s == (15 * GB, 25 * GB)


def test_small_message_latency_rows() -> None:
    rows = latency_measurements()
    assert rows[0].latency_s == pytest.approx(6e-6) and rows[0].cuda_graphs is True
    for row in rows:
        assert row.source and row.latency_s > 0
        if row.link_id is not None:
            resolve_link(row.link_id)
        if row.range_s:
            assert row.range_s[0] <= row.latency_s <= row.range_s[1]
