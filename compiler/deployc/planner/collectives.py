"""Collective communication times: all-reduce, all-to-all, point-to-point, from measured NCCL figures.

A collective of ``S`` bytes on ``n`` GPUs costs ``latency + volume(S, n) / bus bandwidth``.
Bus bandwidth comes from the catalog's nccl-tests rows when one matches the link (and GPU),
else the link's line rate times the efficiency measured on the nearest row of the same kind.
Latency comes from the catalog's small-message rows, with the few PCIe rows the catalog does
not carry yet kept here with their sources. Every choice is returned as a sentence.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import median

from attrs import frozen

from deployc.catalog import GPU, Link, allreduce_measurements, latency_measurements, resolve_link
from deployc.catalog.interconnects import AllReduceMeasurement

US = 1e-6
GB = 1e9
# Small all-reduce without CUDA graphs inside an NVLink node: 16.4 µs for 1 KB on 8x H20 (nccl-tests,
# no graph), inside the catalog's 10-25 µs range (reference/catalog.md §2). Not in the catalog yet.
NO_GRAPH_LATENCY_S = 16.4 * US
NO_GRAPH_SOURCE = "github deepseek-ai/DeepEP#303 (8x H20 NVLink, all_reduce_perf without graphs, 1 KB: 16.4 µs)"
# Small-message all-reduce over PCIe, nccl-tests ``all_reduce_perf`` without CUDA graphs (8-byte row).
# Not in the catalog yet (requested); kept here with their sources.
PCIE_LATENCY_ROWS: tuple[tuple[str, int, float, str], ...] = (
    ("pcie4", 8, 42.14 * US, "github NVIDIA/nccl#1530 (8x RTX 4090, Gen4, 8 B: 42.14 µs)"),
    ("pcie4", 8, 54.18 * US, "github NVIDIA/nccl#1439 (8x RTX 3090, Gen4, 8 B: 54.18 µs)"),
    (
        "pcie5",
        2,
        8.72 * US,
        "github gardenlinux/gardenlinux#4556 (2x RTX PRO 6000 Blackwell Server, Gen5, 8 B: 8.72 µs)",
    ),
)
# 4 GPUs of the 8x RTX 5090 box (catalog row note, github NVIDIA/nccl#1639): 35 GB/s busbw.
PCIE5_FOUR_GPU_BUSBW = (4, 35 * GB, "github NVIDIA/nccl#1639 (4x RTX 5090, Gen5: 35 GB/s busbw)")
# NICs per node of the multi-node rows the network efficiency is measured on: "2 nodes x 8 A100, 4x HDR 200G per
# node" (github NVIDIA/nccl-tests#175) and "3 nodes x 8 A100 40GB, 4x HDR per node" (NVIDIA/nccl-tests#119),
# catalog §2 "Measured NCCL all-reduce".
REF_NICS_PER_NODE = 4
# Ethernet without RDMA runs NCCL over TCP sockets: no measurement; assumed twice InfiniBand's latency.
TCP_LATENCY_FACTOR = 2.0


@frozen(kw_only=True)
class CollectiveModel:
    """What one collective costs on a group of GPUs: fixed latency and bus bandwidth, with provenance."""

    latency_s: float
    bus_bandwidth_bytes_per_s: float
    algorithm: str
    source: str
    assumption: str


def allreduce_time_s(model: CollectiveModel, gpus: int, message_bytes: float) -> float:
    """latency + 2(n−1)/n × bytes / busbw; 0 on one GPU."""
    if gpus <= 1:
        return 0.0
    return model.latency_s + 2 * (gpus - 1) / gpus * message_bytes / model.bus_bandwidth_bytes_per_s


def alltoall_time_s(model: CollectiveModel, gpus: int, message_bytes: float) -> float:
    """One all-to-all (EP dispatch or combine): latency + (n−1)/n × bytes / busbw.

    ``message_bytes`` is what one rank holds to scatter (tokens × top-k × hidden × bytes); the
    all-reduce bus bandwidth stands in for the per-GPU all-to-all bandwidth (same links, both
    directions busy).
    """
    if gpus <= 1:
        return 0.0
    return model.latency_s + (gpus - 1) / gpus * message_bytes / model.bus_bandwidth_bytes_per_s


def p2p_time_s(model: CollectiveModel, message_bytes: float) -> float:
    """One send between two GPUs (a pipeline hand-off): latency + bytes / busbw."""
    return model.latency_s + message_bytes / model.bus_bandwidth_bytes_per_s


def _rows_for(link_id: str) -> list[AllReduceMeasurement]:
    return [r for r in allreduce_measurements() if r.metric == "busbw" and r.nodes == 1 and r.link_id == link_id]


def _pick_row(rows: list[AllReduceMeasurement], gpu: GPU, gpus: int) -> AllReduceMeasurement | None:
    """Same GPU first, then rows naming no GPU, then any GPU on the link; nearest GPU count; at 8 GPUs the
    NCCL default (NVLS where measured), below 8 the ring figure (NVLS pays off only on full nodes)."""
    if not rows:
        return None

    def rank(r: AllReduceMeasurement) -> tuple[int, int, int]:
        same = 0 if r.gpu == gpu.name else (1 if r.gpu is None else 2)
        algo = 0 if (r.algorithm == "NVLS") == (gpus >= 8) else 1
        return (same, abs(r.gpus - gpus), algo)

    return min(rows, key=rank)


def _mesh_lanes(link: Link, gpus: int) -> int:
    """Links one GPU drives at once in a ring all-reduce: n-1 in an Infinity Fabric mesh, one elsewhere."""
    return max(gpus - 1, 1) if link.kind == "infinity-fabric" else 1


def _kind_efficiency(link: Link) -> tuple[float, str]:
    """Median busbw / line rate over the measured rows of the same link kind (catalog)."""
    kind = link.kind
    ratios = [
        r.bus_bandwidth_bytes_per_s / (resolve_link(r.link_id).per_direction_bytes_per_s * _mesh_lanes(link, r.gpus))
        for r in allreduce_measurements()
        if r.metric == "busbw" and r.nodes == 1 and resolve_link(r.link_id).kind == kind
    ]
    if not ratios:
        return 0.8, "no measurement of this link kind; 0.8 of line rate assumed (NVLink ring, catalog pitfall 8)"
    return median(ratios), f"median busbw/line-rate {median(ratios):.2f} of {len(ratios)} measured {kind} rows"


def _intra_bandwidth(gpu: GPU, link: Link, gpus: int) -> tuple[float, str, str, str]:
    """(busbw, algorithm, source, sentence) inside a node."""
    if link.id == "pcie5" and gpus <= PCIE5_FOUR_GPU_BUSBW[0]:
        n, busbw, src = PCIE5_FOUR_GPU_BUSBW
        return busbw, "ring", src, f"bus bandwidth {busbw / GB:.0f} GB/s measured on {n} PCIe Gen5 GPUs"
    row = _pick_row(_rows_for(link.id), gpu, gpus)
    if row is not None and link.kind == "infinity-fabric" and row.gpus != gpus:
        # A full mesh gives each GPU one link per peer: a ring over n GPUs of the mesh drives n-1 of them.
        busbw = row.bus_bandwidth_bytes_per_s * _mesh_lanes(link, gpus) / _mesh_lanes(link, row.gpus)
        return (busbw, (row.algorithm or "rccl-default").lower(), row.source,
                f"bus bandwidth {busbw / GB:.0f} GB/s: {row.bus_bandwidth_bytes_per_s / GB:.0f} GB/s measured on "
                f"{row.system} ({row.gpus} GPUs), scaled by the links a ring over {gpus} GPUs of the mesh uses "
                f"({gpus - 1} of {row.gpus - 1})")
    if row is not None:
        who = "this GPU" if row.gpu == gpu.name else f"{row.gpu or 'a'} system"
        return (
            row.bus_bandwidth_bytes_per_s,
            (row.algorithm or "nccl-default").lower(),
            row.source,
            f"bus bandwidth {row.bus_bandwidth_bytes_per_s / GB:.0f} GB/s measured on {row.system} "
            f"({row.gpus} GPUs, {who})",
        )
    eff, why = _kind_efficiency(link)
    lanes = _mesh_lanes(link, gpus)
    busbw = link.per_direction_bytes_per_s * eff * lanes
    return (
        busbw,
        "ring",
        why,
        f"no all-reduce measured on {link.id}: {lanes} × line rate "
        f"{link.per_direction_bytes_per_s / GB:.0f} GB/s × efficiency {eff:.2f} ({why}) = {busbw / GB:.0f} GB/s",
    )


def _intra_latency(link: Link, gpus: int, cuda_graphs: bool) -> tuple[float, str, str]:
    """(latency, source, sentence) of a small all-reduce inside a node."""
    if link.kind == "pcie":
        rows = [r for r in PCIE_LATENCY_ROWS if r[0] == link.id] or list(PCIE_LATENCY_ROWS)
        ref_link, ref_n, ref_lat, src = min(rows, key=lambda r: r[2])
        # NCCL's small-message algorithms take log2(n) steps (tree/LL); anchored at the measured row.
        lat = ref_lat * math.log2(gpus) / math.log2(ref_n)
        return (
            lat,
            src,
            (
                f"small-message latency {lat / US:.0f} µs: {ref_lat / US:.0f} µs measured on {ref_n} "
                f"{ref_link} GPUs without CUDA graphs, scaled by log2({gpus})/log2({ref_n}); CUDA "
                "graphs are not assumed to shorten the PCIe round trip"
            ),
        )
    if link.kind == "infinity-fabric":
        mesh = [r for r in latency_measurements() if r.nodes == 1 and r.link_id == "infinity-fabric"]
        if mesh:
            row = min(mesh, key=lambda r: abs(r.gpus - gpus))
            return (row.latency_s, row.source,
                    f"small-message latency {row.latency_s / US:.1f} µs measured on {row.system}, used for every "
                    "Infinity Fabric generation; HIP graphs are not assumed to shorten it")
    nv = [
        r
        for r in latency_measurements()
        if r.nodes == 1 and r.link_id and r.link_id.startswith("nvlink") and r.cuda_graphs
    ]
    if cuda_graphs and nv:
        row = min(nv, key=lambda r: abs(r.gpus - gpus))
        return (
            row.latency_s,
            row.source,
            (
                f"small-message latency {row.latency_s / US:.0f} µs measured on "
                f"{row.system} (CUDA graphs), used for every NVLink generation"
            ),
        )
    return (
        NO_GRAPH_LATENCY_S,
        NO_GRAPH_SOURCE,
        (
            f"small-message latency {NO_GRAPH_LATENCY_S / US:.1f} µs without CUDA graphs, measured on "
            "8x H20 NVLink, used for every NVLink generation"
        ),
    )


def network_nics(network: Link | None, ib_hcas: Sequence[str]) -> int | None:
    """The RDMA ports NCCL uses on each node: the HCAs ``hardware.ib_hcas`` lists (NCCL_IB_HCA), or None when
    it lists none, names them by exclusion (``^mlx5_0``: the count is not known), or the network has no RDMA
    (``eth-*``: NCCL_IB_HCA is not set, NCCL runs over TCP sockets)."""
    if network is None or not ib_hcas or any(h.startswith("^") for h in ib_hcas):
        return None
    if network.kind == "ethernet" and not network.id.startswith("roce"):
        return None
    return len(ib_hcas)


def _network_bandwidth(network: Link, gpus: int, per_node: int, hcas: int | None) -> tuple[float, str, str]:
    """(busbw, source, sentence) of a ring all-reduce across nodes, before the intra-node cap.

    The ring's bottleneck is each node's way out: the RDMA ports it has (the listed HCAs, else one NIC per GPU,
    catalog §2 "Typical NIC per GPU") × their line rate, shared by the node's GPUs, × the efficiency
    nccl-tests reached on the catalog's multi-node rows (busbw / the rows' own NIC line rate).
    """
    rows = [r for r in allreduce_measurements() if r.metric == "busbw" and r.nodes > 1 and r.link_id == network.id]
    if rows and hcas is None:
        row = min(rows, key=lambda r: abs(r.gpus - gpus))
        return row.bus_bandwidth_bytes_per_s, row.source, f"measured on {row.system}"
    # The efficiency reference: the A100 rows with 4 HDR NICs per node (catalog §2, nccl-tests#175, #119).
    ref = [r for r in allreduce_measurements() if r.nodes > 1 and r.metric == "busbw" and r.link_id == "ib-hdr"]
    eff = median(r.bus_bandwidth_bytes_per_s / (REF_NICS_PER_NODE * resolve_link("ib-hdr").per_direction_bytes_per_s)
                 for r in ref) if ref else 0.85
    line = network.per_direction_bytes_per_s
    nics = per_node if hcas is None else hcas
    busbw = nics * line * eff
    ports = (f"one {network.id} NIC per GPU ({nics} per node)" if hcas is None else
             f"{nics} {network.id} HCA port{'s' if nics > 1 else ''} per node (hardware.ib_hcas, shared by its "
             f"{per_node} GPUs)")
    return (busbw, "; ".join(r.source for r in ref),
            f"{ports} × {line / GB:.1f} GB/s × {eff:.3f} = {busbw / GB:.1f} GB/s ({eff:.3f}: the efficiency "
            f"measured on 2-3 nodes of 8 A100 with {REF_NICS_PER_NODE} HDR NICs each)")


def _network_model(
    gpu: GPU, intra: Link, network: Link, gpus: int, *, gpus_per_node: int | None, cuda_graphs: bool,
    hcas: int | None = None,
) -> CollectiveModel:
    per_node = gpus_per_node or 8
    raw, src, formula = _network_bandwidth(network, gpus, per_node, hcas)
    intra_bw, _, _, intra_text = _intra_bandwidth(gpu, intra, min(gpus, per_node))
    busbw = min(raw, intra_bw)
    if busbw < raw and formula.startswith("measured"):
        formula = f"{raw / GB:.1f} GB/s {formula}"  # the measured figure the cap lowers
    bw_text = f"bus bandwidth {busbw / GB:.1f} GB/s: {formula}"
    if busbw < raw:
        # A ring across nodes also runs over each node's own GPU links: the slower of the two sets its pace.
        bw_text += (f", capped at {busbw / GB:.1f} GB/s, the all-reduce bus bandwidth of each node's own {intra.id} "
                    f"links, which the ring also crosses ({intra_text})")
    lat_rows = [r for r in latency_measurements() if r.nodes > 1 and r.link_id and r.link_id.startswith("ib")]
    lat_row = lat_rows[0] if lat_rows else None
    latency = lat_row.latency_s if lat_row else 47 * US
    lat_text = f"latency {latency / US:.0f} µs measured across InfiniBand nodes"
    if network.kind == "ethernet" and not network.id.startswith("roce"):
        latency *= TCP_LATENCY_FACTOR
        lat_text = (
            f"latency {latency / US:.0f} µs: twice the InfiniBand measurement, NCCL over TCP sockets (no measurement)"
        )
    graphs = "" if cuda_graphs else " (CUDA graphs do not change inter-node latency)"
    return CollectiveModel(
        latency_s=latency,
        bus_bandwidth_bytes_per_s=busbw,
        algorithm="ring-across-nodes",
        source=f"{src}; {lat_row.source if lat_row else 'catalog'}",
        assumption=f"Across nodes over {network.id}: {bw_text}; {lat_text}{graphs}.",
    )


def allreduce_model(
    gpu: GPU,
    link: Link,
    gpus: int,
    *,
    cuda_graphs: bool,
    network: Link | None = None,
    crosses_nodes: bool = False,
    gpus_per_node: int | None = None,
    network_nics: int | None = None,
) -> CollectiveModel:
    """The all-reduce cost model for ``gpus`` GPUs joined by ``link`` (or ``network`` across nodes).

    ``network_nics``: the RDMA ports of each node (:func:`network_nics`), None for one NIC per GPU.
    """
    if gpus <= 1:
        return CollectiveModel(
            latency_s=0.0,
            bus_bandwidth_bytes_per_s=math.inf,
            algorithm="none",
            source="",
            assumption="One GPU: no collective.",
        )
    if crosses_nodes:
        if network is None:
            raise ValueError("a collective that crosses nodes needs the network link")
        return _network_model(gpu, link, network, gpus, gpus_per_node=gpus_per_node, cuda_graphs=cuda_graphs,
                              hcas=network_nics)
    busbw, algorithm, bw_source, bw_text = _intra_bandwidth(gpu, link, gpus)
    latency, lat_source, lat_text = _intra_latency(link, gpus, cuda_graphs)
    return CollectiveModel(
        latency_s=latency,
        bus_bandwidth_bytes_per_s=busbw,
        algorithm=algorithm,
        source=f"{bw_source}; {lat_source}",
        assumption=f"All-reduce over {gpus} GPUs on {link.id}: {bw_text}; {lat_text}.",
    )
