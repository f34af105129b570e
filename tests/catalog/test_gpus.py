"""The GPU catalog: every entry sourced, driver-reported memory, dense TFLOPS, names as tools print them."""

from __future__ import annotations

import attrs
import pytest

from deployc.catalog import GPU, CatalogLookupError, load_gpus, resolve_gpu
from deployc.catalog.gpus import ARCHS, GB
from deployc.catalog.lookup import normalise
from deployc.units import GIB, MIB

GPUS = load_gpus()
REFERENCE_GPUS = (
    "T4", "L4", "L40S", "A10G", "A10", "RTX 3090", "RTX 4090", "RTX 5090", "RTX 6000 Ada", "RTX PRO 6000 Blackwell",
    "A100 40GB PCIe", "A100 40GB SXM", "A100 80GB PCIe", "A100 80GB SXM", "H100 PCIe", "H100 SXM", "H100 NVL",
    "H200 SXM", "H200 NVL", "B200", "GB200", "B300", "MI300X", "MI325X", "MI355X",
)


def gpu(name: str) -> GPU:
    return resolve_gpu(name)


def test_catalog_has_every_reference_gpu() -> None:
    assert {g.name for g in GPUS} >= set(REFERENCE_GPUS)
    assert len(GPUS) >= 25


@pytest.mark.parametrize("entry", GPUS, ids=lambda g: g.name)
def test_every_gpu_is_sourced_and_consistent(entry: GPU) -> None:
    assert entry.source, "every entry keeps its source"
    assert entry.arch in ARCHS
    assert entry.memory_bytes > 10 * GIB
    assert entry.mem_bandwidth_bytes_per_s >= 300 * GB
    assert entry.tdp_w > 0
    if entry.vendor == "NVIDIA":
        assert entry.compute_capability is not None and entry.gfx_target is None
    else:
        assert entry.compute_capability is None and entry.gfx_target is not None and entry.gfx_target.startswith("gfx")
    if "fp4" in entry.dense_tflops:
        assert entry.fp4_native
    if "fp8" in entry.dense_tflops and entry.vendor == "NVIDIA":
        assert entry.fp8_native
    if not entry.supports_bf16:
        assert "bf16" not in entry.dense_tflops


def test_no_name_resolves_to_two_gpus() -> None:
    owner: dict[str, str] = {}
    for g in GPUS:
        for name in g.names:
            assert owner.setdefault(normalise(name), g.name) == g.name, name


@pytest.mark.parametrize(("name", "expected"), [
    ("NVIDIA H100 80GB HBM3", "H100 SXM"),
    ("Tesla T4", "T4"),
    ("NVIDIA A100-SXM4-80GB", "A100 80GB SXM"),
    ("NVIDIA A100-PCIE-40GB", "A100 40GB PCIe"),
    ("NVIDIA A100 80GB PCIe", "A100 80GB PCIe"),
    ("NVIDIA GeForce RTX 4090", "RTX 4090"),
    ("NVIDIA RTX PRO 6000 Blackwell Workstation Edition", "RTX PRO 6000 Blackwell"),
    ("RTX PRO 6000 Blackwell (Workstation)", "RTX PRO 6000 Blackwell"),
    ("NVIDIA H200", "H200 SXM"),
    ("NVIDIA L4", "L4"),
    ("NVIDIA B300", "B300"),
    ("GB200 (per GPU)", "GB200"),
    ("AMD Instinct MI300X", "MI300X"),
    ("h100-sxm", "H100 SXM"),
    ("H100_sxm", "H100 SXM"),
    ("h100", "H100 SXM"),
])
def test_gpus_resolve_by_name_alias_and_nvidia_smi_name(name: str, expected: str) -> None:
    assert resolve_gpu(name).name == expected


@pytest.mark.parametrize("smi", [(g, n) for g in GPUS for n in g.nvidia_smi_names], ids=lambda p: p[1])
def test_every_nvidia_smi_name_resolves_to_its_gpu(smi: tuple[GPU, str]) -> None:
    entry, name = smi
    assert resolve_gpu(name) is entry


