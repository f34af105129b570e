"""The Deployment: what a backend receives to emit, built once by the core from the plan (``deployc.placement``).

Every fact a backend may read is a typed field here: the model to load, the GPU, the nodes, the operations
settings, the traffic, the pools with their layouts and serving knobs (each with the planner's Decisions),
the servers placed on nodes with their GPU ids, ports and share of the load, the container image, and the
backend's own ``[backends.NAME]`` options table.  Nothing here is a spec or planner type: renaming a spec
key or a planner field does not change this API (``CONTRACT_VERSION`` does when it changes).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

from attrs import field, frozen

from deployc.catalog import GPU, CheckpointQuant
from deployc.contract.backend import BackendInfo
from deployc.contract.decisions import Decision
from deployc.contract.kinds import ActivationDtype, KvCacheDtype, PlannedFormat
from deployc.spec.model import Percentiles, TokenDistribution

WorkloadKind = Literal["chat", "rag", "agent", "batch"]


@frozen(kw_only=True)
class Layout:
    """A parallel layout of one model replica (TP × PP GPUs) repeated DP times; EP for MoE experts."""

    tp: int
    pp: int
    dp: int
    ep: int = 1

    @property
    def gpus_per_replica(self) -> int:
        """GPUs holding one copy of the model."""
        return self.tp * self.pp

    @property
    def gpus_used(self) -> int:
        """GPUs the layout uses in total."""
        return self.tp * self.pp * self.dp

    @property
    def experts_across_replicas(self) -> bool:
        """MoE with expert parallelism and several data-parallel replicas: the experts are sharded across the
        replicas, so they must be one engine (vLLM's DP engine, TensorRT-LLM's attention data parallelism)."""
        return self.ep > 1 and self.dp > 1

    def label(self) -> str:
        """``TP4``, ``TP2×PP2``, ``TP1×DP2``, ``TP8×EP8``."""
        parts = [f"TP{self.tp}"]
        if self.pp > 1:
            parts.append(f"PP{self.pp}")
        if self.dp > 1:
            parts.append(f"DP{self.dp}")
        if self.ep > 1:
            parts.append(f"EP{self.ep}")
        return "×".join(parts)


@frozen(kw_only=True)
class Knobs:
    """Serving settings every engine has in some spelling; the backend translates them to flags.

    The planner's own type (``PoolPlan.knobs``): the Deployment carries it as planned.
    """

    dtype: ActivationDtype
    weights_format: PlannedFormat
    quantization: PlannedFormat | None  # what the engine is told (None: unquantized or read from the checkpoint)
    kv_cache_dtype: KvCacheDtype
    max_model_len: int
    max_num_seqs: int
    max_num_batched_tokens: int
    chunked_prefill: bool
    prefix_caching: bool
    cuda_graphs: bool
    custom_all_reduce: bool
    memory_fraction: float


@frozen(kw_only=True)
class Prediction:
    """What the planner predicts for one replica of a pool at the workload's concurrency."""

    ttft_ms: float
    itl_ms: float
    tokens_per_s: float
    batch_size: float


@frozen(kw_only=True)
class Latency:
    """A simulated latency distribution, ms."""

    p50: float
    p90: float
    p95: float
    p99: float
    mean: float

    def at(self, name: str) -> float:
        """The percentile named ``p50``, ``p90``, ``p95`` or ``p99``."""
        return float(getattr(self, name))


@frozen(kw_only=True)
class SimulatedLoad:
    """The serving simulation's result for one replica of a pool (None when the plan ran no simulation)."""

    requests_per_s: float
    mean_running: float
    peak_running: int
    ttft_ms: Latency
    tpot_ms: Latency
    itl_ms: Latency


