"""The GPU catalog: one frozen :class:`GPU` per accelerator, loaded from ``data/gpus.json``.

Memory is what the driver reports (nvidia-smi MiB × 2**20), not the marketing figure: an
"80GB" H100 shows 81,559 MiB. Tensor throughput is dense (2:4 sparsity halves nothing an LLM
can use) and, on GeForce cards, the FP32-accumulate rate frameworks actually run at.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from functools import cache
from typing import Any, Literal

from attrs import field, frozen

from deployc.catalog.arch import strings
from deployc.catalog.lookup import NameIndex, load_data, sources_of
from deployc.units import GIB, MIB

GB = 10**9

Arch = Literal["volta", "turing", "ampere", "ada", "hopper", "blackwell", "blackwell-ultra", "blackwell-consumer",
               "cdna3", "cdna4"]
ARCHS: tuple[str, ...] = ("volta", "turing", "ampere", "ada", "hopper", "blackwell", "blackwell-ultra",
                          "blackwell-consumer", "cdna3", "cdna4")
TFLOPS_FORMATS: tuple[str, ...] = ("bf16", "fp16", "fp8", "fp4", "int8")


@frozen(kw_only=True)
class NVLinkSpec:
    """A GPU's NVLink: generation, per-GPU per-direction bandwidth, switch or bridge, GPUs per domain."""

    gen: int
    per_direction_bytes_per_s: float
    topology: Literal["nvswitch", "bridge"]
    domain_gpus: int


@frozen(kw_only=True)
class TFlops(Mapping[str, float]):
    """Dense tensor throughput by format (``bf16``, ``fp16``, ``fp8``, ``fp4``, ``int8``), 1e12 ops/s.

    A read-only mapping over sorted pairs, so GPUs stay hashable and comparable.
    """

    pairs: tuple[tuple[str, float], ...] = ()

    def __getitem__(self, key: str) -> float:
        for name, value in self.pairs:
            if name == key:
                return value
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(name for name, _ in self.pairs)

    def __len__(self) -> int:
        return len(self.pairs)


def _tflops(raw: Mapping[str, float]) -> TFlops:
    """Any mapping of format → TFLOPS (plugins may pass a dict) as a :class:`TFlops`."""
    if isinstance(raw, TFlops):
        return raw
    unknown = set(raw) - set(TFLOPS_FORMATS)
    if unknown:
        raise ValueError(f"unknown TFLOPS formats {sorted(unknown)}")
    return TFlops(pairs=tuple(sorted((k, float(v)) for k, v in raw.items())))


@frozen(kw_only=True)
class GPU:
    """One accelerator model with the facts the planner needs, each traceable to ``source``."""

    name: str
    aliases: tuple[str, ...] = field(default=(), converter=strings)
    nvidia_smi_names: tuple[str, ...] = field(default=(), converter=strings)
    vendor: str
    arch: str
    chip: str = ""
    compute_capability: tuple[int, int] | None  # (9, 0) for sm_90; None for AMD
    gfx_target: str | None = None  # AMD ISA, e.g. "gfx942"
    memory_bytes: int  # driver-reported total (nvidia-smi MiB × 2**20; ROCm's GiB on MI300X), else marketing GB as GiB
    memory_type: str = ""
    mem_bandwidth_bytes_per_s: float
    dense_tflops: TFlops = field(factory=TFlops, converter=_tflops)
    supports_bf16: bool
    fp8_native: bool
    fp4_native: bool
    nvlink: NVLinkSpec | None = None
    xgmi_link: str | None = None  # AMD: the Infinity Fabric link id between GPUs (interconnects.json)
    pcie_gen: int | None = None
    tdp_w: float
    # The range ``nvidia-smi -pl`` accepts (its Min/Max Power Limit), where the catalog has a source for it.
    power_limit_min_w: float | None = None
    power_limit_max_w: float | None = None
    form_factor: str = ""
    source: tuple[str, ...] = field(default=(), converter=strings)
    notes: str = ""

    @property
    def is_amd(self) -> bool:
        """An AMD Instinct GPU (ROCm/HIP), as opposed to an NVIDIA (CUDA) one."""
        return self.vendor.upper() == "AMD"

    @property
    def names(self) -> tuple[str, ...]:
        """Every name this GPU answers to: its name, aliases and nvidia-smi product names."""
        return (self.name, *self.aliases, *self.nvidia_smi_names)


