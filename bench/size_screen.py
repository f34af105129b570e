"""How the sizing screen's verdicts compare with full plans: the evidence for ``sizing.search.SCREEN_MARGIN``.

Sizes each spec (default: every sample with a single request class) over H100 SXM, A100 80GB SXM,
L40S and L4 up to 16 GPUs with every screened deployment also planned in full (the full search's
path), and prints, per deployment, the screen's status and miss ratio beside the full plan's. A
screen that misses by at least the margin while the full plan serves would make the screened search
skip a deployment that serves: the script counts those and exits 1 when there is one.

    python bench/size_screen.py [SPEC ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

from deployc.sizing import search as sizing
from deployc.sizing.deployment import Deployment
from deployc.sizing.run import size

GPUS = "H100,A100-80GB,L40S,L4"
MAX_GPUS = 16
SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def main(argv: list[str]) -> int:
    """Print screen vs full for every simulated deployment; exit 1 when the margin would have hidden one."""
    specs = [Path(a) for a in argv] or sorted(p for p in SAMPLES.glob("*.toml") if "classes" not in p.read_text())
    pairs: list[tuple[str, Deployment, Deployment]] = []
    plan_one = sizing.plan_one

    def both(*args: object, quick: bool = False) -> Deployment:
        full = plan_one(*args)  # type: ignore[arg-type]
        if quick and full.simulated:
            screen = plan_one(*args, quick=True)  # type: ignore[arg-type]
            pairs.append((spec.stem, screen, full))
        return full

    sizing.plan_one = both  # type: ignore[assignment]
    try:
        for spec in specs:
            size(spec, gpus=GPUS, max_gpus=MAX_GPUS)
    finally:
        sizing.plan_one = plan_one
    hidden = 0
    print(f"{'spec':<30} {'deployment':<44} {'screen':>12} {'ratio':>7}  {'full':>12} {'ratio':>7}")
    for name, screen, full in sorted(pairs, key=lambda p: p[1].miss_ratio or 0.0):
        lost = full.serves and not screen.serves and (screen.miss_ratio or 0.0) >= sizing.SCREEN_MARGIN
        hidden += lost
        print(f"{name[:30]:<30} {screen.label()[:44]:<44} {screen.status:>12} {screen.miss_ratio or 0.0:7.2f}  "
              f"{full.status:>12} {full.miss_ratio or 0.0:7.2f}{'  HIDDEN' if lost else ''}")
    serving = [s.miss_ratio or 0.0 for _, s, f in pairs if f.serves and not s.serves]
    print(f"margin {sizing.SCREEN_MARGIN}: {len(pairs)} deployments; the largest screen miss ratio of a full plan "
          f"that serves: {max(serving, default=0.0):.2f}; hidden by the margin: {hidden}")
    return 1 if hidden else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
