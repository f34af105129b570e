"""Choosing the inference engine when ``operations.backend = "auto"``.

The articles' decision framework (seed 003), made explicit and ordered, over what each backend
declares in its :class:`~deployc.backend.BackendInfo` (so a third-party backend competes on the
same terms as the built-ins; the core names no engine):
1. vendor and lock-in: a backend is excluded on a GPU vendor it does not list (``gpu_vendors``),
   and, when it is NVIDIA-only by design (``vendor_lock_in``), where lock-in is not acceptable;
2. how often the model changes: a flow that compiles an engine per model and configuration
   (``engine_build``, selected by the spec's ``[backends.NAME]`` table) is excluded when the model
   changes more often than quarterly or several models share the fleet; a backend whose model
   changes cost a warm-up without a build (``model_change_cost``) is only ranked last;
3. agent or prefix-heavy traffic: the backend suited to ``shared_prefixes`` (e.g. a radix cache);
4. a stable single model at high volume: the backend suited to ``stable_high_volume``;
5. otherwise the ``general`` one (fast iteration, widest model support).
Ties go to name order. Each backend then vetoes what it cannot run (capability hook); the
planner moves to the next.
"""

from __future__ import annotations

from collections.abc import Sequence

from attrs import field, frozen

from deployc.contract.backend import BackendInfo, Suited
from deployc.planner.decisions import Alternative, Decision, Quantity
from deployc.spec.model import Spec

# A workload counts as high volume at this many requests in flight or per second (stated in the reason).
HIGH_VOLUME_CONCURRENCY = 64
HIGH_VOLUME_RATE_PER_S = 20.0
# Prefix-heavy: at least this share of the mean prompt is a shared prefix.
PREFIX_HEAVY_SHARE = 0.5
STABLE_CHANGE_RATES = ("quarterly", "rarely")
# What the engines that list a vendor run on there (the vendor exclusion names them as the way out).
VENDOR_BUILDS = {"AMD": "ROCm builds for AMD Instinct GPUs", "NVIDIA": "CUDA builds for NVIDIA GPUs"}


@frozen
class BackendRanking:
    """Backends in the order the rules prefer them, each with the reason for its place."""

    order: tuple[str, ...]
    reasons: dict[str, str]
    rule_reason: str
    preferred: str
    notes: dict[str, str] = field(factory=dict)  # why a candidate is ranked where it is, beyond the rule


def _prefix_share(spec: Spec) -> float:
    return min(spec.workload.shared_prefix_tokens / spec.workload.prompt_tokens.mean, 1.0)


def _high_volume(spec: Spec) -> bool:
    w = spec.workload
    return (w.concurrency or 0) >= HIGH_VOLUME_CONCURRENCY or (w.request_rate_per_s or 0) >= HIGH_VOLUME_RATE_PER_S


def _builds_engines(spec: Spec, info: BackendInfo) -> bool:
    """Whether the spec selects the backend's compile-per-model flow."""
    build = info.engine_build
    return build is not None and (spec.backends.get(info.name) or {}).get(build.option) == build.value


def _strength(info: BackendInfo, when: Suited) -> str | None:
    return next((s.reason for s in info.strengths if s.when == when), None)


def _tie_order(installed: Sequence[BackendInfo]) -> list[BackendInfo]:
    """General-purpose backends first, then those suited to some traffic, then the rest; by name within."""
    def rank(info: BackendInfo) -> tuple[int, str]:
        return (0 if _strength(info, "general") else 1 if info.strengths else 2), info.name

    return sorted(installed, key=rank)


