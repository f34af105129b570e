"""Reading real vLLM and SGLang start-up logs: what the engine measured at start-up.

Used by ``deployc check-log`` and by ``bench/memory_accuracy.py``, so the benchmark and
users compare predictions against the same parsed numbers.  Both engines print GiB
(vLLM's older "GB" and SGLang's "GB" are computed with 2**30).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable

from attrs import evolve, frozen

_NUM = r"([0-9][0-9,]*\.?[0-9]*)"


def _f(text: str) -> float:
    return float(text.replace(",", ""))


@frozen(kw_only=True)
class EngineLog:
    """Numbers found in a start-up log (None where the log does not say)."""

    engine: str | None = None
    weights_gib: float | None = None
    available_kv_gib: float | None = None
    kv_tokens: int | None = None
    max_concurrency: float | None = None
    max_concurrency_tokens_per_request: int | None = None
    cuda_graph_gib: float | None = None
    activation_peak_gib: float | None = None
    non_torch_gib: float | None = None
    gpu_blocks: int | None = None
    tensor_parallel_size: int | None = None
    max_model_len: int | None = None
    gpu_memory_utilization: float | None = None
    engine_version: str | None = None


_VLLM_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(rf"(?:Model loading took|Loading model weights took|model weights took) {_NUM} ?Gi?B"), "weights_gib"),
    (re.compile(rf"Available KV cache memory: {_NUM} ?GiB"), "available_kv_gib"),
    (re.compile(rf"GPU KV cache size: {_NUM} tokens"), "kv_tokens"),
    (re.compile(rf"Graph capturing finished in {_NUM} secs?, took {_NUM} GiB"), "cuda_graph_gib"),
    (re.compile(rf"model weights take {_NUM}GiB"), "weights_gib"),
    (re.compile(rf"non_torch_memory takes {_NUM}GiB"), "non_torch_gib"),
    (re.compile(rf"PyTorch activation peak memory takes {_NUM}GiB"), "activation_peak_gib"),
    (re.compile(rf"the rest of the memory reserved for KV Cache is {_NUM}GiB"), "available_kv_gib"),
    (re.compile(rf"# (?:GPU|cuda) blocks: {_NUM}"), "gpu_blocks"),
)
_CONCURRENCY = re.compile(rf"Maximum concurrency for {_NUM} tokens per request: {_NUM}x")
_NON_DEFAULT = re.compile(r"non-default args: (\{.*\})")
_VERSION = re.compile(r"(?:vLLM API server version|vLLM version|sglang version|SGLang version)[:= ]+v?([0-9][\w.+-]*)",
                      re.IGNORECASE)
_SGLANG_KV = re.compile(rf"KV Cache is allocated\. #tokens: {_NUM}, K size: {_NUM} GB, V size: {_NUM} GB")
_SGLANG_WEIGHTS = re.compile(rf"Load weight end\..*mem usage={_NUM} GB")
_SGLANG_GRAPH = re.compile(rf"Capture cuda graph end\..*mem usage={_NUM} GB")
_SGLANG_TOKENS = re.compile(rf"max_total_num_tokens={_NUM}")


def _vllm_args(line: str, log: EngineLog) -> EngineLog:
    match = _NON_DEFAULT.search(line)
    if not match:
        return log
    try:
        args = ast.literal_eval(match.group(1))
    except (ValueError, SyntaxError):
        return log
    # vLLM prints only the arguments that differ from their defaults: no tensor_parallel_size means 1.
    return evolve(log, tensor_parallel_size=args.get("tensor_parallel_size", 1),
                  max_model_len=args.get("max_model_len", log.max_model_len),
                  gpu_memory_utilization=args.get("gpu_memory_utilization", log.gpu_memory_utilization))


def _sglang(line: str, log: EngineLog) -> EngineLog:
    if m := _SGLANG_KV.search(line):
        return evolve(log, engine="sglang", kv_tokens=int(_f(m.group(1))),
                      available_kv_gib=round(_f(m.group(2)) + _f(m.group(3)), 4))
    if m := _SGLANG_WEIGHTS.search(line):
        return evolve(log, engine="sglang", weights_gib=_f(m.group(1)))
    if m := _SGLANG_GRAPH.search(line):
        return evolve(log, engine="sglang", cuda_graph_gib=_f(m.group(1)))
    if m := _SGLANG_TOKENS.search(line):
        return evolve(log, engine="sglang", kv_tokens=log.kv_tokens or int(_f(m.group(1))))
    return log


def parse_engine_log(lines: Iterable[str]) -> EngineLog:
    """Scan log lines (in order; later lines win) for the numbers an engine prints at start-up."""
    log = EngineLog()
    for line in lines:
        log = _sglang(line, log)
        if m := _CONCURRENCY.search(line):
            log = evolve(log, engine=log.engine or "vllm", max_concurrency=_f(m.group(2)),
                         max_concurrency_tokens_per_request=int(_f(m.group(1))))
        log = _vllm_args(line, log)
        if m := _VERSION.search(line):
            log = evolve(log, engine_version=m.group(1))
        for pattern, attribute in _VLLM_PATTERNS:
            if m := pattern.search(line):
                value = _f(m.groups()[-1])
                number: float = int(value) if attribute in ("kv_tokens", "gpu_blocks") else value
                log = evolve(log, engine=log.engine or "vllm")
                log = evolve(log, **{attribute: number})  # type: ignore[arg-type]
    return log