@frozen(kw_only=True)
class Pool:
    """One serving pool: its layout, knobs, share of the traffic and the planner's decisions about it.

    ``decisions`` are the pool's own, by their bare id (``max_num_seqs``, ``kv_cache_dtype``...): the plan's
    ``<pool>.<id>`` naming is resolved here once, falling back to the plan-wide decision of that id.
    ``decode_graph_max_batch`` is the backend's own overhead answer at the pool's knobs (the largest decode
    batch captured as a CUDA graph; None with graphs off or when the backend states none); ``flow`` is its
    capability answer's flow for the pool's precision (None: the backend states none).
    """

    name: str
    share: float  # of the GPUs the planner gave this pool
    traffic_share: float  # of the requests (its request class's share; 1 without classes)
    layout: Layout
    pp_layer_split: tuple[int, ...]
    knobs: Knobs
    performance: Prediction
    prompt_tokens: TokenDistribution
    output_tokens: TokenDistribution
    simulated: SimulatedLoad | None = None
    decisions: Mapping[str, Decision] = field(factory=dict)
    decode_graph_max_batch: int | None = None  # contract 1.1
    flow: str | None = None  # contract 1.1

    def decision(self, *ids: str) -> Decision | None:
        """The first of these decisions the planner made for this pool (or plan-wide), else None."""
        for decision_id in ids:
            found = self.decisions.get(decision_id)
            if found is not None:
                return found
        return None


@frozen(kw_only=True)
class ServerLoad:
    """The traffic one server is planned to take: its pool's share divided among the pool's servers."""

    traffic_share: float  # of all requests
    concurrency: int | None  # clients kept in flight (closed loop), None with an arrival rate
    request_rate_per_s: float | None  # arrivals per second (open loop), None with a concurrency

    @classmethod
    def divide(cls, workload: Workload, pool: Pool, servers: int) -> ServerLoad:
        """The pool's traffic divided evenly among its ``servers`` (at least one client each)."""
        share = pool.traffic_share
        if workload.concurrency is not None:
            return cls(traffic_share=share / servers, request_rate_per_s=None,
                       concurrency=max(1, math.ceil(workload.concurrency * share / servers)))
        return cls(traffic_share=share / servers, concurrency=None,
                   request_rate_per_s=(workload.request_rate_per_s or 1.0) * share / servers)


@frozen(kw_only=True)
class Server:
    """One engine process group serving one API port, and where it runs (possibly spanning nodes)."""

    pool: Pool
    replica: int  # its index among its pool's servers
    nodes: tuple[int, ...]
    gpu_ids: tuple[int, ...]  # device ids used on each of its nodes
    port: int
    name: str
    engine_dp: int  # data-parallel ranks inside this server
    load: ServerLoad

    @property
    def spans_nodes(self) -> bool:
        """Whether one server runs across several nodes."""
        return len(self.nodes) > 1

    @property
    def gpus(self) -> int:
        """GPUs on each of its nodes."""
        return len(self.gpu_ids)

    @property
    def local_dp(self) -> int:
        """Data-parallel ranks of the server on each of its nodes."""
        return math.ceil(self.engine_dp / len(self.nodes))


@frozen(kw_only=True)
class AttentionFacts:
    """What decides which attention kernels can run the model (1.3): engines pick their attention backend from these.

    The defaults describe plain multi-head/grouped-query attention with nothing the kernels must add.
    """

    head_dim: int = 0  # per-head K/V size (0: not stated)
    mla: bool = False  # multi-head latent attention (DeepSeek-V2/V3): the engines' MLA backends
    sinks: bool = False  # one learned sink logit per head (gpt-oss)
    sliding_window: bool = False  # some layers attend to a window only
    logit_softcap: float | None = None  # tanh soft-capping of the attention scores (Gemma 2's 50.0), None: off
    final_logit_softcap: float | None = None  # of the LM-head logits (Gemma 2's 30.0), applied outside attention


@frozen(kw_only=True)
class ModelRef:
    """The model to load (where from, under which name) and the architecture facts a backend may need."""

    id: str  # Hugging Face repo id or path
    revision: str | None
    served_name: str | None  # the name clients ask for, when the spec sets one (engines default to the id)
    trust_remote_code: bool
    name: str  # catalog name of the architecture
    family: str
    checkpoint_quant: CheckpointQuant | None
    attention: AttentionFacts = AttentionFacts()  # 1.3


