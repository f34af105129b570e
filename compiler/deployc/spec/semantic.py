"""Semantic rules over a schema-valid spec that need no catalog: consistency between keys.

Rules that need facts (GPU capabilities, model limits) run when the spec is resolved
into a target (:mod:`deployc.resolve`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

from deployc.diagnostics import Diagnostic
from deployc.spec.extra_args import risky_flag_diagnostics
from deployc.spec.loader import SpecDocument
from deployc.spec.locate import KeyPath
from deployc.spec.model import Spec, TokenDistribution

Rule = Callable[[SpecDocument, Spec], Iterator[Diagnostic]]


def _load(doc: SpecDocument, spec: Spec) -> Iterator[Diagnostic]:
    w = spec.workload
    if (w.concurrency is None) == (w.request_rate_per_s is None):
        given = "both" if w.concurrency is not None else "neither"
        yield doc.diagnostic("DPC204", f"{given} of concurrency and request_rate_per_s given", ("workload",),
                             hint="give exactly one: `concurrency = 64` or `request_rate_per_s = 10`")


def _distributions(doc: SpecDocument, spec: Spec) -> Iterator[Diagnostic]:
    items: list[tuple[KeyPath, TokenDistribution]] = [
        (("workload", "prompt_tokens"), spec.workload.prompt_tokens),
        (("workload", "output_tokens"), spec.workload.output_tokens),
    ]
    for index, cls in enumerate(spec.workload.classes):
        items += [(("workload", "classes", index, "prompt_tokens"), cls.prompt_tokens),
                  (("workload", "classes", index, "output_tokens"), cls.output_tokens)]
    for path, dist in items:
        if dist.p99 is not None and dist.p99 < dist.mean:
            yield doc.diagnostic("DPC205", f"p99 {dist.p99} is below the mean {dist.mean}", (*path, "p99"),
                                 value=str(dist.p99), hint="p99 is a tail length: at least the mean")
        if dist.max is not None and dist.max < max(dist.mean, dist.p99 or 0):
            yield doc.diagnostic("DPC205", f"max {dist.max} is below the mean or p99", (*path, "max"),
                                 value=str(dist.max), hint="max is the longest request: at least the p99")


def _classes(doc: SpecDocument, spec: Spec) -> Iterator[Diagnostic]:
    classes = spec.workload.classes
    if not classes:
        return
    total = sum(c.share for c in classes)
    if abs(total - 1.0) > 1e-6:
        yield doc.diagnostic("DPC208", f"class shares sum to {total:g}, not 1", ("workload", "classes"),
                             hint="make the shares of [[workload.classes]] add up to 1")
    names = [c.name for c in classes]
    for index, name in enumerate(names):
        if name in names[:index]:
            yield doc.diagnostic("DPC208", f"duplicate class name {name!r}", ("workload", "classes", index, "name"),
                                 value=repr(name), hint="give each class its own name")


def _percentiles(doc: SpecDocument, spec: Spec) -> Iterator[Diagnostic]:
    for key, target in (("ttft_ms", spec.slo.ttft_ms), ("itl_ms", spec.slo.itl_ms), ("tpot_ms", spec.slo.tpot_ms)):
        if target is None:
            continue
        given = target.given()
        for (low, low_ms), (high, high_ms) in itertools.pairwise(given):
            if low_ms > high_ms:
                yield doc.diagnostic("DPC209", f"{low} {low_ms:g} ms is above {high} {high_ms:g} ms",
                                     ("slo", key, low), value=f"{low_ms:g}", hint=f"{low} ≤ {high}")


def _topology(doc: SpecDocument, spec: Spec) -> Iterator[Diagnostic]:
    hw = spec.hardware
    if hw.nodes > 1 and hw.network == "none":
        yield doc.diagnostic("DPC206", f"{hw.nodes} nodes but network = \"none\"", ("hardware", "network"),
                             hint='set the network between nodes, e.g. network = "ib-ndr"')
    if hw.gpu_ids is not None:
        if len(hw.gpu_ids) != hw.gpus_per_node:
            yield doc.diagnostic("DPC015", f"{len(hw.gpu_ids)} device ids for {hw.gpus_per_node} GPUs per node",
                                 ("hardware", "gpu_ids"), hint="list one device index per GPU, or drop gpu_ids")
        if len(set(hw.gpu_ids)) != len(hw.gpu_ids) or any(i < 0 for i in hw.gpu_ids):
            yield doc.diagnostic("DPC015", "device ids must be distinct and non-negative",
                                 ("hardware", "gpu_ids"), hint="e.g. gpu_ids = [0, 1]")


RULES: tuple[Rule, ...] = (_load, _distributions, _classes, _percentiles, _topology, risky_flag_diagnostics)


def semantic_diagnostics(document: SpecDocument, spec: Spec) -> list[Diagnostic]:
    """Run every catalog-free semantic rule."""
    return [diag for rule in RULES for diag in rule(document, spec)]
