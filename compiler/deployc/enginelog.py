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
    max_num_seqs: int | None = None  # vLLM max_num_seqs, SGLang max_running_requests
    max_num_batched_tokens: int | None = None  # vLLM max_num_batched_tokens, SGLang chunked_prefill_size
    enforce_eager: bool | None = None  # vLLM enforce_eager, SGLang disable_cuda_graph
    model: str | None = None  # the served model as the log names it (vLLM `model`, SGLang model_path)
    architecture: str | None = None  # SGLang's "Load weight end. type=..."
    free_before_load_gib: float | None = None  # SGLang's "Load weight begin. avail mem=..."
    quantization: str | None = None  # the engine's --quantization ("none": stated as unset)
    kv_cache_dtype: str | None = None  # the engine's --kv-cache-dtype ("auto": the model dtype)


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
_SGLANG_BEGIN = re.compile(rf"Load weight begin\..*avail mem={_NUM} GB")
_SGLANG_TYPE = re.compile(r"Load weight end\. type=([A-Za-z0-9_]+)")
_SGLANG_ARG = re.compile(r"\b(tp_size|mem_fraction_static|chunked_prefill_size|context_length|context_len|"
                         r"max_running_requests|model_path|disable_cuda_graph|quantization|kv_cache_dtype)=('[^']*'|[^,)\s]+)")
# SGLang server-arg names to EngineLog fields (server_args=ServerArgs(...) and the max_total_num_tokens line)
_SGLANG_FIELDS = {"tp_size": "tensor_parallel_size", "mem_fraction_static": "gpu_memory_utilization",
                  "chunked_prefill_size": "max_num_batched_tokens", "context_length": "max_model_len",
                  "context_len": "max_model_len", "max_running_requests": "max_num_seqs", "model_path": "model",
                  "disable_cuda_graph": "enforce_eager", "quantization": "quantization",
                  "kv_cache_dtype": "kv_cache_dtype"}


def _vllm_args(line: str, log: EngineLog) -> EngineLog:
    match = _NON_DEFAULT.search(line)
    if not match:
        return log
    try:
        args = ast.literal_eval(match.group(1))
    except (ValueError, SyntaxError):
        return log
    # vLLM prints only the arguments that differ from their defaults: no tensor_parallel_size means 1; the
    # others left out are the engine's defaults at its version and GPU (deployc.checklog fills them in).
    return evolve(log, tensor_parallel_size=args.get("tensor_parallel_size", 1),
                  max_model_len=args.get("max_model_len", log.max_model_len),
                  gpu_memory_utilization=args.get("gpu_memory_utilization", log.gpu_memory_utilization),
                  max_num_seqs=args.get("max_num_seqs", log.max_num_seqs),
                  max_num_batched_tokens=args.get("max_num_batched_tokens", log.max_num_batched_tokens),
                  enforce_eager=args.get("enforce_eager", log.enforce_eager),
                  quantization=args.get("quantization", log.quantization),
                  kv_cache_dtype=args.get("kv_cache_dtype", log.kv_cache_dtype),
                  model=str(args.get("model", args.get("model_tag", log.model) or "")) or None)


def _sglang_args(line: str, log: EngineLog) -> EngineLog:
    """``server_args=ServerArgs(...)`` and the ``max_total_num_tokens=..., context_len=...`` summary line."""
    if "server_args=" not in line and "max_total_num_tokens=" not in line:
        return log
    values: dict[str, object] = {}
    for key, raw in _SGLANG_ARG.findall(line):
        field = _SGLANG_FIELDS[key]
        text = raw.strip("'")
        if raw == "None":
            if field == "quantization":
                values[field] = "none"
            continue
        if field in ("model", "quantization", "kv_cache_dtype"):
            values[field] = text
        elif field == "enforce_eager":
            values[field] = text == "True"
        elif field == "gpu_memory_utilization":
            values[field] = float(text)
        else:
            try:
                values[field] = int(text)
            except ValueError:
                continue
    return evolve(log, engine="sglang", **values) if values else log  # type: ignore[arg-type]


def _sglang(line: str, log: EngineLog) -> EngineLog:
    if m := _SGLANG_KV.search(line):
        return evolve(log, engine="sglang", kv_tokens=int(_f(m.group(1))),
                      available_kv_gib=round(_f(m.group(2)) + _f(m.group(3)), 4))
    if m := _SGLANG_WEIGHTS.search(line):
        kind = _SGLANG_TYPE.search(line)
        return evolve(log, engine="sglang", weights_gib=_f(m.group(1)),
                      architecture=kind.group(1) if kind else log.architecture)
    if m := _SGLANG_GRAPH.search(line):
        return evolve(log, engine="sglang", cuda_graph_gib=_f(m.group(1)))
    if m := _SGLANG_TOKENS.search(line):
        return _sglang_args(line, evolve(log, engine="sglang", kv_tokens=log.kv_tokens or int(_f(m.group(1)))))
    if m := _SGLANG_BEGIN.search(line):
        return evolve(log, engine="sglang", free_before_load_gib=_f(m.group(1)))
    return _sglang_args(line, log)


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
