"""Collective costs: the formulas, and which measured catalog row each link and GPU count uses."""

from __future__ import annotations

import math
import re

import pytest

from deployc.catalog import allreduce_measurements, resolve_gpu, resolve_link
from deployc.planner.collectives import (
    CollectiveModel,
    allreduce_model,
    allreduce_time_s,
    alltoall_time_s,
    network_nics,
    p2p_time_s,
)

GB = 1e9
US = 1e-6


def model(gpu: str, link: str, gpus: int, *, cuda_graphs: bool = True) -> CollectiveModel:
    return allreduce_model(resolve_gpu(gpu), resolve_link(link), gpus, cuda_graphs=cuda_graphs)


def test_allreduce_time_is_latency_plus_ring_volume_over_bus_bandwidth() -> None:
    m = model("H100 SXM", "nvlink4", 4)
    # 16 KiB decode message (1 token × 8192 hidden × 2 bytes): 6 µs + 2·3/4 · 16384 B / 370 GB/s.
    assert allreduce_time_s(m, 4, 16384) == pytest.approx(6 * US + 1.5 * 16384 / (370 * GB))
    assert allreduce_time_s(m, 1, 16384) == 0.0
    assert allreduce_model(resolve_gpu("H100 SXM"), resolve_link("nvlink4"), 1, cuda_graphs=True).algorithm == "none"


def test_alltoall_and_p2p_formulas() -> None:
    m = CollectiveModel(
        latency_s=10 * US, bus_bandwidth_bytes_per_s=100 * GB, algorithm="ring", source="s", assumption="a."
    )
    assert alltoall_time_s(m, 8, 1e6) == pytest.approx(10 * US + 7 / 8 * 1e6 / (100 * GB))
    assert p2p_time_s(m, 1e6) == pytest.approx(10 * US + 1e6 / (100 * GB))
    assert alltoall_time_s(m, 1, 1e6) == 0.0


@pytest.mark.parametrize(
    ("gpu", "link", "gpus", "busbw_gb", "source_part"),
    [
        ("H100 SXM", "nvlink4", 8, 480, "nccl-tests#212"),  # NVLS on a full node
        ("H100 SXM", "nvlink4", 4, 370, "nccl-tests#212"),  # ring below 8 GPUs
        ("H200 SXM", "nvlink4", 8, 475, "nccl-tests#272"),
        ("B200", "nvlink5", 8, 830, "nccl#1807"),
        ("A100 80GB SXM", "nvlink3", 8, 200, "nccl-tests#149"),
        ("A100 40GB SXM", "nvlink3", 8, 232.5, "nccl-tests#175"),
        ("H100 PCIe", "nvlink-bridge", 2, 116, "nccl-tests#194"),
        ("RTX PRO 6000 Blackwell", "pcie5", 4, 35, "nccl#1639"),
        ("RTX 5090", "pcie5", 8, 28, "nccl#1639"),
        ("L40S", "pcie4", 4, 20, "nccl-tests#270"),
    ],
)
def test_bus_bandwidth_comes_from_the_matching_measurement(
    gpu: str, link: str, gpus: int, busbw_gb: float, source_part: str
) -> None:
    m = model(gpu, link, gpus)
    assert m.bus_bandwidth_bytes_per_s == pytest.approx(busbw_gb * GB)
    assert source_part in m.source
    assert m.assumption.endswith(".")


def test_unmeasured_link_uses_line_rate_times_measured_efficiency_and_says_so() -> None:
    m = model("T4", "pcie3", 4)
    # PCIe rows: 28/63 (8x RTX 5090) and 20/31.5 (8x RTX 4090) → median 0.54.
    eff = (28 / 63 + 20 / 31.5) / 2
    assert m.bus_bandwidth_bytes_per_s == pytest.approx(15.75 * GB * eff)
    assert "no all-reduce measured on pcie3" in m.assumption
    assert "median busbw/line-rate 0.54 of 2 measured pcie rows" in m.assumption


