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


def power_limit_decision(target: Target, inputs: PerfInputs, uncapped: Performance) -> Decision | None:
    """The power-limit decision with its throughput cost, or None in a cool datacenter."""
    env = target.spec.environment
    fraction = recommended_fraction(env.cooling, env.ambient_c)
    if fraction >= 1.0:
        return None
    tdp = target.gpu.tdp_w
    watts = math.floor(tdp * fraction)
    capped = estimate_performance(evolve(inputs, power_limit_fraction=watts / tdp))
    amd = target.gpu.is_amd
    cap_command = f"sudo amd-smi set --power-cap {watts}" if amd else f"nvidia-smi -pl {watts}"
    watch = AMD_THROTTLE_QUERY if amd else THROTTLE_QUERY
    cost = 1 - capped.tokens_per_s / uncapped.tokens_per_s if uncapped.tokens_per_s else 0.0
    return Decision(
        id="power_limit", value=watts, rule="DPC306",
        reason=(f"{env.cooling} cooling at {env.ambient_c:g} °C ambient: cap each GPU at {watts} W "
                f"(`{cap_command}`, of {tdp:g} W TDP) so it stays below its throttle temperature under "
                f"sustained load; estimated throughput cost {cost:.0%}, ITL {uncapped.itl_ms:.1f} → "
                f"{capped.itl_ms:.1f} ms. Watch throttle reasons: `{watch}`"),
        numbers=(Quantity("power limit", watts, "W"), Quantity("TDP", tdp, "W"),
                 Quantity("throughput cost", round(cost * 100, 1), "%")),
    )
