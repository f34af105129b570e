"""Resolving the hardware a spec names: links on PCIe cards, power limits, custom GPUs, did-you-mean."""

from __future__ import annotations

from pathlib import Path

import pytest

from deployc.api import resolve_spec, validate
from deployc.catalog import custom_gpu, resolve_gpu
from deployc.diagnostics import SpecError
from deployc.units import GIB, MIB

BASE = """\
version = 1
name = "hw"
[model]
id = "Llama-3.1-8B"
[hardware]
gpu = "{gpu}"
gpus_per_node = 2
{extra}
[workload]
prompt_tokens = {{ mean = 1000 }}
output_tokens = {{ mean = 300 }}
concurrency = 16
{tail}
"""


def spec(tmp_path: Path, gpu: str, extra: str = "", tail: str = "") -> Path:
    path = tmp_path / "spec.toml"
    path.write_text(BASE.format(gpu=gpu, extra=extra, tail=tail))
    return path


@pytest.mark.parametrize(("gpu", "link"), [
    ("H100 PCIe", "pcie5"), ("A100 80GB PCIe", "pcie4"), ("H100 NVL", "pcie5"), ("RTX 3090", "pcie4"),
    ("H100 SXM", "nvlink4"), ("A100 80GB SXM", "nvlink3")])
def test_auto_interconnect_is_what_the_card_has_without_a_bridge(tmp_path: Path, gpu: str, link: str) -> None:
    _, target, _ = resolve_spec(spec(tmp_path, gpu))
    assert target.intra_node_link.id == link


def test_a_bridge_is_planned_when_the_spec_states_it(tmp_path: Path) -> None:
    _, target, _ = resolve_spec(spec(tmp_path, "H100 PCIe", 'interconnect = "nvlink-bridge"'))
    assert target.intra_node_link.id == "nvlink-bridge"


def test_a_power_limit_outside_the_boards_range_is_refused(tmp_path: Path) -> None:
    (diag,) = validate(spec(tmp_path, "T4", tail="[environment]\npower_limit_w = 55"))
    assert (diag.rule, diag.key_path, diag.message) == (
        "DPC220", "environment.power_limit_w",
        "T4 accepts power limits of 60-70 W (nvidia-smi Min/Max Power Limit), not 55 W")
    assert validate(spec(tmp_path, "T4", tail="[environment]\npower_limit_w = 65")) == []


def test_did_you_mean_states_the_other_cards_memory(tmp_path: Path) -> None:
    (diag,) = validate(spec(tmp_path, "RTX 4070"))
    assert diag.rule == "DPC101"
    suggested = diag.hint.split("'")[1]  # type: ignore[union-attr]
    close = resolve_gpu(suggested)
    assert diag.hint == (f"did you mean {suggested!r} ({close.memory_bytes / GIB:.1f} GiB, "
                         f"{close.mem_bandwidth_bytes_per_s / 1e9:,.0f} GB/s)? Only if that is your card: describe "
                         "another in [hardware.custom]")


CUSTOM = """[hardware.custom]
memory_gib = 11.6
bandwidth_gb_s = 504.2
bf16_tflops = 46.0
fp8_tflops = 92.0
compute_capability = "8.9"
tdp_w = 200
"""


def test_a_custom_gpu_is_planned_from_the_facts_given(tmp_path: Path) -> None:
    _, target, _ = resolve_spec(spec(tmp_path, "RTX 4070", CUSTOM))
    gpu = target.gpu
    assert (gpu.name, gpu.arch, gpu.compute_capability, gpu.memory_bytes) == ("RTX 4070", "ada", (8, 9),
                                                                              int(11.6 * GIB))
    assert dict(gpu.dense_tflops) == {"bf16": 46.0, "fp16": 46.0, "fp8": 92.0}
    assert gpu.supports_bf16 and gpu.fp8_native and not gpu.fp4_native
    assert target.intra_node_link.id == "pcie4"
    assert gpu.source == ("[hardware.custom] in " + str(tmp_path / "spec.toml"),)


@pytest.mark.parametrize(("gpu", "custom", "message"), [
    ("RTX 4090", CUSTOM, "the catalog has RTX 4090; [hardware.custom] describes only a GPU it lacks"),
    ("Old Card", CUSTOM.replace('"8.9"', '"8.6"'),
     "compute capability 8.6 has no FP8 tensor cores (FP8 needs 8.9 or newer)"),
    ("Odd Card", CUSTOM.replace("fp8_tflops = 92.0", "fp8_tflops = 23.0"),
     "fp8_tflops 23 is below bf16_tflops 46: FP8 tensor cores run at twice the BF16 rate"),
])
def test_an_inconsistent_custom_gpu_is_a_located_error(tmp_path: Path, gpu: str, custom: str, message: str) -> None:
    with pytest.raises(SpecError) as exc:
        resolve_spec(spec(tmp_path, gpu, custom))
    (diag,) = exc.value.diagnostics
    assert (diag.rule, diag.message) == ("DPC106", message)
    assert diag.line is not None


def test_the_custom_table_is_schema_checked(tmp_path: Path) -> None:
    diags = validate(spec(tmp_path, "New Card", CUSTOM.replace('"8.9"', '"7.0"')))
    assert [d.key_path for d in diags] == ["hardware.custom.compute_capability"]


def test_custom_gpu_precision_follows_the_compute_capability() -> None:
    turing = custom_gpu("X", memory_gib=16, bandwidth_gb_s=300, bf16_tflops=65, fp8_tflops=None,
                        compute_capability=(7, 5), tdp_w=None, pcie_gen=3, source="test")
    assert (turing.arch, turing.supports_bf16, dict(turing.dense_tflops), turing.tdp_w) == (
        "turing", False, {"fp16": 65.0}, 0.0)
    blackwell = custom_gpu("Y", memory_gib=32, bandwidth_gb_s=1792, bf16_tflops=200, fp8_tflops=400,
                           compute_capability=(12, 0), tdp_w=575, pcie_gen=5, source="test")
    assert (blackwell.arch, blackwell.fp4_native) == ("blackwell-consumer", True)
    assert blackwell.memory_bytes == 32 * 1024 * MIB
