"""An FP8 KV cache chosen for the load: when the spec leaves the KV dtype to deployc and the plan whose cache is at
the activation dtype fits the memory but misses the SLO, the same search at FP8 is simulated, and kept when it is
clearly better: it serves, keeps up where the other cannot, or misses by at least a tenth less.

FP8 holds twice the tokens in the same bytes, and a decode step reads half the KV bytes. A cache that holds the
weights' leftover is not one that holds the load: gpt-oss-120b on one H100 at 64 users preempted 580 times at 96%
KV use and missed TTFT p99 by 7×, while FP8 KV served (new-user trial). Nor is the shortage always visible in the
chosen plan: Qwen2.5-14B on 2 × L40S at 3 requests/s chose TP2 with its BF16 cache half used and was 1.25× over
capacity, while at FP8 two TP1 replicas fit and kept up (the fix list said so; the plan did not choose it).

A screen or a quick (what-if) plan tries FP8 only when its cache is short for the load (decode preempted, or the
cache filled at its peak): trying every screen that misses cost ``deployc size`` ~20% more simulation. A full plan
tries it whenever it misses, so what a plan (and the full search confirming a fix or a sized deployment) decides
does not hang on that sign. A plan and the fixes it offers choose the KV dtype by this same rule, so a fix says what
planning the fixed spec gives.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from attrs import evolve

from deployc.planner.decisions import Alternative
from deployc.planner.evaluate import Candidate
from deployc.planner.load import screening_active
from deployc.planner.precision import kv_dtype_candidates
from deployc.planner.search import Search, search_layouts
from deployc.planner.serving.result import ServingResult
from deployc.planner.serving.verdict import miss_rank

if TYPE_CHECKING:
    from deployc.planner.fixes import Searcher
    from deployc.planner.models import BackendModels


# vLLM's docs (features/quantization/quantized_kvcache): without calibration every KV scale is 1.0, and calibrated
# scales (llm-compressor) are the recommended path; SGLang's (advanced_features/quantized_kv_cache): "may introduce
# minimal accuracy degradation depending on the quantization format".
FP8_KV_ACCURACY = ("An FP8 cache can cost some accuracy (its scales are 1.0 without a calibrated checkpoint): "
                   'evaluate it on your tasks, or set kv_cache_dtype = "{dtype}" in [model] to keep the {dtype} cache')


def kv_for_load(search: Search, models: BackendModels, rejected: list[Alternative] | None = None) -> Search:
    """The search at an FP8 KV cache when that is clearly better than ``search`` (whose cache fits but misses the
    SLO) and the spec leaves the KV dtype to deployc; else ``search``. ``rejected`` gets the dtype it replaced."""
    c = search.candidate
    chosen = search.chosen()
    if chosen is None or c.kv_dtype == "fp8" or "fp8" not in kv_dtype_candidates(c.target.spec, c.dtype,
                                                                                  c.target.gpu):
        return search
    served = search.served.get(chosen.evaluation.layout)
    if served is None or served.verdict.serves:
        return search
    pressed = _kv_pressed(served.result)
    if not pressed and (c.quick or screening_active()):
        return search
    verdict = models.capability(c.target, c.weights.weights_format, "fp8")
    if not verdict.supported:
        return search
    fp8 = search_layouts(evolve(c, kv_dtype="fp8", kernel=verdict.kernel, flow=verdict.flow), models)
    fp8_chosen = fp8.chosen()
    fp8_served = None if fp8_chosen is None else fp8.served.get(fp8_chosen.evaluation.layout)
    if fp8_chosen is None or fp8_served is None or not clearly_better(miss_rank(fp8_served.result, fp8_served.verdict),
                                                 miss_rank(served.result, served.verdict)):
        return search
    layout, summary = chosen.evaluation.layout.label(), served.verdict.summary(served.result)
    r = served.result
    gain = ("FP8 holds twice the tokens per byte" if pressed else
            "FP8 holds twice the tokens per byte and each decode step reads half the KV bytes")
    fp8_layout = fp8_chosen.evaluation.layout.label()
    fp8_outcome = ("serves" if fp8_served.verdict.serves else fp8_served.verdict.summary(fp8_served.result))
    if rejected is not None:
        rejected.append(Alternative(f"{c.weights.weights_format} weights, {c.kv_dtype} KV cache",
                                    f"fits, but {summary} (simulated, {layout}); with an FP8 KV cache the plan "
                                    f"{fp8_outcome} ({fp8_layout})"))
    return evolve(fp8, candidate=evolve(fp8.candidate, kv_reason=(
        f"FP8 KV cache: the {c.kv_dtype} cache fits but its plan {summary} (simulated, {layout}, "
        f"{r.preemptions:,} preemptions, KV cache {r.kv_utilisation_mean:.0%} used on average, "
        f"{r.kv_utilisation_peak:.0%} at its peak); at FP8 the plan {fp8_outcome} (simulated, {fp8_layout}): {gain}. "
        + FP8_KV_ACCURACY.format(dtype=c.kv_dtype))))


# The cache is short for the load when decode preempted requests or the cache filled to this share at its peak
# (admission stops at the cache: max_num_seqs bound by it, the rest queued). Only then does a screen try FP8: a
# search per screen that misses for other reasons would cost deployc size ~20% more simulation for nothing.
KV_PRESSURE = 0.9


def _kv_pressed(result: ServingResult) -> bool:
    return result.preemptions > 0 or result.kv_utilisation_peak >= KV_PRESSURE


# FP8 KV costs some accuracy: it replaces the spec's cache only when it serves, keeps up where the other cannot, or
# misses by at least a tenth less (ITL 520 -> 519 ms at 21% KV use is no reason to quantise the cache). The ranked
# fixes use the same yardstick (slo_fixes): a simulated p99 moves by a few percent between samples, and loadrank
# counts misses in tenths of the target (MISS_STEP).
CLEAR_GAIN = 0.9


def clearly_better(new: tuple[int, float], now: tuple[int, float]) -> bool:
    """Whether the ``miss_rank`` ``new`` is clearly better than ``now``: a better kind of miss (serving, keeping
    up), or the same kind with a worst ratio at least a tenth lower."""
    if new[0] != now[0]:
        return new[0] < now[0]
    return new[1] <= CLEAR_GAIN * now[1]


def at_spec_kv(candidate: Candidate, models: BackendModels) -> Candidate:
    """A candidate whose FP8 KV cache was chosen for the load, back at the spec's first KV dtype (a fix changes
    the GPUs or the load: the rule decides the KV dtype again, as planning the fixed spec would)."""
    if candidate.kv_reason is None:
        return candidate
    first = kv_dtype_candidates(candidate.target.spec, candidate.dtype, candidate.target.gpu)[0]
    verdict = models.capability(candidate.target, candidate.weights.weights_format, first)
    return evolve(candidate, kv_dtype=first, kv_reason=None, kernel=verdict.kernel, flow=verdict.flow)


def searched_for_load(candidate: Candidate, models: BackendModels, searcher: Searcher) -> Search:
    """``searcher``'s search of the candidate with the KV dtype decided as a plan decides it."""
    return kv_for_load(searcher(at_spec_kv(candidate, models), models), models)
