"""``deployc catalog gpus|models`` rows."""

from __future__ import annotations

from typing import Any

from deployc.catalog import GPU, load_gpus, load_models, param_counts
from deployc.plugins import PluginRegistry, default_registry


def serving_backends(registry: PluginRegistry, gpu: GPU) -> str:
    """The installed backends whose engine runs on this GPU's vendor (BackendInfo.gpu_vendors), comma-separated.

    A backend can still refuse a precision on a GPU it serves (its capability hook says which and why).
    """
    vendor = gpu.vendor.lower()
    return ", ".join(name for name in registry.names()
                     if vendor in (v.lower() for v in registry.info(name).gpu_vendors)) or "none"


def catalog_rows(kind: str) -> list[dict[str, Any]]:
    """One row per GPU or model (built-in and plugin-contributed), sorted by name."""
    registry = default_registry()
    if kind == "gpus":
        gpus = [*load_gpus(), *registry.catalog_gpus()]
        return [{"name": g.name, "memory_gib": round(g.memory_bytes / (1 << 30), 2),
                 "bandwidth_gb_s": round(g.mem_bandwidth_bytes_per_s / 1e9),
                 "bf16_tflops": dict(g.dense_tflops).get("bf16") or dict(g.dense_tflops).get("fp16"),
                 "arch": g.arch, "backends": serving_backends(registry, g), "aliases": ", ".join(g.aliases)}
                for g in sorted(gpus, key=lambda g: g.name)]
    models = [*load_models(), *registry.catalog_models()]
    rows = []
    for m in sorted(models, key=lambda m: m.name):
        counts = param_counts(m.arch)
        rows.append({"name": m.name, "family": m.arch.family, "params_b": round(counts.total / 1e9, 2),
                     "active_b": round(counts.active / 1e9, 2), "max_context": m.arch.max_position_embeddings,
                     "aliases": ", ".join(m.aliases)})
    return rows