def test_memory_is_what_the_driver_reports_not_the_marketing_figure() -> None:
    assert gpu("H100 SXM").memory_bytes == 81_559 * MIB  # "80GB" = 79.65 GiB
    assert gpu("H200 SXM").memory_bytes == 143_771 * MIB
    assert gpu("B200").memory_bytes == 183_359 * MIB  # "192GB" physical, 180 GB usable
    assert gpu("T4").memory_bytes == 15_360 * MIB  # ECC on, the T4 default
    assert gpu("L4").memory_bytes == 23_034 * MIB
    assert gpu("MI300X").memory_bytes == int(191.98 * GIB)  # what ROCm reports (vllm#53961), not "192 GB"
    assert "ROCm runtime reports" in gpu("MI300X").notes


def test_tensor_throughput_is_dense_never_sparse() -> None:
    h100 = gpu("H100 SXM").dense_tflops
    assert (h100["bf16"], h100["fp8"]) == (989, 1979)  # datasheet 1979 / 3958 are 2:4 sparse
    assert gpu("MI300X").dense_tflops["bf16"] == 1307.4  # not codesota's "2,615 dense"
    assert gpu("L40S").dense_tflops["bf16"] == 362.05


def test_geforce_bf16_is_the_fp32_accumulate_rate() -> None:
    assert gpu("RTX 4090").dense_tflops["bf16"] == 165.2
    assert gpu("RTX 3090").dense_tflops["bf16"] == 71
    assert gpu("RTX 6000 Ada").dense_tflops["bf16"] == 364.2  # pro cards run full rate


def test_precision_support_follows_the_architecture() -> None:
    t4 = gpu("T4")
    assert not t4.supports_bf16 and not t4.fp8_native and t4.compute_capability == (7, 5)
    assert not gpu("A100 80GB SXM").fp8_native
    assert gpu("L4").fp8_native and not gpu("L4").fp4_native
    assert gpu("B200").fp4_native and gpu("B200").compute_capability == (10, 0)
    assert gpu("B300").compute_capability == (10, 3)
    assert gpu("RTX 5090").compute_capability == (12, 0) and gpu("RTX 5090").arch == "blackwell-consumer"
    assert gpu("MI355X").fp4_native and gpu("MI355X").gfx_target == "gfx950"


def test_nvlink_is_per_gpu_per_direction() -> None:
    h100 = gpu("H100 SXM").nvlink
    assert h100 is not None
    assert (h100.gen, h100.topology, h100.domain_gpus, h100.per_direction_bytes_per_s) == (4, "nvswitch", 8, 450 * GB)
    bridge = gpu("A100 40GB PCIe").nvlink
    assert bridge is not None and (bridge.topology, bridge.domain_gpus, bridge.per_direction_bytes_per_s) == (
        "bridge", 2, 300 * GB)
    rtx3090 = gpu("RTX 3090").nvlink
    assert rtx3090 is not None and rtx3090.per_direction_bytes_per_s == 56.25 * GB
    gb200 = gpu("GB200").nvlink
    assert gb200 is not None and gb200.domain_gpus == 72
    assert gpu("L40S").nvlink is None and gpu("MI300X").nvlink is None
    pcie = [gpu(name).pcie_gen for name in ("T4", "H100 SXM", "B200", "GB200")]
    assert pcie == [3, 5, 6, None]


def test_unknown_gpu_suggests_the_closest_name() -> None:
    with pytest.raises(CatalogLookupError) as exc:
        resolve_gpu("H10 SXM")
    assert exc.value.kind == "GPU"
    assert exc.value.suggestions[0] == "H100 SXM"
    assert str(exc.value).startswith("unknown GPU 'H10 SXM'; did you mean 'H100 SXM'")


def test_an_ambiguous_name_lists_the_variants() -> None:
    with pytest.raises(CatalogLookupError) as exc:
        resolve_gpu("A100")
    assert all(s.startswith("A100") for s in exc.value.suggestions)
    assert len(exc.value.suggestions) == 3


