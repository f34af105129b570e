"""What a backend plugin tells deployc about itself and its engine, as plain frozen data."""

from __future__ import annotations

from typing import Any, Literal

from attrs import field, frozen

from deployc.planner.decisions import Decision

MemoryFractionKind = Literal["total", "weights_and_kv", "free_after_load"]


@frozen(kw_only=True)
class BackendInfo:
    """A backend's identity and pinned engine.

    ``options_schema`` is the JSON Schema of the ``[backends.NAME]`` table (draft 2020-12,
    an object schema); deployc merges it into the spec schema under that name.
    """

    name: str
    engine: str
    engine_version: str
    image: str
    image_tag: str
    summary: str
    gpu_vendors: tuple[str, ...] = ("nvidia",)
    options_schema: dict[str, Any] = field(factory=lambda: {"type": "object", "additionalProperties": False})


@frozen(kw_only=True)
class Capability:
    """Whether an engine can run a precision on a GPU, and how (the kernel), or why not."""

    supported: bool
    reason: str
    kernel: str | None = None
    alternative: str | None = None


@frozen(kw_only=True)
class OverheadQuery:
    """What a backend needs to state its memory overheads for one candidate layout."""

    model_name: str
    num_layers: int
    hidden_size: int
    intermediate_size: int
    vocab_size: int
    num_attention_heads: int
    is_moe: bool
    gpu_name: str
    gpu_memory_bytes: int
    tp: int
    pp: int
    activation_dtype_bytes: int
    max_num_batched_tokens: int
    max_num_seqs: int
    cuda_graphs: bool
    weights_bytes_per_gpu: int
    gpu_vendor: str = "NVIDIA"  # versionadded: AMD support; engines budget memory differently on ROCm
    max_model_len: int = 0  # the context the plan asks for (0: not known)
    engine_version: str | None = None  # None: the backend's pinned version; else the version a log names (check-log)


@frozen(kw_only=True)
class RuntimeOverheads:
    """An engine's own memory use beside weights and KV cache, per GPU, and how it budgets memory.

    ``memory_fraction_kind`` says what the engine's memory fraction is a fraction of: ``total``
    (vLLM's gpu_memory_utilization: of total GPU memory, including weights), ``weights_and_kv``
    (SGLang's mem_fraction_static: weights plus KV pool over total) or ``free_after_load``
    (TensorRT-LLM's free_gpu_memory_fraction: of what is free after the engine loaded).
    ``cuda_graph_in_budget`` is False when graph memory is taken outside the fraction.
    """

    engine_version: str
    activation_peak_bytes: int
    cuda_graph_bytes: int
    cuda_graph_in_budget: bool
    non_torch_bytes: int
    memory_fraction_kind: MemoryFractionKind
    default_memory_fraction: float
    kv_block_size_tokens: int
    assumptions: tuple[str, ...] = ()
    memory_fraction_note: str = ""  # what the engine does with its fraction at start-up (EXPLAIN.md), if it says


@frozen(kw_only=True)
class FlagReason:
    """One emitted setting with its reason, for EXPLAIN.md (``decision`` names the plan Decision behind it)."""

    flag: str
    value: str | None
    reason: str
    decision: str | None = None


@frozen(kw_only=True)
class Artifact:
    """A file a backend emits: a path relative to the output directory, its text and mode."""

    path: str
    content: str
    executable: bool = False
    description: str = ""


@frozen(kw_only=True)
class Emission:
    """Everything a backend produced for a plan."""

    artifacts: tuple[Artifact, ...]
    flags: tuple[FlagReason, ...] = ()
    decisions: tuple[Decision, ...] = ()
