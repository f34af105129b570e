"""The spec language, version 1, as frozen attrs classes.

These classes are the source of truth for the TOML spec: the JSON Schema in
``schemas/deployc.schema.json`` and ``docs/spec.md`` are generated from them.
"""

from __future__ import annotations

from typing import Any, Literal

from attrs import frozen

from deployc.spec.fields import spec_field

# A DNS label: safe as a container name, a Kubernetes object name and a file name.
NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
# Environment variable names: what we reference secrets by.
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
# No control characters (newlines, tabs, escapes) in anything that may reach a command line.
PRINTABLE_PATTERN = r"^[^\x00-\x1f\x7f]*$"
# A value passed to an engine as an argument: printable, and not starting with "-" (it would read as a flag).
ARGUMENT_PATTERN = r"^[^-\x00-\x1f\x7f][^\x00-\x1f\x7f]*$"
# A host directory mounted into containers: absolute, no ":" (docker's --volume separator), printable.
HOST_PATH_PATTERN = r"^/[^\x00-\x1f\x7f:]*$"

Quantization = Literal["auto", "none", "fp8", "int8", "awq", "gptq", "mxfp4", "nvfp4"]
Interconnect = Literal[
    "auto", "none", "pcie3", "pcie4", "pcie5", "pcie6", "nvlink-bridge", "nvlink3", "nvlink4", "nvlink5",
    "infinity-fabric",
]
Network = Literal[
    "none", "ib-hdr", "ib-ndr", "ib-xdr", "roce-100g", "roce-200g", "roce-400g",
    "eth-10g", "eth-25g", "eth-100g", "eth-200g", "eth-400g",
]


@frozen(kw_only=True)
class TokenDistribution:
    """A length distribution in tokens: the mean and the tail."""

    mean: int = spec_field("Mean length in tokens.", example=1000, minimum=1, maximum=10_000_000)
    p99: int | None = spec_field(
        "99th percentile length in tokens (defaults to max, else 2 × mean).", default=None,
        example=4000, minimum=1, maximum=10_000_000,
    )
    max: int | None = spec_field(
        "Largest length a request may have, in tokens.", default=None, example=8000,
        minimum=1, maximum=10_000_000,
    )

    @property
    def p99_tokens(self) -> int:
        """The p99 if given, else the max, else twice the mean (stated as an assumption)."""
        if self.p99 is not None:
            return self.p99
        if self.max is not None:
            return self.max
        return 2 * self.mean

    @property
    def max_tokens(self) -> int:
        """The max if given, else the p99 figure."""
        return self.max if self.max is not None else self.p99_tokens


@frozen(kw_only=True)
class Percentiles:
    """A latency target in milliseconds."""

    p50: float | None = spec_field("Median target, ms.", default=None, example=500, exclusiveMinimum=0,
                                   maximum=3_600_000)
    p90: float | None = spec_field("90th percentile target, ms.", default=None, example=1000,
                                   exclusiveMinimum=0, maximum=3_600_000)
    p95: float | None = spec_field("95th percentile target, ms.", default=None, example=1500,
                                   exclusiveMinimum=0, maximum=3_600_000)
    p99: float | None = spec_field("99th percentile target, ms.", default=None, example=2000,
                                   exclusiveMinimum=0, maximum=3_600_000)

    def given(self) -> tuple[tuple[str, float], ...]:
        """The percentiles this target names, lowest first: ``(("p50", 500.0), ("p99", 2000.0))``."""
        named = (("p50", self.p50), ("p90", self.p90), ("p95", self.p95), ("p99", self.p99))
        return tuple((name, float(value)) for name, value in named if value is not None)

    def tail(self) -> tuple[str, float] | None:
        """The highest percentile given (the one a per-step budget must meet), or None."""
        given = self.given()
        return given[-1] if given else None


