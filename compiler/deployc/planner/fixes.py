"""Ranked fixes for a plan that does not fit: each fix is re-planned, so its numbers are real.

Cheapest first: FP8 KV cache (small quality cost, no new checkpoint), FP8 weights (one flag),
4-bit weights (needs a pre-quantized checkpoint), more GPUs (money), shorter requests (changes
the product).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from attrs import evolve

from deployc.catalog import resolve_link
from deployc.catalog.arch import CheckpointQuant
from deployc.planner.models import BackendModels
from deployc.planner.precision import WeightChoice
from deployc.units import GIB

if TYPE_CHECKING:
    from deployc.planner.evaluate import Candidate
    from deployc.planner.search import Search

MAX_GPUS_TRIED = 64
# A single-node spec names no network; the "more nodes" fix is sized over the fabric the spec's own
# DPC206 hint suggests (docs/spec.md `hardware.network`), and the fix says so.
ASSUMED_NETWORK = "ib-ndr"
# AutoAWQ's default quant_config (w_bit 4, q_group_size 128, zero_point true, version gemm): what an AWQ
# checkpoint of the model most likely is.
AUTOAWQ_CHECKPOINT = CheckpointQuant(method="awq", bits=4, group_size=128, zero_point=True, scheme="awq gemm")

Searcher = Callable[["Candidate", BackendModels], "Search"]


def _outcome(search: Search) -> tuple[bool, str]:
    chosen = search.chosen()
    if chosen is not None:
        return True, (f"fits with {chosen.evaluation.layout.label()}, KV capacity "
                      f"{chosen.memory.kv_capacity_tokens:,} tokens per replica")
    closest = search.closest()
    short = closest.evaluation.shortfall_bytes / GIB if closest else float("nan")
    return False, f"still {short:.1f} GiB short per GPU"


def _supported(models: BackendModels, c: Candidate, weights: str, kv: str) -> bool:
    return models.capability(c.target, weights, kv).supported


def ranked_fixes(search: Search, models: BackendModels, searcher: Searcher) -> list[str]:
    """Each applicable fix with its outcome; the ones that make it fit come first, cheapest first."""
    c = search.candidate
    tried: list[tuple[bool, int, str]] = []

    def attempt(rank: int, label: str, candidate: Candidate) -> None:
        fits, text = _outcome(searcher(candidate, models))
        tried.append((not fits, rank, f"{label}: {text}"))

    if c.kv_dtype != "fp8" and _supported(models, c, c.weights.weights_format, "fp8"):
        attempt(0, 'kv_cache_dtype = "fp8"', evolve(c, kv_dtype="fp8"))
    if c.weights.weights_format in ("bf16", "fp16") and _supported(models, c, "fp8", c.kv_dtype):
        attempt(1, 'quantization = "fp8"', evolve(c, weights=WeightChoice(
            weights_format="fp8", quantization_flag="fp8", from_checkpoint=False)))
    if c.weights.weights_format in ("bf16", "fp16", "fp8") and _supported(models, c, "awq", c.kv_dtype):
        # Another checkpoint: the model as AutoAWQ writes it (the catalog's own checkpoint may be quantized
        # already, e.g. DeepSeek-R1 in FP8, and weights follow the checkpoint's format).
        awq_model = evolve(c.target.model, checkpoint_quant=AUTOAWQ_CHECKPOINT)
        attempt(2, "a 4-bit AWQ checkpoint (model.config pointing at it)", evolve(
            c, target=evolve(c.target, model=awq_model),
            weights=WeightChoice(weights_format="awq", quantization_flag=None, from_checkpoint=True)))
    gpus_per_node, nodes = c.gpus_per_node, c.nodes
    while gpus_per_node * nodes < MAX_GPUS_TRIED:
        if gpus_per_node < 8:
            gpus_per_node *= 2
        else:
            nodes *= 2
        target, assumed = c.target, ""
        if nodes > 1 and target.network is None:
            target = evolve(target, network=resolve_link(ASSUMED_NETWORK))
            assumed = f"; set hardware.network, sized here over {ASSUMED_NETWORK}"
        bigger = searcher(evolve(c, target=target, gpus_per_node=gpus_per_node, nodes=nodes), models)
        if bigger.chosen() is not None:
            label = f"{gpus_per_node * nodes} × {c.target.gpu.name}" + (f" ({nodes} nodes{assumed})"
                                                                         if nodes > 1 else "")
            tried.append((False, 3, f"{label}: {_outcome(bigger)[1]}"))
            break
    closest = search.closest()
    if closest is not None and closest.memory.kv_capacity_tokens > 0:
        tried.append((False, 4, f"requests of at most {closest.memory.kv_capacity_tokens:,} tokens (prompt + "
                                "output) fit the KV cache as planned"))
    return [text for _, _, text in sorted(tried)]