def test_latency_nvlink_with_and_without_cuda_graphs_and_pcie_by_gpu_count() -> None:
    assert model("H100 SXM", "nvlink4", 2).latency_s == pytest.approx(6 * US)  # nccl#1259
    assert model("H100 SXM", "nvlink4", 4, cuda_graphs=False).latency_s == pytest.approx(16.4 * US)  # DeepEP#303
    pcie8 = model("L40S", "pcie4", 8).latency_s
    assert pcie8 == pytest.approx(42.14 * US)  # nccl#1530, 8x RTX 4090
    assert model("L40S", "pcie4", 4).latency_s == pytest.approx(pcie8 * 2 / 3)  # log2 4 / log2 8
    assert model("L40S", "pcie4", 2).latency_s == pytest.approx(pcie8 / 3)
    gen5 = model("RTX PRO 6000 Blackwell", "pcie5", 2).latency_s
    assert gen5 == pytest.approx(8.72 * US)  # gardenlinux#4556, 2x RTX PRO 6000
    assert model("RTX PRO 6000 Blackwell", "pcie5", 4).latency_s == pytest.approx(2 * gen5)


def test_pcie_all_reduce_costs_several_times_nvlink_at_decode_sizes() -> None:
    message = 8192 * 2  # one token of Llama-3.1-70B in BF16
    pcie = allreduce_time_s(model("L40S", "pcie4", 4), 4, message)
    nvlink = allreduce_time_s(model("H100 SXM", "nvlink4", 4), 4, message)
    assert pcie > 4 * nvlink
    assert 160 * pcie > 4e-3  # 2 all-reduces × 80 layers: over 4 ms per token on PCIe Gen4


def test_across_nodes_uses_the_network_and_needs_it() -> None:
    gpu, nvlink = resolve_gpu("A100 80GB SXM"), resolve_link("nvlink3")
    with pytest.raises(ValueError, match="needs the network link"):
        allreduce_model(gpu, nvlink, 16, cuda_graphs=True, crosses_nodes=True)
    hdr = allreduce_model(
        gpu, nvlink, 16, cuda_graphs=True, network=resolve_link("ib-hdr"), crosses_nodes=True, gpus_per_node=8
    )
    assert hdr.bus_bandwidth_bytes_per_s == pytest.approx(86 * GB)  # nccl-tests#175, 2 nodes x 8 A100
    assert hdr.latency_s == pytest.approx(47 * US)  # nccl#1244, 2 nodes x 8 H20
    ndr = allreduce_model(
        resolve_gpu("H100 SXM"),
        resolve_link("nvlink4"),
        16,
        cuda_graphs=True,
        network=resolve_link("ib-ndr"),
        crosses_nodes=True,
        gpus_per_node=8,
    )
    assert ndr.bus_bandwidth_bytes_per_s < 370 * GB
    assert "one ib-ndr NIC per GPU (8 per node)" in ndr.assumption
    tcp = allreduce_model(
        resolve_gpu("H100 SXM"),
        resolve_link("nvlink4"),
        16,
        cuda_graphs=True,
        network=resolve_link("eth-100g"),
        crosses_nodes=True,
        gpus_per_node=8,
    )
    assert tcp.latency_s == pytest.approx(2 * 47 * US)
    assert math.isfinite(tcp.bus_bandwidth_bytes_per_s)


def _network(gpu: str, intra: str, network: str, per_node: int, nics: int | None) -> CollectiveModel:
    return allreduce_model(resolve_gpu(gpu), resolve_link(intra), 2 * per_node, cuda_graphs=True,
                           network=resolve_link(network), crosses_nodes=True, gpus_per_node=per_node,
                           network_nics=nics)