@frozen(kw_only=True)
class ModelSection:
    """What to serve."""

    id: str = spec_field(
        "A catalog name (`deployc catalog models`), a Hugging Face repo id (`org/name`), or a path "
        "(relative to the spec) to a local `config.json` or a directory holding one.",
        example="meta-llama/Llama-3.1-70B-Instruct", minLength=1, maxLength=256, pattern=ARGUMENT_PATTERN,
    )
    config: str | None = spec_field(
        "Path (relative to the spec) to a `config.json`, or a directory holding one, to plan from instead of "
        "resolving `id` (offline planning, private or pre-quantized checkpoints). The engine still serves `id`.",
        default=None, example="models/llama-3.1-70b-awq/config.json", minLength=1, maxLength=1024,
        pattern=PRINTABLE_PATTERN,
    )
    revision: str | None = spec_field(
        "Hugging Face revision (branch, tag or commit) to serve.", default=None, example="main",
        minLength=1, maxLength=128, pattern=r"^[A-Za-z0-9._][A-Za-z0-9._/-]*$",
    )
    dtype: Literal["auto", "bfloat16", "float16"] = spec_field(
        "Activation and unquantized-weight dtype. `auto` takes the checkpoint's dtype, or float16 on "
        "GPUs without bfloat16 (Turing, Volta).", default="auto",
    )
    quantization: Quantization = spec_field(
        "Weight quantization. `auto` keeps the checkpoint's format unless the model does not fit or "
        "the goal favours FP8 on GPUs with native FP8; `none` serves unquantized weights.",
        default="auto",
    )
    kv_cache_dtype: Literal["auto", "bfloat16", "float16", "fp8"] = spec_field(
        "KV-cache element type. `auto` uses the activation dtype, or FP8 where the GPU has native FP8 and "
        "the cache would not fit otherwise, or fits but is short for the simulated load (preemptions, or full "
        "at its peak) and with FP8 the plan serves (or misses by at least a tenth less).", default="auto",
    )
    max_context_tokens: int | None = spec_field(
        "Longest sequence (prompt + output) to serve. Defaults to what the workload needs, never more "
        "than the model's limit or the KV capacity.", default=None, example=8192, minimum=16,
        maximum=10_000_000,
    )
    served_name: str | None = spec_field(
        "Name clients use in the OpenAI-compatible API (defaults to the model id).", default=None,
        example="llama-70b", minLength=1, maxLength=128, pattern=ARGUMENT_PATTERN,
    )
    trust_remote_code: bool = spec_field(
        "Allow the engine to run code shipped with the model repository.", default=False,
    )


# Compute capabilities of the NVIDIA architectures deployc plans (Turing sm_75 onwards).
COMPUTE_CAPABILITY_PATTERN = r"^(7\.5|8\.[0679]|9\.0|10\.[03]|12\.[01])$"


@frozen(kw_only=True)
class CustomGpu:
    """A GPU the catalog lacks, described from its spec sheet (dense rates: no 2:4 sparsity)."""

    memory_gib: float = spec_field("Memory per GPU as nvidia-smi reports it (MiB / 1024), GiB.", example=15.57,
                                   minimum=1, maximum=4096)
    bandwidth_gb_s: float = spec_field("Memory bandwidth, GB/s (10^9 B/s).", example=716.8, minimum=10,
                                       maximum=100_000)
    bf16_tflops: float = spec_field("Dense BF16 tensor throughput (FP16 on a GPU without BF16), TFLOPS.",
                                    example=97.5, minimum=0.1, maximum=100_000)
    fp8_tflops: float | None = spec_field("Dense FP8 tensor throughput, TFLOPS (compute capability 8.9 or newer).",
                                          default=None, example=195.0, minimum=0.1, maximum=200_000)
    compute_capability: str = spec_field("CUDA compute capability, major.minor.", example="8.9",
                                         pattern=COMPUTE_CAPABILITY_PATTERN)
    tdp_w: float | None = spec_field("Board power, W (needed for power-limit advice).", default=None, example=320,
                                     minimum=10, maximum=5000)
    pcie_gen: int = spec_field("PCIe generation of the card's link.", default=4, minimum=3, maximum=6)