def _and(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _exclusion(spec: Spec, info: BackendInfo, gpu_vendor: str, tie: Sequence[BackendInfo]) -> str | None:
    """Why the rules rule a backend out for this spec, or None."""
    ops = spec.operations
    if gpu_vendor.lower() not in (v.lower() for v in info.gpu_vendors):
        vendors = _and([v.upper() for v in info.gpu_vendors])
        others = [i.name for i in tie if gpu_vendor.lower() in (v.lower() for v in i.gpu_vendors)]
        builds = VENDOR_BUILDS.get(gpu_vendor, f"builds for {gpu_vendor} GPUs")
        way_out = f"; {_and(others)} {'has' if len(others) == 1 else 'have'} {builds}" if others else ""
        return f"{info.engine} runs only on {vendors} GPUs ({gpu_vendor} given){way_out}"
    if info.vendor_lock_in and not ops.nvidia_lock_in_ok:
        return "NVIDIA lock-in is not acceptable (operations.nvidia_lock_in_ok = false)"
    if _builds_engines(spec, info) and info.engine_build is not None:
        if ops.model_change not in STABLE_CHANGE_RATES:
            return f"the model changes {ops.model_change}; {info.engine_build.change_cost}"
        if ops.models == "multi":
            return f"several models share the fleet; {info.engine_build.per_model}"
    return None


def rank_backends(spec: Spec, installed: Sequence[BackendInfo], gpu_vendor: str) -> BackendRanking:
    """Order the installed backends by the decision framework."""
    ops = spec.operations
    stable = ops.model_change in STABLE_CHANGE_RATES
    tie = _tie_order(installed)
    excluded = {i.name: why for i in tie if (why := _exclusion(spec, i, gpu_vendor, tie)) is not None}
    # Without a compile step, a backend whose model changes still cost a warm-up stays a candidate, ranked last.
    demoted = [i for i in tie if i.name not in excluded and i.model_change_cost and not stable]
    candidates = [i for i in tie if i.name not in excluded and i.name not in {d.name for d in demoted}]
    prefix = _prefix_share(spec)
    rules: list[tuple[bool, Suited, str]] = [
        (spec.workload.kind == "agent" or prefix >= PREFIX_HEAVY_SHARE, "shared_prefixes",
         f"{spec.workload.kind} traffic with {prefix:.0%} of the prompt shared: "),
        (ops.models == "single" and stable and _high_volume(spec), "stable_high_volume",
         f"a stable single model (changes {ops.model_change}) at high volume: "),
        (True, "general", ""),
    ]
    first, why = None, "the first installed backend by name (none states the traffic it suits)"
    for applies, when, words in rules:
        suited = next((i for i in candidates if applies and _strength(i, when)), None)
        if suited is not None:
            first, why = suited.name, words + (_strength(suited, when) or "")
            break
    ordered = [i.name for i in candidates] + [i.name for i in demoted]
    if first is None:
        first = ordered[0] if ordered else ""
    order = [first, *(b for b in ordered if b != first)] if first else []
    notes = {i.name: f"ranked last: the model changes {ops.model_change}; {i.model_change_cost}" for i in demoted}
    return BackendRanking(order=tuple(order), reasons=excluded, rule_reason=why, preferred=first, notes=notes)


def backend_decision(spec: Spec, chosen: str, ranking: BackendRanking, vetoes: dict[str, str]) -> Decision:
    """The backend decision with every installed alternative and why it lost."""
    if spec.operations.backend != "auto":
        return Decision(id="backend", value=chosen, rule="DPD102",
                        reason=f"set in the spec (operations.backend = {spec.operations.backend!r})")
    rejected = [Alternative(b, reason) for b, reason in sorted({**ranking.reasons, **vetoes}.items())]
    rejected += [Alternative(b, ranking.notes.get(b) or f"ranked below {chosen}: {ranking.rule_reason}")
                 for b in ranking.order if b != chosen and b not in vetoes]
    numbers = (Quantity("shared prefix share of the prompt", round(_prefix_share(spec) * 100, 1), "%"),)
    if chosen == ranking.preferred:
        reason = ranking.rule_reason
    elif ranking.preferred in vetoes and vetoes[ranking.preferred].startswith(("misses the SLO", "cannot keep up",
                                                                               "pool ")):
        reason = (f"{ranking.preferred} is preferred ({ranking.rule_reason}) but its plan does not serve this traffic "
                  f"({vetoes[ranking.preferred]}); {chosen}'s does")
    else:
        reason = f"{ranking.preferred} is preferred ({ranking.rule_reason}) but cannot serve this plan; next in order"
    return Decision(id="backend", value=chosen, rule="DPD102", reason=reason, numbers=numbers,
                    rejected=tuple(rejected))