def _nvlink(raw: Mapping[str, Any]) -> NVLinkSpec:
    bandwidth = float(raw["per_direction_gbytes_per_s"]) * GB
    return NVLinkSpec(gen=int(raw["gen"]), per_direction_bytes_per_s=bandwidth, topology=raw["topology"],
                      domain_gpus=int(raw["domain_gpus"]))


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def gpu_from_entry(entry: Mapping[str, Any]) -> GPU:
    """Build a :class:`GPU` from one ``gpus.json`` entry (units converted to bytes and B/s)."""
    arch = entry["arch"]
    if arch not in ARCHS:
        raise ValueError(f"{entry['name']}: unknown arch {arch!r}")
    mib = entry.get("nvidia_smi_total_mib")
    driver_gib = entry.get("driver_total_gib")  # AMD: the total the ROCm runtime reports, in GiB
    memory = mib * MIB if mib else int(driver_gib * GIB) if driver_gib else int(entry["memory_gb_marketing"] * GIB)
    nvlink = entry.get("nvlink")
    cc = entry.get("compute_capability")
    notes = " ".join(n for n in (entry.get("notes", ""), entry.get("memory_note", "")) if n)
    limits = entry.get("power_limit_w") or {}
    return GPU(
        name=entry["name"], aliases=tuple(entry.get("aliases", ())),
        nvidia_smi_names=tuple(entry.get("nvidia_smi_names", ())), vendor=entry["vendor"], arch=arch,
        chip=entry.get("chip", ""), compute_capability=(int(cc[0]), int(cc[1])) if cc else None,
        gfx_target=entry.get("gfx_target"), memory_bytes=memory, memory_type=entry.get("memory_type", ""),
        mem_bandwidth_bytes_per_s=float(entry["mem_bandwidth_gbytes_per_s"]) * GB,
        dense_tflops=_tflops(entry.get("dense_tflops", {})), supports_bf16=bool(entry["supports_bf16"]),
        fp8_native=bool(entry["fp8_native"]), fp4_native=bool(entry["fp4_native"]),
        nvlink=None if nvlink is None else _nvlink(nvlink), xgmi_link=entry.get("xgmi_link"),
        pcie_gen=entry.get("pcie_gen"), tdp_w=float(entry["tdp_w"]), form_factor=entry.get("form_factor", ""),
        power_limit_min_w=_optional_float(limits.get("min")), power_limit_max_w=_optional_float(limits.get("max")),
        source=sources_of(entry), notes=notes,
    )


@cache
def load_gpus() -> tuple[GPU, ...]:
    """Every GPU in the built-in catalog, in catalog order."""
    return tuple(gpu_from_entry(e) for e in load_data("gpus.json")["gpus"])


@cache
def _builtin_index() -> NameIndex[GPU]:
    return NameIndex("GPU", load_gpus(), lambda g: g.names)


def resolve_gpu(name: str, extra: Iterable[GPU] = ()) -> GPU:
    """The GPU called ``name``: its catalog name, an alias or an nvidia-smi product name.

    Case, spaces, dashes, underscores and a leading vendor word ("NVIDIA", "Tesla", "GeForce")
    do not matter. GPUs contributed by plugins (``extra``) are searched after the built-ins.
    Raises :class:`~deployc.catalog.lookup.CatalogLookupError` with suggestions otherwise.
    """
    extra = tuple(extra)
    if not extra:
        return _builtin_index().get(name)
    return NameIndex("GPU", (*load_gpus(), *extra), lambda g: g.names).get(name)


def arch_of_compute_capability(major: int, minor: int) -> str | None:
    """The catalog architecture of an NVIDIA compute capability (None for one deployc does not plan)."""
    if (major, minor) == (7, 5):
        return "turing"
    if major == 8:
        return "ada" if minor == 9 else "ampere"
    return {9: "hopper", 10: "blackwell-ultra" if minor == 3 else "blackwell", 12: "blackwell-consumer"}.get(major)


def custom_gpu(name: str, *, memory_gib: float, bandwidth_gb_s: float, bf16_tflops: float, fp8_tflops: float | None,
               compute_capability: tuple[int, int], tdp_w: float | None, pcie_gen: int, source: str) -> GPU:
    """A GPU described in a spec (``[hardware.custom]``): an NVIDIA PCIe card with the rates given.

    BF16 and FP8 follow the compute capability (BF16 from sm_80, FP8 from sm_89, FP4 from sm_100);
    the FP16 tensor rate is the BF16 one, as on every NVIDIA tensor core since Ampere.
    """
    major, minor = compute_capability
    arch = arch_of_compute_capability(major, minor)
    if arch is None:
        raise ValueError(f"compute capability {major}.{minor} is not an architecture deployc plans")
    bf16 = (major, minor) >= (8, 0)
    rates = {"fp16": bf16_tflops, **({"bf16": bf16_tflops} if bf16 else {}),
             **({"fp8": fp8_tflops} if fp8_tflops is not None else {})}
    return GPU(name=name, vendor="NVIDIA", arch=arch, compute_capability=(major, minor),
               memory_bytes=int(memory_gib * GIB), mem_bandwidth_bytes_per_s=bandwidth_gb_s * GB,
               dense_tflops=_tflops(rates), supports_bf16=bf16, fp8_native=(major, minor) >= (8, 9),
               fp4_native=major >= 10, pcie_gen=pcie_gen, tdp_w=tdp_w or 0.0,
               form_factor="described in the spec ([hardware.custom])", source=(source,))