def _reference_efficiency() -> float:
    """busbw / (4 HDR NICs × 25 GB/s) on the catalog's multi-node A100 rows, the median of them."""
    ratios = sorted(r.bus_bandwidth_bytes_per_s / (4 * 25 * GB) for r in allreduce_measurements()
                    if r.nodes > 1 and r.metric == "busbw" and r.link_id == "ib-hdr")
    return (ratios[0] + ratios[1]) / 2 if len(ratios) == 2 else ratios[len(ratios) // 2]


def test_the_listed_hcas_set_the_bandwidth_between_nodes() -> None:
    """2 NDR HCAs on an 8-GPU node: 2 × 50 GB/s × efficiency, shared by the 8 GPUs, not one NIC per GPU."""
    eff = _reference_efficiency()
    two = _network("H100 SXM", "nvlink4", "ib-ndr", 8, 2)
    assert two.bus_bandwidth_bytes_per_s == pytest.approx(2 * 50 * GB * eff)
    assert (f"bus bandwidth {2 * 50 * eff:.1f} GB/s: 2 ib-ndr HCA ports per node (hardware.ib_hcas, shared by its 8 "
            f"GPUs) × 50.0 GB/s × {eff:.3f} = {2 * 50 * eff:.1f} GB/s") in two.assumption
    per_gpu = _network("H100 SXM", "nvlink4", "ib-ndr", 8, None)
    assert per_gpu.bus_bandwidth_bytes_per_s == pytest.approx(8 * 50 * GB * eff)
    assert per_gpu.bus_bandwidth_bytes_per_s == pytest.approx(4 * two.bus_bandwidth_bytes_per_s)
    # A measured row stands for the NICs it was measured with: listed HCAs are computed instead.
    hdr = _network("A100 80GB SXM", "nvlink3", "ib-hdr", 8, 8)
    assert hdr.bus_bandwidth_bytes_per_s == pytest.approx(8 * 25 * GB * eff)


@pytest.mark.parametrize(("hcas", "network", "expected"), [
    ((), "ib-ndr", None), (("mlx5_0", "mlx5_1"), "ib-ndr", 2), (("mlx5_0:1",), "roce-400g", 1),
    (("^mlx5_2",), "ib-ndr", None), (("mlx5_0", "mlx5_1"), "eth-100g", None)])
def test_network_nics(hcas: tuple[str, ...], network: str, expected: int | None) -> None:
    assert network_nics(resolve_link(network), hcas) == expected


@pytest.mark.parametrize(("gpu", "intra", "network", "per_node", "nics"), [
    ("H100 PCIe", "pcie5", "ib-ndr", 4, None), ("H100 SXM", "nvlink4", "ib-ndr", 8, None),
    ("H100 SXM", "nvlink4", "ib-ndr", 8, 2), ("A100 80GB PCIe", "pcie4", "ib-hdr", 4, None),
    ("L40S", "pcie4", "roce-200g", 4, 4), ("B200", "nvlink5", "ib-xdr", 8, None)])
def test_the_printed_formula_gives_the_printed_bandwidth(gpu: str, intra: str, network: str, per_node: int,
                                                         nics: int | None) -> None:
    """Every figure in the sentence is the one used: the product, and a cap only where it is stated."""
    m = _network(gpu, intra, network, per_node, nics)
    stated = float(m.assumption.split("bus bandwidth ", 1)[1].split(" GB/s")[0])
    assert stated == pytest.approx(m.bus_bandwidth_bytes_per_s / GB, abs=0.05)
    product = re.search(r"(?:\((\d+) per node\)|(\d+) \S+ HCA ports?[^×]*) × ([\d.]+) GB/s × ([\d.]+) = ([\d.]+) GB/s",
                        m.assumption)
    measured = re.search(r"GB/s: (?:([\d.]+) GB/s )?measured on [^,;]+", m.assumption)
    assert product or measured
    raw = float(product[5]) if product else float(measured[1]) if measured and measured[1] else stated
    if product:
        ports = int(product[1] or product[2])
        assert ports == (nics or per_node)
        assert ports * float(product[3]) * float(product[4]) == pytest.approx(raw, abs=0.05)
    if raw > stated + 0.05:
        assert f", capped at {stated:.1f} GB/s, the all-reduce bus bandwidth of each node's own {intra} links" \
            in m.assumption
    else:
        assert "capped" not in m.assumption
