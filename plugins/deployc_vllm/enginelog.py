"""Reading a vLLM start-up log (``deployc check-log``): what the engine measured and the settings it ran with."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable

from attrs import evolve

from deployc.contract import GIB, GPU
from deployc.contract.enginelog import NUMBER, EngineLog, number

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(rf"(?:Model loading took|Loading model weights took|model weights took) {NUMBER} ?Gi?B"),
     "weights_gib"),
    (re.compile(rf"Available KV cache memory: {NUMBER} ?GiB"), "available_kv_gib"),
    (re.compile(rf"GPU KV cache size: {NUMBER} tokens"), "kv_tokens"),
    (re.compile(rf"Graph capturing finished in {NUMBER} secs?, took {NUMBER} GiB"), "cuda_graph_gib"),
    (re.compile(rf"model weights take {NUMBER}GiB"), "weights_gib"),
    (re.compile(rf"non_torch_memory takes {NUMBER}GiB"), "non_torch_gib"),
    (re.compile(rf"PyTorch activation peak memory takes {NUMBER}GiB"), "activation_peak_gib"),
    (re.compile(rf"the rest of the memory reserved for KV Cache is {NUMBER}GiB"), "available_kv_gib"),
    (re.compile(rf"# (?:GPU|cuda) blocks: {NUMBER}"), "gpu_blocks"),
)
_CONCURRENCY = re.compile(rf"Maximum concurrency for {NUMBER} tokens per request: {NUMBER}x")
_NON_DEFAULT = re.compile(r"non-default args: (\{.*\})")
_VERSION = re.compile(r"(?:vLLM API server version|vLLM version)[:= ]+v?([0-9][\w.+-]*)", re.IGNORECASE)


def batch_defaults(gpu: GPU) -> tuple[int, int]:
    """``vllm serve``'s (max_num_seqs, max_num_batched_tokens) when not given, by GPU.

    vLLM 0.33.0 ``EngineArgs.get_batch_defaults`` (vllm/engine/arg_utils.py), OPENAI_API_SERVER
    context: ≥ 160 GiB: 1024 / 16384; ≥ 70 GiB and not an A100: 1024 / 8192; otherwise 256 / 2048.
    """
    memory = gpu.memory_bytes
    if memory >= 160 * GIB:
        return 1024, 16384
    if memory >= 70 * GIB and "a100" not in gpu.name.lower():
        return 1024, 8192
    return 256, 2048


def _args(line: str, log: EngineLog) -> EngineLog:
    match = _NON_DEFAULT.search(line)
    if not match:
        return log
    try:
        args = ast.literal_eval(match.group(1))
    except (ValueError, SyntaxError):
        return log
    # vLLM prints only the arguments that differ from their defaults: no tensor_parallel_size means 1; the
    # others left out are the engine's defaults at its version and GPU (batch_defaults states two of them).
    return evolve(log, tensor_parallel_size=args.get("tensor_parallel_size", 1),
                  max_model_len=args.get("max_model_len", log.max_model_len),
                  gpu_memory_utilization=args.get("gpu_memory_utilization", log.gpu_memory_utilization),
                  max_num_seqs=args.get("max_num_seqs", log.max_num_seqs),
                  max_num_batched_tokens=args.get("max_num_batched_tokens", log.max_num_batched_tokens),
                  enforce_eager=args.get("enforce_eager", log.enforce_eager),
                  quantization=args.get("quantization", log.quantization),
                  kv_cache_dtype=args.get("kv_cache_dtype", log.kv_cache_dtype),
                  model=str(args.get("model", args.get("model_tag", log.model) or "")) or None)


def parse_log(lines: Iterable[str], gpu: GPU) -> EngineLog | None:
    """The numbers and settings a vLLM start-up log states (later lines win); None when no line is vLLM's."""
    seqs, tokens = batch_defaults(gpu)
    log = EngineLog(default_max_num_seqs=seqs, default_max_num_batched_tokens=tokens)
    found = False
    for line in lines:
        if m := _CONCURRENCY.search(line):
            log, found = evolve(log, max_concurrency=number(m.group(2)),
                                max_concurrency_tokens_per_request=int(number(m.group(1)))), True
        stated = _args(line, log)
        log, found = stated, found or stated is not log
        if m := _VERSION.search(line):
            log = evolve(log, engine_version=m.group(1))
        for pattern, attribute in _PATTERNS:
            if m := pattern.search(line):
                value = number(m.groups()[-1])
                figure: float = int(value) if attribute in ("kv_tokens", "gpu_blocks") else value
                log, found = evolve(log, **{attribute: figure}), True  # type: ignore[arg-type]
    return log if found else None
