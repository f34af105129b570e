"""What a backend plugin tells deployc about itself and its engine, as plain frozen data."""

from __future__ import annotations

from typing import Any, Literal

from attrs import field, frozen

from deployc.contract.decisions import Decision

MemoryFractionKind = Literal["total", "weights_and_kv", "free_after_load"]
Batching = Literal["mixed", "prefill_first"]
KvAdmission = Literal["prompt", "prompt_and_decaying_output", "prompt_and_max_output"]
Preemption = Literal["newest_recompute", "fewest_output_recompute", "never"]
DataParallel = Literal["servers", "one_server", "one_server_per_node"]
# Where an engine puts the layers left over when pipeline stages cannot hold L // pp each: every stage holds
# L // pp decoder layers and the L % pp others go one each to the stages before the last, from the
# second-to-last back (``extra_before_last``), to the first stages (``extra_first``) or to the last stages
# (``extra_last``).  The first stage also holds the embedding, the last the final norm and the LM head.
PpLayerSplit = Literal["extra_before_last", "extra_first", "extra_last"]


@frozen(kw_only=True)
class PlacementPolicy:
    """How the core places a pool's data-parallel replicas into servers (``deployc.placement``).

    ``data_parallel``: ``servers`` runs each replica as its own server (own GPUs, own port: a balancer
    spreads requests); ``one_server`` keeps every replica of the pool inside one server (one router,
    one port, e.g. SGLang's ``--dp-size``); ``one_server_per_node`` merges the replicas that land on the
    same node into one server (vLLM's ``--data-parallel-size`` behind one API port).
    ``expert_parallel_one_server``: with expert parallelism (EP > 1) and DP > 1 every replica is one
    server, across nodes if need be, so the experts are sharded across all of them.
    """

    data_parallel: DataParallel = "servers"
    expert_parallel_one_server: bool = True


@frozen(kw_only=True)
class VendorImage:
    """The backend's container image for one GPU vendor when it differs from the default one.

    ``tag_by_gfx`` names a tag per AMD ISA (``gfx942``...) when the build is per GPU family;
    ``tag`` is used for any other.
    """

    image: str
    tag: str
    tag_by_gfx: dict[str, str] = field(factory=dict)


# The traffic for which the backend-choice rules prefer a backend (docs/plugins.md, "Competing under auto").
Suited = Literal["general", "shared_prefixes", "stable_high_volume"]


@frozen(kw_only=True)
class SchedulerPolicy:
    """How an engine's scheduler batches and admits requests, for deployc's serving simulation.

    ``batching``: ``mixed`` runs prompt chunks and decodes in one step (vLLM V1, TensorRT-LLM
    in-flight batching); ``prefill_first`` runs a prefill step alone whenever one can form and
    the decodes wait (SGLang without mixed chunks). ``kv_admission``: what a waiting request
    must find free in the KV cache to be admitted: its whole prompt (vLLM), its prompt plus a
    decaying estimate of every running request's remaining output (SGLang's new_token_ratio),
    or its prompt plus its full max_tokens, reserved to completion (TensorRT-LLM
    GUARANTEED_NO_EVICT). ``preemption``: who is evicted and recomputed when decode runs out of
    KV blocks. ``max_prefill_tokens`` caps prompt tokens per prefill step beside the chunk size
    (SGLang's max_prefill_tokens); ``request_overhead_ms`` is what a request spends outside the
    scheduler's steps before its first token reaches the client (HTTP, tokenisation, output
    processing): the default, 35 ms, is the median gap between measured and simulated TTFT of the
    calibration rows at concurrency ≤ 8 in ``bench/data/load_cases.json`` (``bench/load_accuracy.py
    --overhead`` prints it); ``resume_from_cache``: a preempted request's full KV blocks go back to
    the prefix cache's free queue behind every block already free, and the request hits those not
    yet reused when it resumes (vLLM V1 ``block_pool.free_blocks`` appends hashed blocks to the
    tail, ``get_new_blocks`` pops from the head), so it recomputes only what was evicted;
    ``source`` cites where the policy was read.
    """

    batching: Batching = "mixed"
    kv_admission: KvAdmission = "prompt"
    preemption: Preemption = "newest_recompute"
    max_prefill_tokens: int | None = None
    request_overhead_ms: float = 35.0
    resume_from_cache: bool = False
    source: str = "deployc default: continuous batching with chunked prefill, as vLLM V1 schedules"


