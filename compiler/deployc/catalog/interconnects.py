"""Links between GPUs and between nodes, and measured NCCL all-reduce bandwidth and latency.

Every bandwidth is per GPU per direction (what a ring all-reduce can use), never the
bidirectional or whole-system marketing sum; data in ``data/interconnects.json``.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any, Literal

from attrs import frozen

from deployc.catalog.lookup import NameIndex, load_data

GB = 10**9
MICROSECOND = 1e-6

LinkKind = Literal["pcie", "nvlink", "infinity-fabric", "infiniband", "ethernet"]


@frozen(kw_only=True)
class Link:
    """One kind of link, e.g. ``nvlink4`` or ``ib-ndr``, with its per-direction line rate."""

    id: str
    name: str
    kind: LinkKind
    per_direction_bytes_per_s: float
    aliases: tuple[str, ...] = ()
    source: tuple[str, ...] = ()
    notes: str = ""

    @property
    def bidirectional_bytes_per_s(self) -> float:
        """Both directions together (the figure vendors quote for NVLink and PCIe)."""
        return 2 * self.per_direction_bytes_per_s


@frozen(kw_only=True)
class AllReduceMeasurement:
    """A measured nccl-tests ``all_reduce_perf`` result (large messages).

    ``bus_bandwidth_bytes_per_s`` is busbw = algbw × 2(n−1)/n, comparable with the link's
    per-direction rate; for a reported range it is the middle and ``range_bytes_per_s`` the ends.
    ``metric`` is ``p2p`` for point-to-point copy bandwidth rows.
    """

    system: str
    gpu: str | None  # catalog GPU name when the GPU is in the catalog
    gpus: int
    nodes: int
    link_id: str
    bus_bandwidth_bytes_per_s: float
    range_bytes_per_s: tuple[float, float] | None = None
    metric: Literal["busbw", "p2p"] = "busbw"
    algorithm: str | None = None
    notes: str = ""
    source: str = ""


@frozen(kw_only=True)
class LatencyMeasurement:
    """A measured small-message all-reduce latency."""

    system: str
    gpus: int
    nodes: int
    link_id: str | None
    latency_s: float
    range_s: tuple[float, float] | None = None
    cuda_graphs: bool | None = None
    message_bytes: int | None = None
    notes: str = ""
    source: str = ""


def _pair(raw: Any, scale: float) -> tuple[float, float] | None:
    return None if raw is None else (float(raw[0]) * scale, float(raw[1]) * scale)


def _link(entry: Mapping[str, Any]) -> Link:
    return Link(id=entry["id"], name=entry["name"], kind=entry["kind"],
                per_direction_bytes_per_s=float(entry["per_direction_gbytes_per_s"]) * GB,
                aliases=tuple(entry.get("aliases", ())), source=tuple(entry.get("source", ())),
                notes=entry.get("notes", ""))


@cache
def load_links() -> tuple[Link, ...]:
    """Every link kind in the catalog."""
    return tuple(_link(e) for e in load_data("interconnects.json")["links"])


@cache
def _index() -> NameIndex[Link]:
    return NameIndex("interconnect", load_links(), lambda link: (link.id, *link.aliases))


def resolve_link(id_or_alias: str) -> Link:
    """The link with this id (``pcie5``, ``nvlink4``, ``ib-ndr``...) or alias; else CatalogLookupError."""
    return _index().get(id_or_alias)


@cache
def allreduce_measurements() -> tuple[AllReduceMeasurement, ...]:
    """Measured large-message all-reduce bandwidths, as reported (see each row's source)."""
    rows = load_data("interconnects.json")["allreduce_measurements"]
    return tuple(AllReduceMeasurement(
        system=r["system"], gpu=r.get("gpu"), gpus=int(r["gpus"]), nodes=int(r["nodes"]),
        link_id=r["link_id"],
        bus_bandwidth_bytes_per_s=float(r["bandwidth_gbytes_per_s"]) * GB,
        range_bytes_per_s=_pair(r.get("bandwidth_range_gbytes_per_s"), GB), metric=r.get("metric", "busbw"),
        algorithm=r.get("algorithm"), notes=r.get("notes", ""), source=r["source"]) for r in rows)


@cache
def latency_measurements() -> tuple[LatencyMeasurement, ...]:
    """Measured small-message all-reduce latencies (few points; see each row's notes)."""
    rows = load_data("interconnects.json")["latency_measurements"]
    return tuple(LatencyMeasurement(
        system=r["system"], gpus=int(r["gpus"]), nodes=int(r["nodes"]), link_id=r.get("link_id"),
        latency_s=float(r["latency_us"]) * MICROSECOND, range_s=_pair(r.get("latency_range_us"), MICROSECOND),
        cuda_graphs=r.get("cuda_graphs"), message_bytes=r.get("message_bytes"), notes=r.get("notes", ""),
        source=r["source"]) for r in rows)
