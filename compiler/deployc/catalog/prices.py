"""On-demand list prices per GPU-hour, dated and sourced (``catalog/data/gpu_prices.json``).

Prices are what a public cloud lists for on-demand instances, divided by the GPUs in the
instance, on the date given; reserved, spot and negotiated prices are lower. ``slo.gpu_hour_usd``
in a spec always wins.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from attrs import frozen

PRICES_FILE = "gpu_prices.json"


@frozen(kw_only=True)
class GpuPrice:
    """USD per GPU-hour and where the figure comes from."""

    usd_per_gpu_hour: float
    source: str


def _entries() -> list[dict[str, Any]]:
    path = resources.files("deployc.catalog").joinpath("data", PRICES_FILE)
    if not path.is_file():
        return []
    raw = json.loads(path.read_text(encoding="utf-8"))
    rows = raw.get("prices", []) if isinstance(raw, dict) else raw
    return [r for r in rows if isinstance(r, dict)]


@cache
def catalog_prices() -> dict[str, GpuPrice]:
    """Catalog GPU name → its listed on-demand price (the row marked ``preferred``, else the first)."""
    out: dict[str, GpuPrice] = {}
    for row in sorted(_entries(), key=lambda r: not r.get("preferred")):
        name = str(row.get("gpu", ""))
        if not name or name in out or row.get("usd_per_gpu_hour") is None:
            continue
        where = ", ".join(str(row[k]) for k in ("provider", "instance_type", "date") if row.get(k))
        out[name] = GpuPrice(usd_per_gpu_hour=float(row["usd_per_gpu_hour"]),
                             source=f"on-demand list price ({where}; {row.get('source', 'no source')})")
    return out


def gpu_price(gpu_name: str, spec_usd_per_gpu_hour: float | None) -> GpuPrice | None:
    """The price to plan with: the spec's, else the catalog's, else none."""
    if spec_usd_per_gpu_hour is not None:
        return GpuPrice(usd_per_gpu_hour=spec_usd_per_gpu_hour, source="the spec (slo.gpu_hour_usd)")
    return catalog_prices().get(gpu_name)