@frozen(kw_only=True)
class Strength:
    """Traffic the backend serves best, and why, for ``backend = "auto"``.

    ``when``: ``general`` (the choice when no other rule applies: no compile step, wide support),
    ``shared_prefixes`` (agent traffic or prompts mostly a shared prefix) or ``stable_high_volume``
    (one model that rarely changes, at high volume).  ``reason`` completes the backend decision's
    reason after the rule's own words (``"... : " + reason``).
    """

    when: Suited
    reason: str


@frozen(kw_only=True)
class EngineBuild:
    """A flow of the backend that compiles an engine per model and configuration before it serves.

    Selected by ``option = value`` in the spec's ``[backends.NAME]`` table.  When selected, a model
    that changes more often than quarterly excludes the backend (``change_cost`` says why), and so
    does a fleet of several models (``per_model`` says why).
    """

    option: str
    value: str
    change_cost: str
    per_model: str


@frozen(kw_only=True)
class BackendInfo:
    """A backend's identity and pinned engine.

    ``scheduler`` says how the engine schedules requests (the serving simulation follows it).
    ``pp_layer_split`` says where the engine puts the layers left over by an uneven pipeline split
    (:data:`PpLayerSplit`): the planner's per-stage weights, KV cache and reported split follow it.
    ``gpu_vendors`` lists the GPU vendors the engine runs on (lower case, ``nvidia``, ``amd``): the core
    refuses the backend for another vendor's GPU.  ``placement`` says how its servers are placed;
    ``vendor_images`` names the image built for a vendor other than the default (``amd``: a ROCm build).
    ``options_schema`` is the JSON Schema of the ``[backends.NAME]`` table (draft 2020-12,
    an object schema); deployc merges it into the spec schema under that name.

    What ``backend = "auto"`` weighs (every backend on the same terms): ``gpu_vendors`` (lower
    case; a GPU of another vendor excludes the backend), ``vendor_lock_in`` (the engine exists
    for NVIDIA GPUs only by design: ``operations.nvidia_lock_in_ok = false`` excludes it),
    ``strengths`` (the traffic it is preferred for), ``engine_build`` (a compile-per-model flow)
    and ``model_change_cost`` (what each model change costs beyond loading it, without an
    engine build: non-empty ranks the backend last when the model changes more often than
    quarterly, with this text as the reason).
    """

    name: str
    engine: str
    engine_version: str
    image: str
    image_tag: str
    summary: str
    gpu_vendors: tuple[str, ...] = ("nvidia",)
    scheduler: SchedulerPolicy = SchedulerPolicy()
    placement: PlacementPolicy = PlacementPolicy()
    pp_layer_split: PpLayerSplit = "extra_before_last"  # contract 1.1
    vendor_images: dict[str, VendorImage] = field(factory=dict)
    vendor_lock_in: bool = False
    strengths: tuple[Strength, ...] = ()
    engine_build: EngineBuild | None = None
    model_change_cost: str = ""
    options_schema: dict[str, Any] = field(factory=lambda: {"type": "object", "additionalProperties": False})


@frozen(kw_only=True)
class Capability:
    """Whether an engine can run a precision on a GPU, and how (the kernel), or why not.

    ``flow``: which of the backend's flows runs it, in the backend's own words (TensorRT-LLM: ``pytorch``, or
    ``engine``, its ``engine_build`` value), when it has several.  The planner keeps the chosen precision's
    answer on the pool (``Pool.flow``), so the emitter follows the verdict instead of deciding it again.
    """

    supported: bool
    reason: str
    kernel: str | None = None
    alternative: str | None = None
    flow: str | None = None  # contract 1.1


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
    ``decode_graph_max_batch``: the largest decode batch the engine captures a CUDA graph for at the
    query's ``max_num_seqs`` (None: graphs off, or the backend does not state one).  The planner asks once
    more at the pool's final knobs and keeps that answer on the pool (``Pool.decode_graph_max_batch``),
    so a backend that writes the size into its command line reads it there instead of computing it again.
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
    decode_graph_max_batch: int | None = None  # contract 1.1


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
