"""A per-GPU memory bar a person takes in at a glance."""

from __future__ import annotations

from deployc.planner.types import MemoryBreakdown
from deployc.render.units import gib

BAR_WIDTH = 60
SEGMENTS = (("W", "weights"), ("K", "KV cache"), ("A", "activations"), ("G", "CUDA graphs"), ("O", "other"))


def memory_bar(m: MemoryBreakdown, width: int = BAR_WIDTH) -> list[str]:
    """Lines: ``[WWWWKKKKKKAG.....] 79.65 GiB`` and a legend with each segment's size."""
    sizes = {
        "W": m.weights_bytes, "K": m.kv_cache_bytes, "A": m.activation_bytes,
        "G": m.cuda_graph_bytes, "O": m.other_bytes,
    }
    total = max(m.total_bytes, 1)
    cells: list[str] = []
    for letter, _ in SEGMENTS:
        count = round(sizes[letter] / total * width)
        if sizes[letter] > 0:
            count = max(count, 1)
        cells.extend(letter * count)
    bar = "".join(cells)[:width]
    over = sum(sizes.values()) > m.total_bytes
    bar = bar.ljust(width, ".")
    legend = "  ".join(f"{letter}={name} {gib(sizes[letter])}" for letter, name in SEGMENTS)
    status = "OVER CAPACITY" if over else f"free {gib(m.free_bytes)}"
    return [f"[{bar}] {gib(m.total_bytes)} per GPU, {status}", legend]