@frozen(kw_only=True)
class HardwareSection:
    """Where it runs."""

    gpu: str = spec_field(
        "GPU type: a catalog name, an alias, or the name `nvidia-smi` prints.", example="H100 SXM",
        minLength=1, maxLength=128, pattern=PRINTABLE_PATTERN,
    )
    gpus_per_node: int = spec_field("GPUs in each node.", default=1, example=8, minimum=1, maximum=72)
    nodes: int = spec_field("Number of nodes.", default=1, example=1, minimum=1, maximum=256)
    interconnect: Interconnect = spec_field(
        "GPU-to-GPU link inside a node. `auto` takes the GPU's own (NVSwitch NVLink on SXM boards, "
        "PCIe on PCIe cards, bridged or not); `nvlink-bridge` states a bridge between pairs of PCIe cards; "
        "`infinity-fabric` is the xGMI mesh of AMD Instinct OAM boards (the `auto` choice on MI300X, MI325X, "
        "MI355X).", default="auto",
    )
    network: Network = spec_field(
        "Network between nodes, the speed of one port: InfiniBand HDR/NDR/XDR, RoCE or Ethernet. Each node has one "
        "such NIC per GPU unless `ib_hcas` lists its HCAs.",
        default="none",
    )
    reserved_memory_gib: float = spec_field(
        "GPU memory already taken on each GPU by other processes, GiB.", default=0.0, example=2.0,
        minimum=0, maximum=4096,
    )
    gpu_ids: tuple[int, ...] | None = spec_field(
        "Device indices to use on each node (default: all, 0..gpus_per_node-1).", default=None,
        example=[0, 1], minItems=1, maxItems=72,
    )
    network_interface: str | None = spec_field(
        "Network interface for NCCL's bootstrap and socket traffic (NCCL_SOCKET_IFNAME).", default=None,
        example="eth0", pattern=r"^[A-Za-z0-9_.:^=,-]{1,64}$",
    )
    ib_hcas: tuple[str, ...] = spec_field(
        "InfiniBand HCAs for NCCL (NCCL_IB_HCA), e.g. mlx5_0. On InfiniBand and RoCE the planner sizes the "
        "bandwidth between nodes from their count (one `network` port each, shared by the node's GPUs).",
        default=(), example=["mlx5_0", "mlx5_1"],
        maxItems=64, items={"type": "string", "pattern": r"^[A-Za-z0-9_.:^=-]{1,64}$"},
    )
    custom: CustomGpu | None = spec_field(
        "Describes `gpu` when the catalog lacks it (`deployc catalog gpus`); the planner uses these facts instead.",
        default=None,
    )


@frozen(kw_only=True)
class RequestClass:
    """A share of the traffic with its own lengths (for mixed short/long traffic)."""

    name: str = spec_field("Class name.", example="short", pattern=NAME_PATTERN)
    share: float = spec_field("Fraction of requests in this class (shares sum to 1).", example=0.8,
                              exclusiveMinimum=0, maximum=1)
    prompt_tokens: TokenDistribution = spec_field("Prompt lengths of this class.")
    output_tokens: TokenDistribution = spec_field("Output lengths of this class.")


@frozen(kw_only=True)
class WorkloadSection:
    """The traffic to serve."""

    kind: Literal["chat", "rag", "agent", "batch"] = spec_field(
        "Traffic shape: chat, retrieval-augmented (long prompts), agent (multi-step, heavy prefix reuse) "
        "or offline batch.", default="chat",
    )
    prompt_tokens: TokenDistribution = spec_field("Prompt (input) lengths.")
    output_tokens: TokenDistribution = spec_field("Output (generated) lengths.")
    concurrency: int | None = spec_field(
        "Requests in flight at once (give this or request_rate_per_s).", default=None, example=64,
        minimum=1, maximum=1_000_000,
    )
    request_rate_per_s: float | None = spec_field(
        "Arrival rate in requests per second (give this or concurrency).", default=None, example=10,
        exclusiveMinimum=0, maximum=1_000_000,
    )
    shared_prefix_tokens: int = spec_field(
        "Tokens at the start of prompts shared across requests (system prompt, tool definitions).",
        default=0, example=1500, minimum=0, maximum=10_000_000,
    )
    classes: tuple[RequestClass, ...] = spec_field(
        "Optional request classes for mixed traffic; deployc plans a pool per class.", default=(),
        maxItems=8,
    )