def test_plugin_gpus_resolve_after_the_builtins() -> None:
    custom = attrs.evolve(gpu("H100 SXM"), name="H100 SXM (custom cloud)", aliases=("acme-h100",), nvidia_smi_names=())
    assert resolve_gpu("acme-h100", extra=[custom]) is custom
    clash = attrs.evolve(custom, name="H100 SXM")
    assert resolve_gpu("H100 SXM", extra=[clash]) is gpu("H100 SXM")


def test_tflops_is_a_read_only_mapping() -> None:
    tflops = gpu("B200").dense_tflops
    assert dict(tflops) == {"bf16": 2250.0, "fp16": 2250.0, "fp4": 9000.0, "fp8": 4500.0, "int8": 4500.0}
    assert len(tflops) == 5 and "fp4" in tflops and tflops.get("tf32") is None
    with pytest.raises(KeyError):
        tflops["tf32"]
    assert hash(gpu("B200")) == hash(gpu("B200"))


def test_plugin_gpus_may_pass_plain_lists_and_dicts() -> None:
    custom = GPU(name="X1", aliases=["x-1"], vendor="NVIDIA", arch="hopper", compute_capability=(9, 0),
                 memory_bytes=80 * GIB, mem_bandwidth_bytes_per_s=3e12, dense_tflops={"bf16": 100},
                 supports_bf16=True, fp8_native=True, fp4_native=False, tdp_w=500, source=["vendor sheet"])
    assert custom.aliases == ("x-1",) and custom.source == ("vendor sheet",)
    assert custom.dense_tflops["bf16"] == 100.0 and hash(custom) == hash(attrs.evolve(custom))
    with pytest.raises(ValueError, match="unknown TFLOPS formats"):
        attrs.evolve(custom, dense_tflops={"tf32": 1.0})


def test_the_a10g_has_dense_rates_with_their_source() -> None:
    a10g = gpu("A10G")
    assert dict(a10g.dense_tflops) == {"bf16": 70, "fp16": 70, "int8": 140}
    assert any(s.startswith("compute: https://www.baseten.co/") for s in a10g.source)


@pytest.mark.parametrize(("name", "mib", "bandwidth", "bf16", "fp8", "cc"), [
    ("V100", 32510, 900, None, None, (7, 0)),  # FP16 only: 112 TFLOPS
    ("A30", 24576, 933, 165, None, (8, 0)),
    ("L40", 46068, 864, 181.05, 362.1, (8, 9)),
    ("RTX A6000", 49140, 768, 154.8, None, (8, 6)),
    ("RTX 4080", 16376, 716.8, 97.5, 194.9, (8, 9)),
    ("H20", 97871, 4000, 148, 296, (9, 0)),
])
def test_added_gpus_carry_their_spec_sheet_facts(name: str, mib: int, bandwidth: float, bf16: float | None,
                                                 fp8: float | None, cc: tuple[int, int]) -> None:
    entry = gpu(name)
    assert entry.memory_bytes == mib * MIB
    assert entry.mem_bandwidth_bytes_per_s == bandwidth * GB
    assert entry.dense_tflops.get("bf16") == bf16 and entry.dense_tflops.get("fp8") == fp8
    assert entry.compute_capability == cc
    assert any(s.startswith("compute_memory_tdp: ") for s in entry.source)
    assert any(s.startswith("nvidia_smi: ") for s in entry.source)


def test_power_limits_are_sourced_and_bracket_the_tdp() -> None:
    limited = [g for g in GPUS if g.power_limit_min_w is not None]
    assert {g.name for g in limited} >= {"T4", "L4", "A100 80GB SXM", "H100 SXM"}
    for entry in limited:
        assert entry.power_limit_max_w is not None
        assert entry.power_limit_min_w < entry.tdp_w <= entry.power_limit_max_w  # type: ignore[operator]
        assert any(s.startswith("power_limits: ") for s in entry.source)
    assert (gpu("T4").power_limit_min_w, gpu("T4").power_limit_max_w) == (60, 70)
