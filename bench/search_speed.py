"""How long the layout search takes on 64 GPUs (8 nodes × 8 H100): target under 100 ms.

Times the whole search the planner runs per weight format: enumerate every (TP, PP, DP, EP),
estimate each valid layout's performance, rank them. Memory fit uses a simple stand-in here
(weights per GPU from planner/weights.py, 90% of memory minus 2 GiB usable, the rest KV),
because the backend overheads come from plugins. Prints the median of several runs.

    PYTHONPATH=compiler python bench/search_speed.py
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

from deployc.catalog import GPU, Link, ModelArch, resolve_gpu, resolve_link, resolve_model
from deployc.planner.formats import weight_format
from deployc.planner.parallel import LayoutEvaluation, SearchResult, enumerate_layouts, rank_layouts
from deployc.planner.perf import PerfInputs, estimate_performance
from deployc.planner.weights import weights_per_gpu
from deployc.units import GIB

TARGET_MS = 100.0
RUNS = 7
NODES, GPUS_PER_NODE = 8, 8
PROMPT, OUTPUT, CONCURRENCY, MAX_CONTEXT = 2000, 500, 256, 8192


def search(model: ModelArch, gpu: GPU, link: Link, network: Link, fmt: str) -> tuple[SearchResult, int]:
    """One full layout search; returns the result and how many layouts were enumerated."""
    checks = enumerate_layouts(
        model, gpus_per_node=GPUS_PER_NODE, nodes=NODES, gpu=gpu, intra_link=link, weights_block_size=None
    )
    evaluations = []
    for check in checks:
        if not check.valid:
            continue
        lay = check.layout
        weights = weights_per_gpu(model, weight_format(fmt), tp=lay.tp, pp=lay.pp, ep=lay.ep)
        kv_per_token = 2 * model.num_layers * max(model.num_kv_heads / lay.tp, 1) * model.head_dim * 2 / lay.pp
        capacity = (gpu.memory_bytes * 0.9 - 2 * GIB - weights.total_bytes) / kv_per_token
        fits = capacity >= MAX_CONTEXT
        load = min(CONCURRENCY / lay.dp, max(capacity / (PROMPT + OUTPUT), 1.0))
        perf = (
            estimate_performance(
                PerfInputs(
                    model=model,
                    gpu=gpu,
                    layout=lay,
                    intra_link=link,
                    network=network,
                    gpus_per_node=GPUS_PER_NODE,
                    weights_bytes_per_gpu=weights.total_bytes,
                    kv_bytes_per_token_per_gpu=kv_per_token,
                    weights_format=fmt,
                    prompt_tokens=PROMPT,
                    output_tokens=OUTPUT,
                    concurrency=load,
                    expert_weights_bytes_per_gpu=weights.moe_expert_bytes,
                    embedding_bytes_per_gpu=weights.embedding_bytes,
                )
            )
            if fits
            else None
        )
        evaluations.append(
            LayoutEvaluation(
                layout=lay,
                fits=fits,
                shortfall_bytes=0 if fits else int((MAX_CONTEXT - capacity) * kv_per_token),
                kv_capacity_tokens=int(max(capacity, 0)),
                max_concurrency=capacity / (PROMPT + OUTPUT),
                performance=perf,
                meets_slo=False,
            )
        )
    return rank_layouts(evaluations, goal="throughput", ttft_target_ms=2000, itl_target_ms=50, rejected=checks), len(
        checks
    )


def main() -> int:
    """Time the search for a dense and an MoE model; exit 1 when over the target."""
    gpu, link, network = resolve_gpu("H100 SXM"), resolve_link("nvlink4"), resolve_link("ib-ndr")
    worst = 0.0
    for name, fmt in (("Llama-3.1-70B", "fp8"), ("DeepSeek-V3", "fp8")):
        model = resolve_model(name, base_dir=Path(), allow_download=False)
        search(model, gpu, link, network, fmt)  # warm the catalog and calibration caches
        times = []
        for _ in range(RUNS):
            start = time.perf_counter()
            result, enumerated = search(model, gpu, link, network, fmt)
            times.append((time.perf_counter() - start) * 1e3)
        ms = statistics.median(times)
        worst = max(worst, ms)
        best = result.best.layout.label() if result.best else "none"
        print(
            f"{name} {fmt} on {NODES}×{GPUS_PER_NODE} {gpu.name}: {enumerated} layouts enumerated, "
            f"{len(result.ranked)} evaluated, best {best}; search {ms:.1f} ms (median of {RUNS}, "
            f"min {min(times):.1f}, max {max(times):.1f})"
        )
    print(f"target < {TARGET_MS:.0f} ms: {'met' if worst < TARGET_MS else 'MISSED'}")
    return 0 if worst < TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
