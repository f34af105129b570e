"""What an engine's start-up log says: the facts ``deployc check-log`` compares the plan with.

Each backend reads its own engine's log (the ``deployc_parse_engine_log`` hook; the vLLM and
SGLang plugins do); this module holds the facts they return and how the reading that fits the
log best is chosen.  Sizes are GiB (vLLM's older "GB" and SGLang's "GB" are computed with 2**30).
"""

from __future__ import annotations

from collections.abc import Mapping

from attrs import fields, frozen

# A number as engines print it: digits with thousands commas and an optional fraction ("46,611", "1.42").
NUMBER = r"([0-9][0-9,]*\.?[0-9]*)"


def number(text: str) -> float:
    """A printed number (a NUMBER match) as a float."""
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
    # The engine's own defaults on the GPU asked about, for the settings a log leaves out (vLLM prints only
    # non-default arguments); None where the backend does not say (check-log then replays the plan's).
    default_max_num_seqs: int | None = None
    default_max_num_batched_tokens: int | None = None

    def stated(self) -> int:
        """How many facts the log states (the engine's defaults are not stated by the log)."""
        return sum(getattr(self, f.name) is not None for f in fields(EngineLog)
                   if f.name not in ("engine", "default_max_num_seqs", "default_max_num_batched_tokens"))


def likeliest(found: Mapping[str, EngineLog]) -> tuple[str, EngineLog] | None:
    """The backend whose engine wrote the log: the one whose reading states the most facts (ties: by name)."""
    if not found:
        return None
    name = max(sorted(found), key=lambda b: found[b].stated())  # max keeps the first of equals: name order
    return name, found[name]