@frozen(kw_only=True)
class Hardware:
    """The nodes and their GPUs."""

    nodes: int
    gpus_per_node: int
    gpu_ids: tuple[int, ...] | None  # device ids the spec allows, else None (all of them)
    network: str  # between nodes: none | ethernet-... | infiniband-... | roce-...
    network_interface: str | None
    ib_hcas: tuple[str, ...]
    intra_node_link: str  # link id between GPUs of a node (nvlink4, pcie5, infinity-fabric...)
    reserved_memory_bytes: int  # held by other processes on each GPU
    cooling: str  # datacenter | liquid | passive
    ambient_c: float  # air temperature at the GPU intake, °C


@frozen(kw_only=True)
class Operations:
    """How the deployment is operated."""

    port: int  # first API port on each node
    model_cache: str  # host path of the Hugging Face cache
    hf_token_env: str  # name of the environment variable holding the Hugging Face token (never its value)
    trusted_extra_args: tuple[str, ...] | None


@frozen(kw_only=True)
class Workload:
    """The traffic the deployment is planned for."""

    kind: WorkloadKind
    prompt_tokens: TokenDistribution
    output_tokens: TokenDistribution
    concurrency: int | None
    request_rate_per_s: float | None
    shared_prefix_tokens: int


@frozen(kw_only=True)
class Slo:
    """Latency targets (ms), when the spec sets them."""

    ttft_ms: Percentiles | None
    itl_ms: Percentiles | None
    tpot_ms: Percentiles | None


@frozen(kw_only=True)
class ImageRef:
    """The container image, computed once: the spec's override, else the backend's image for this GPU."""

    repository: str
    tag: str
    pinned_tag: str  # the tag the backend's flags were checked against (for this GPU's build)
    tag_override: str | None  # the spec's image_tag when it differs from the pinned one

    @property
    def reference(self) -> str:
        """``repository:tag``."""
        return f"{self.repository}:{self.tag}"


@frozen(kw_only=True)
class Deployment:
    """Everything a backend receives to emit one deployment."""

    name: str  # the spec's name (DNS-safe)
    spec_file: str
    deployc_version: str
    backend: BackendInfo
    model: ModelRef
    gpu: GPU
    hardware: Hardware
    operations: Operations
    workload: Workload
    slo: Slo
    image: ImageRef
    pools: tuple[Pool, ...]
    servers: tuple[Server, ...]
    decisions: tuple[Decision, ...]  # every decision of the plan, for EXPLAIN.md
    options: Mapping[str, Any] = field(factory=dict)  # the backend's validated [backends.NAME] table

    @property
    def primary(self) -> Pool:
        """The first pool (the only one unless the workload has request classes)."""
        return self.pools[0]

    @property
    def nodes_used(self) -> int:
        """How many nodes the servers occupy."""
        return max((max(s.nodes) for s in self.servers), default=0) + 1

    def decision(self, decision_id: str) -> Decision | None:
        """A plan-wide decision by its id (``backend``, ``precision``...), else None."""
        return next((d for d in self.decisions if d.id == decision_id), None)

    def pool_servers(self, pool: Pool) -> tuple[Server, ...]:
        """The servers of one pool."""
        return tuple(s for s in self.servers if s.pool.name == pool.name)

    def target_facts(self) -> TargetFacts:
        """The facts the capability and layout hooks were given, for a backend that re-reads its own verdicts."""
        model = self.model
        return TargetFacts(gpu=self.gpu, model=ModelFacts(name=model.name, family=model.family,
                                                          checkpoint_quant=model.checkpoint_quant,
                                                          attention=model.attention),
                           nodes=self.hardware.nodes, gpus_per_node=self.hardware.gpus_per_node, options=self.options)


@frozen(kw_only=True)
class ModelFacts:
    """The model architecture facts a capability or layout answer may depend on."""

    name: str
    family: str
    checkpoint_quant: CheckpointQuant | None
    attention: AttentionFacts = AttentionFacts()  # 1.3


@frozen(kw_only=True)
class TargetFacts:
    """What ``deployc_capability`` and ``deployc_layout_support`` are told about the spec being planned."""

    gpu: GPU
    model: ModelFacts
    nodes: int
    gpus_per_node: int
    options: Mapping[str, Any] = field(factory=dict)  # the backend's validated [backends.NAME] table