@frozen(kw_only=True)
class SloSection:
    """Latency targets and the optimisation goal."""

    ttft_ms: Percentiles | None = spec_field("Time-to-first-token targets, ms.", default=None)
    itl_ms: Percentiles | None = spec_field(
        "Inter-token latency targets, ms: every gap between two streamed tokens (steps carrying a prompt chunk "
        "make the tail).", default=None)
    tpot_ms: Percentiles | None = spec_field(
        "Time-per-output-token targets, ms: per request, (end-to-end − TTFT) / (output tokens − 1), as "
        "`vllm bench serve` reports it.", default=None)
    goal: Literal["latency", "throughput", "cost"] = spec_field(
        "What to optimise once the targets are met.", default="throughput",
    )
    gpu_hour_usd: float | None = spec_field(
        "Price of one GPU-hour in USD, for cost figures.", default=None, example=2.5, minimum=0,
        maximum=10_000,
    )


@frozen(kw_only=True)
class OperationsSection:
    """How the deployment is run."""

    backend: str = spec_field(
        "Inference engine: `auto` or an installed backend name (`deployc backends`).", default="auto",
        example="vllm", pattern=r"^[a-z][a-z0-9_-]{0,31}$",
    )
    model_change: Literal["daily", "weekly", "monthly", "quarterly", "rarely"] = spec_field(
        "How often the served model changes. Engines with a compile step (TensorRT-LLM) pay it each time.",
        default="monthly",
    )
    models: Literal["single", "multi"] = spec_field(
        "One model per deployment, or several models sharing the fleet.", default="single",
    )
    nvidia_lock_in_ok: bool = spec_field(
        "Whether NVIDIA-only engines (TensorRT-LLM) are acceptable.", default=True,
    )
    image: str | None = spec_field(
        "Container image repository, overriding the backend's (e.g. a registry mirror).", default=None,
        example="registry.example.com/vllm/vllm-openai", pattern=r"^[a-z0-9][a-z0-9._/:-]{0,254}$",
    )
    image_tag: str | None = spec_field(
        "Container image tag, overriding the backend's pinned tag.", default=None, example="v0.33.0",
        pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$",
    )
    port: int = spec_field("Port the OpenAI-compatible server listens on.", default=8000, minimum=1,
                           maximum=65535)
    model_cache: str = spec_field(
        "Host directory holding the Hugging Face cache, mounted into the container.",
        default="/var/cache/huggingface", example="/data/hf-cache", minLength=1, maxLength=1024,
        pattern=HOST_PATH_PATTERN,
    )
    hf_token_env: str = spec_field(
        "Name of the environment variable holding the Hugging Face token (its value is never written).",
        default="HF_TOKEN", pattern=ENV_NAME_PATTERN,
    )
    trusted_extra_args: tuple[str, ...] | None = spec_field(
        "Flags of `[backends.NAME] extra_args` that load code into the server or widen who can reach it "
        "(`--middleware`, `--tool-parser-plugin`, a `--chat-template` file, `--allowed-origins \"*\"`...), "
        "allowed on purpose. deployc refuses them otherwise (DPC022).", default=None, example=["--middleware"],
        maxItems=32, items={"type": "string", "pattern": r"^--[a-z0-9][a-z0-9-]{0,63}$"},
    )


@frozen(kw_only=True)
class EnvironmentSection:
    """The physical site."""

    cooling: Literal["datacenter", "liquid", "passive"] = spec_field(
        "Cooling: datacenter airflow, liquid, or passive / edge enclosure.", default="datacenter",
    )
    ambient_c: float = spec_field("Ambient air temperature at the GPU intake, °C.", default=25.0,
                                  minimum=-40, maximum=70)
    power_limit_w: float | None = spec_field(
        "Power limit already set on each GPU, W (default: the board's TDP).", default=None, minimum=10,
        maximum=5000,
    )


