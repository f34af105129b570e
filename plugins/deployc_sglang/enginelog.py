"""Reading an SGLang start-up log (``deployc check-log``): what the engine measured and the settings it ran with."""

from __future__ import annotations

import re
from collections.abc import Iterable

from attrs import evolve

from deployc.contract import GIB, GPU
from deployc.contract.enginelog import NUMBER, EngineLog, number

_KV = re.compile(rf"KV Cache is allocated\. #tokens: {NUMBER}, K size: {NUMBER} GB, V size: {NUMBER} GB")
_WEIGHTS = re.compile(rf"Load weight end\..*mem usage={NUMBER} GB")
_GRAPH = re.compile(rf"Capture cuda graph end\..*mem usage={NUMBER} GB")
_TOKENS = re.compile(rf"max_total_num_tokens={NUMBER}")
_BEGIN = re.compile(rf"Load weight begin\..*avail mem={NUMBER} GB")
_TYPE = re.compile(r"Load weight end\. type=([A-Za-z0-9_]+)")
_VERSION = re.compile(r"sglang version[:= ]+v?([0-9][\w.+-]*)", re.IGNORECASE)
_ARG = re.compile(r"\b(tp_size|mem_fraction_static|chunked_prefill_size|context_length|context_len|"
                  r"max_running_requests|model_path|disable_cuda_graph|quantization|kv_cache_dtype)=('[^']*'|[^,)\s]+)")
# SGLang server-arg names to EngineLog fields (server_args=ServerArgs(...) and the max_total_num_tokens line)
_FIELDS = {"tp_size": "tensor_parallel_size", "mem_fraction_static": "gpu_memory_utilization",
           "chunked_prefill_size": "max_num_batched_tokens", "context_length": "max_model_len",
           "context_len": "max_model_len", "max_running_requests": "max_num_seqs", "model_path": "model",
           "disable_cuda_graph": "enforce_eager", "quantization": "quantization", "kv_cache_dtype": "kv_cache_dtype"}


def chunk_default(gpu: GPU) -> int:
    """SGLang 0.5.23's ``--chunked-prefill-size`` when unset, by GPU memory (memory_hook.handle_gpu_memory_settings)."""
    gib = gpu.memory_bytes / GIB
    return 2048 if gib < 20 else 4096 if gib < 60 else 8192 if gib < 160 else 16384


def _args(line: str) -> dict[str, object]:
    """``server_args=ServerArgs(...)`` and the ``max_total_num_tokens=..., context_len=...`` summary line."""
    if "server_args=" not in line and "max_total_num_tokens=" not in line:
        return {}
    values: dict[str, object] = {}
    for key, raw in _ARG.findall(line):
        field = _FIELDS[key]
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
    return values


def _line(line: str, log: EngineLog) -> dict[str, object]:
    """The facts one line states."""
    if m := _KV.search(line):
        return {"kv_tokens": int(number(m.group(1))), "available_kv_gib": round(number(m.group(2)) +
                                                                               number(m.group(3)), 4)}
    if m := _WEIGHTS.search(line):
        kind = _TYPE.search(line)
        return {"weights_gib": number(m.group(1)), "architecture": kind.group(1) if kind else log.architecture}
    if m := _GRAPH.search(line):
        return {"cuda_graph_gib": number(m.group(1))}
    if m := _TOKENS.search(line):
        return {"kv_tokens": log.kv_tokens or int(number(m.group(1))), **_args(line)}
    if m := _BEGIN.search(line):
        return {"free_before_load_gib": number(m.group(1))}
    return _args(line)


def parse_log(lines: Iterable[str], gpu: GPU) -> EngineLog | None:
    """The numbers and settings an SGLang start-up log states (later lines win); None when no line is SGLang's."""
    log = EngineLog(default_max_num_batched_tokens=chunk_default(gpu))  # max_running_requests: derived at start-up
    found = False
    for line in lines:
        facts = _line(line, log)
        if facts:
            log, found = evolve(log, **facts), True  # type: ignore[arg-type]
        if m := _VERSION.search(line):
            log = evolve(log, engine_version=m.group(1))
    return log if found else None
