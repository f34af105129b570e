"""Edge and thermal: a power-limit recommendation for passive cooling or hot sites.

Seed 003: a T4 in a 30-35 °C kitchen enclosure hit its 83 °C throttle point at lunch rush and,
with the 78 °C hysteresis, stayed slow long after; ``nvidia-smi -pl 60`` (70 W TDP → 60 W)
traded ~15% peak performance for steady latency. deployc recommends a cap and computes its
throughput cost with the performance model (compute scaled by the power fraction).
"""

from __future__ import annotations

import math

from attrs import evolve

from deployc.planner.decisions import Decision, Quantity
from deployc.planner.perf import PerfInputs, estimate_performance
from deployc.planner.types import Performance
from deployc.target import Target

PASSIVE_FRACTION = 6 / 7  # seed 003's T4 cap: 60 W of 70 W
HOT_AMBIENT_C = 35.0  # seed 003: the T4 capped at 60 W held steady in a 30-35 °C kitchen
FRACTION_PER_DEGREE = 0.02  # each °C above 35 °C costs about 2% of the power budget (assumption, stated)
MIN_FRACTION = 0.6
THROTTLE_QUERY = ("nvidia-smi --query-gpu=temperature.gpu,power.draw,clocks.sm,clocks_throttle_reasons.active,"
                  "clocks_throttle_reasons.sw_thermal_slowdown,clocks_throttle_reasons.hw_thermal_slowdown "
                  "--format=csv -l 5")
# AMD: amd-smi's power, temperature (edge/hotspot/HBM) and clocks every 5 s; falling clocks at the cap mean throttling.
AMD_THROTTLE_QUERY = "amd-smi monitor -p -t -u -w 5"


def recommended_fraction(cooling: str, ambient_c: float) -> float:
    """Fraction of TDP to cap at (1.0: no cap)."""
    fraction = PASSIVE_FRACTION if cooling == "passive" else 1.0
    if ambient_c > HOT_AMBIENT_C:
        fraction -= (ambient_c - HOT_AMBIENT_C) * FRACTION_PER_DEGREE
    return max(min(fraction, 1.0), MIN_FRACTION)


def _advised_watts(target: Target, fraction: float) -> tuple[int, str]:
    """The cap in whole watts, kept inside the board's power-limit range, and what bounded it."""
    gpu = target.gpu
    watts = math.floor(gpu.tdp_w * fraction)
    low, high = gpu.power_limit_min_w, gpu.power_limit_max_w
    if low is not None and watts < low:
        return math.ceil(low), (f"; {low:g} W is the lowest limit {gpu.name} accepts (nvidia-smi Min Power Limit), "
                                f"not the {watts} W the site would call for: improve the airflow if it still throttles")
    if high is not None and watts > high:
        return math.floor(high), f"; {high:g} W is the highest limit {gpu.name} accepts"
    if low is None:
        return watts, (f"; the catalog has no minimum power limit for {gpu.name}: if `nvidia-smi -q -d POWER` shows "
                       f"a Min Power Limit above {watts} W, set that")
    return watts, ""


def power_limit_decision(target: Target, inputs: PerfInputs, uncapped: Performance) -> Decision | None:
    """The power-limit decision with its throughput cost, or None in a cool datacenter.

    The cap stays inside the board's power-limit range (catalog ``power_limit_w``), and a limit the
    spec says is already set (``environment.power_limit_w``) at or below it is kept, not lowered.
    """
    env = target.spec.environment
    fraction = recommended_fraction(env.cooling, env.ambient_c)
    tdp = target.gpu.tdp_w
    if fraction >= 1.0 or not tdp:  # no TDP: a [hardware.custom] GPU described without tdp_w
        return None
    watts, bound = _advised_watts(target, fraction)
    site = f"{env.cooling} cooling at {env.ambient_c:g} °C ambient"
    current = env.power_limit_w
    if current is not None and current <= watts:
        return Decision(
            id="power_limit", value=int(current) if float(current).is_integer() else current, rule="DPD403",
            reason=(f"{site}: the GPUs are already limited to {current:g} W (environment.power_limit_w), at or "
                    f"below the {watts} W this site calls for; keep it (performance is planned at it). Watch "
                    f"throttle reasons: `{AMD_THROTTLE_QUERY if target.gpu.is_amd else THROTTLE_QUERY}`"),
            numbers=(Quantity("power limit", current, "W"), Quantity("TDP", tdp, "W")))
    capped = estimate_performance(evolve(inputs, power_limit_fraction=watts / tdp))
    amd = target.gpu.is_amd
    cap_command = f"sudo amd-smi set --power-cap {watts}" if amd else f"nvidia-smi -pl {watts}"
    watch = AMD_THROTTLE_QUERY if amd else THROTTLE_QUERY
    cost = 1 - capped.tokens_per_s / uncapped.tokens_per_s if uncapped.tokens_per_s else 0.0
    from_text = f"now {current:g} W, " if current is not None else ""
    return Decision(
        id="power_limit", value=watts, rule="DPD403",
        reason=(f"{site}: cap each GPU at {watts} W (`{cap_command}`, {from_text}of {tdp:g} W TDP) so it "
                f"stays below its throttle temperature under sustained load; estimated throughput cost {cost:.0%}, "
                f"ITL {uncapped.itl_ms:.1f} → {capped.itl_ms:.1f} ms{bound}. Watch throttle reasons: "
                f"`{watch}`"),
        numbers=(Quantity("power limit", watts, "W"), Quantity("TDP", tdp, "W"),
                 Quantity("throughput cost", round(cost * 100, 1), "%")),
    )
