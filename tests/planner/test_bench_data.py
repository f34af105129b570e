"""The sourced data files for the serving simulation: bench/data/load_cases.json and the GPU price list."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from deployc.catalog import load_gpus, resolve_gpu, resolve_model

ROOT = Path(__file__).resolve().parents[2]
LOAD_CASES = ROOT / "bench" / "data" / "load_cases.json"
METRICS = ("ttft_p50_ms", "ttft_mean_ms", "ttft_p95_ms", "tpot_p50_ms", "tpot_mean_ms", "tpot_p95_ms",
           "itl_p50_ms", "output_throughput_tokens_per_s", "request_throughput_per_s")


def _load_cases() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(LOAD_CASES.read_text())
    return rows


def _prices() -> dict[str, Any]:
    text = resources.files("deployc.catalog").joinpath("data/gpu_prices.json").read_text()
    doc: dict[str, Any] = json.loads(text)
    return doc


def test_load_cases_are_complete_and_resolvable() -> None:
    rows = _load_cases()
    assert len(rows) >= 25
    assert len({r["id"] for r in rows}) == len(rows)
    for r in rows:
        assert resolve_gpu(r["gpu"]).name == r["gpu"], r["id"]
        resolve_model(r["model"], base_dir=ROOT / "bench" / "data")
        assert r["source"].startswith("https://"), r["id"]
        assert r["notes"] and r["locator"] and r["confidence"], r["id"]
        assert r["gpu_count"] >= r["tp"] * r["pp"] >= 1, r["id"]
        assert r["arrival"] in {"closed_loop", "burst", "poisson"}, r["id"]
        assert (r["concurrency"] or 0) > 1 or r["request_rate_per_s"] or r["arrival"] == "burst", r["id"]
        assert any(r[k] is not None for k in METRICS), r["id"]
        assert isinstance(r["holdout"], bool)
        assert not (r["holdout"] and r["calibration_rows"]), "a held-out row must stay out of calibration"


def test_load_cases_hold_out_about_a_third() -> None:
    rows = _load_cases()
    held = sum(r["holdout"] for r in rows)
    assert 0.25 <= held / len(rows) <= 0.4


def test_load_case_calibration_links_name_calibration_rows() -> None:
    text = resources.files("deployc.planner").joinpath("data/calibration.json").read_text()
    names = {m["id"] for m in json.loads(text)["rows"]}
    for r in _load_cases():
        assert set(r["calibration_rows"]) <= names, r["id"]


def test_gpu_prices_are_dated_sourced_and_use_catalog_names() -> None:
    names = {g.name for g in load_gpus()}
    rows = _prices()["prices"]
    preferred: dict[str, int] = {}
    for r in rows:
        assert r["gpu"] in names, r["gpu"]
        assert 0.1 < r["usd_per_gpu_hour"] < 20, r
        assert r["provider"] and r["instance_type"] and r["source"]
        assert r["date"] is None or re.fullmatch(r"\d{4}-\d{2}-\d{2}", r["date"]), r
        preferred[r["gpu"]] = preferred.get(r["gpu"], 0) + bool(r["preferred"])
    assert all(n == 1 for n in preferred.values()), preferred
    assert {"H100 SXM", "H200 SXM", "A100 80GB SXM", "A100 40GB SXM", "L40S", "L4", "A10G", "T4", "RTX 4090",
            "B200", "MI300X"} <= set(preferred)


@pytest.mark.parametrize("gpu", ["H100 SXM", "L4"])
def test_preferred_price_lookup_example(gpu: str) -> None:
    [row] = [r for r in _prices()["prices"] if r["gpu"] == gpu and r["preferred"]]
    assert row["usd_per_gpu_hour"] > 0