WeightsFormat = Literal["bf16", "fp16", "fp8", "int8", "awq", "gptq", "mxfp4", "nvfp4"]
Goal = Literal["latency", "throughput", "cost"]
WorkloadKind = Literal["chat", "rag", "agent", "batch"]


@frozen(kw_only=True)
class PlanSection:
    """Decisions pinned by the spec: the planner keeps each value given and explains what it would choose."""

    tp: int | None = spec_field(
        "Tensor-parallel size: GPUs that split each layer (within one node).", default=None, example=2,
        minimum=1, maximum=1024,
    )
    pp: int | None = spec_field(
        "Pipeline-parallel size: stages that split the layers.", default=None, example=1, minimum=1, maximum=1024,
    )
    dp: int | None = spec_field(
        "Data-parallel size: model replicas (tp × pp × dp GPUs are used).", default=None, example=1,
        minimum=1, maximum=1024,
    )
    ep: int | None = spec_field(
        "Expert-parallel size (mixture-of-experts models): 1, or tp × dp to shard the experts.", default=None,
        example=1, minimum=1, maximum=1024,
    )
    quantization: WeightsFormat | None = spec_field(
        "Weights format to serve: bf16 / fp16 (unquantized), fp8 (quantized at load); int8, awq, gptq, mxfp4 "
        "and nvfp4 need a checkpoint quantized in that format.", default=None, example="fp8",
    )
    kv_cache_dtype: Literal["bfloat16", "float16", "fp8"] | None = spec_field(
        "KV-cache element type.", default=None, example="fp8",
    )
    max_num_seqs: int | None = spec_field(
        "Sequences the engine runs at once per replica.", default=None, example=64, minimum=1, maximum=65536,
    )
    max_num_batched_tokens: int | None = spec_field(
        "Tokens per engine step (the chunked-prefill budget).", default=None, example=8192, minimum=1,
        maximum=10_000_000,
    )
    memory_fraction: float | None = spec_field(
        "The engine's memory fraction (vLLM gpu_memory_utilization, SGLang mem_fraction_static, TensorRT-LLM "
        "free_gpu_memory_fraction), in the engine's own meaning.", default=None, example=0.9,
        exclusiveMinimum=0, exclusiveMaximum=1,
    )
    max_model_len: int | None = spec_field(
        "Longest sequence (prompt + output) the engine accepts, tokens.", default=None, example=8192,
        minimum=16, maximum=10_000_000,
    )
    backend: str | None = spec_field(
        "Inference engine: an installed backend name (`deployc backends`); `--backend` on the command line "
        "overrides it.", default=None, example="vllm", pattern=r"^[a-z][a-z0-9_-]{0,31}$",
    )


@frozen(kw_only=True)
class Spec:
    """A deployc spec, version 1."""

    version: Literal[1] = spec_field("Spec language version.", example=1)
    name: str = spec_field(
        "Deployment name: lower-case letters, digits and dashes (used for containers, manifests).",
        example="llama70b-chat", pattern=NAME_PATTERN,
    )
    model: ModelSection = spec_field("The model to serve.")
    hardware: HardwareSection = spec_field("The GPUs and links.")
    workload: WorkloadSection = spec_field("The traffic.")
    slo: SloSection = spec_field("Latency targets and goal.", default=SloSection())
    operations: OperationsSection = spec_field("How it is operated.", default=OperationsSection())
    environment: EnvironmentSection = spec_field("The site.", default=EnvironmentSection())
    plan: PlanSection = spec_field(
        "Pinned planner decisions (layout, precision, serving knobs, backend), for every pool: each is checked "
        "against the model and GPUs, kept, and explained against what deployc would choose; a pinned plan that "
        "cannot be served fails (DPC307) with deployc's own choice as the fix.", default=PlanSection(),
    )
    backends: dict[str, dict[str, Any]] = spec_field(
        "Per-backend options, `[backends.NAME]`, validated by the schema fragment that backend provides.",
        factory=dict,
    )
