"""Plan → Deployment, once, for every backend: servers packed onto nodes, GPU ids, ports, per-server load.

The backend says how its data-parallel replicas become servers (:class:`~deployc.contract.PlacementPolicy`);
everything else is the same for every engine: servers are packed onto the spec's nodes in pool order, one
larger than a node spans whole nodes, each server on a host takes the next port from ``operations.port``,
and a pool's traffic is divided evenly among its servers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from deployc.contract.deployment import (
    AttentionFacts,
    Deployment,
    Hardware,
    ImageRef,
    ModelFacts,
    ModelRef,
    Operations,
    Pool,
    Prediction,
    Server,
    ServerLoad,
    SimulatedLoad,
    Slo,
    TargetFacts,
    Workload,
)

if TYPE_CHECKING:
    from deployc.catalog import GPU
    from deployc.catalog.arch import ModelArch
    from deployc.contract.backend import BackendInfo
    from deployc.contract.decisions import Decision
    from deployc.planner.plan import Plan
    from deployc.planner.types import PoolPlan
    from deployc.target import Target


class PlacementError(ValueError):
    """The plan's layouts do not fit the spec's nodes and GPUs."""


def vendor_supported(info: BackendInfo, gpu: GPU) -> bool:
    """Whether the backend's engine runs on the GPU's vendor (``BackendInfo.gpu_vendors``)."""
    return gpu.vendor.lower() in (v.lower() for v in info.gpu_vendors)


def attention_facts(model: ModelArch) -> AttentionFacts:
    """The architecture facts that decide which attention kernels an engine can run the model with."""
    return AttentionFacts(head_dim=model.head_dim, mla=model.uses_mla, sinks=model.attention_sinks,
                          sliding_window=model.has_sliding_window, logit_softcap=model.attn_logit_softcap,
                          final_logit_softcap=model.final_logit_softcap)


def target_facts(target: Target, backend: str) -> TargetFacts:
    """What the capability and layout hooks are told about the spec (the contract's view of a Target)."""
    model = target.model
    return TargetFacts(gpu=target.gpu, model=ModelFacts(name=model.name, family=model.family,
                                                        checkpoint_quant=model.checkpoint_quant,
                                                        attention=attention_facts(model)),
                       nodes=target.spec.hardware.nodes, gpus_per_node=target.spec.hardware.gpus_per_node,
                       options=target.spec.backends.get(backend) or {})


def image_ref(info: BackendInfo, target: Target) -> ImageRef:
    """The image: the spec's override, else the backend's build for this GPU's vendor (and AMD ISA)."""
    ops = target.spec.operations
    image, pinned = info.image, info.image_tag
    built = info.vendor_images.get(target.gpu.vendor.lower())
    if built is not None:
        image, pinned = built.image, built.tag_by_gfx.get(target.gpu.gfx_target or "", built.tag)
    override = ops.image_tag if ops.image_tag is not None and ops.image_tag != pinned else None
    return ImageRef(repository=ops.image or image, tag=ops.image_tag or pinned, pinned_tag=pinned,
                    tag_override=override)


def _pool(plan: Plan, pool: PoolPlan) -> Pool:
    """The contract's view of a pool: layout, typed knobs, lengths, prediction, its decisions by bare id."""
    workload = plan.target.spec.workload
    prompt, output, traffic = workload.prompt_tokens, workload.output_tokens, 1.0
    for cls in workload.classes:
        if cls.name == pool.name:
            prompt, output, traffic = cls.prompt_tokens, cls.output_tokens, cls.share
    decisions: dict[str, Decision] = {d.id: d for d in plan.decisions}
    prefix = f"{pool.name}."
    decisions.update({d.id[len(prefix):]: d for d in plan.decisions if d.id.startswith(prefix)})
    perf, serving = pool.performance, pool.serving
    simulated = None if serving is None else SimulatedLoad(
        requests_per_s=serving.requests_per_s / max(serving.replicas, 1),
        mean_running=serving.mean_running_per_replica, peak_running=serving.peak_running_per_replica,
        ttft_ms=serving.ttft_ms, tpot_ms=serving.tpot_ms, itl_ms=serving.itl_ms)
    return Pool(name=pool.name, share=pool.share, traffic_share=traffic, layout=pool.layout,
                pp_layer_split=pool.pp_layer_split, knobs=pool.knobs,
                performance=Prediction(ttft_ms=perf.ttft_ms, itl_ms=perf.itl_ms, tokens_per_s=perf.tokens_per_s,
                                       batch_size=perf.batch_size),
                prompt_tokens=prompt, output_tokens=output, simulated=simulated, decisions=decisions,
                decode_graph_max_batch=pool.decode_graph_max_batch, flow=pool.flow)


def _one_server(info: BackendInfo, pool: Pool) -> bool:
    """Whether every data-parallel replica of the pool runs inside one server."""
    layout = pool.layout
    if info.placement.data_parallel == "one_server":
        return True
    return info.placement.expert_parallel_one_server and layout.experts_across_replicas


def _group_on_hosts(servers: list[Server]) -> list[Server]:
    """Replicas of one pool on the same node become one server (``one_server_per_node``)."""
    out: list[Server] = []
    for server in servers:
        last = out[-1] if out else None
        if (last is not None and not last.spans_nodes and not server.spans_nodes and last.nodes == server.nodes):
            out[-1] = attrs.evolve(last, gpu_ids=last.gpu_ids + server.gpu_ids, engine_dp=last.engine_dp + 1)
        else:
            out.append(server)
    return out


class _Packer:
    """Hands out GPUs node by node, in order: a server fits the current node or starts a new one."""

    def __init__(self, nodes: int, per_node: int, device_ids: tuple[int, ...]):
        self.nodes, self.per_node, self.device_ids = nodes, per_node, device_ids
        self.node, self.used = 0, 0

    def take(self, pool: str, gpus: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        per_node = self.per_node
        nodes: tuple[int, ...]
        if gpus <= per_node:
            if self.used + gpus > per_node:
                self.node, self.used = self.node + 1, 0
            nodes, ids = (self.node,), self.device_ids[self.used:self.used + gpus]
            self.used += gpus
        else:
            if gpus % per_node:
                raise PlacementError(f"pool {pool!r}: {gpus} GPUs per server is not a whole number of "
                                     f"{per_node}-GPU nodes")
            if self.used:
                self.node, self.used = self.node + 1, 0
            span = gpus // per_node
            nodes, ids = tuple(range(self.node, self.node + span)), self.device_ids
            self.node += span
        if max(nodes) >= self.nodes:
            raise PlacementError(f"pool {pool!r} needs more than the spec's {self.nodes} node(s) of "
                                 f"{per_node} GPUs")
        return nodes, ids


def place(info: BackendInfo, pools: tuple[Pool, ...], hardware: Hardware, port: int, name: str,
          workload: Workload) -> tuple[Server, ...]:
    """Every server of every pool, packed onto the nodes in order, named, with its port and load."""
    device_ids = hardware.gpu_ids or tuple(range(hardware.gpus_per_node))
    packer = _Packer(hardware.nodes, hardware.gpus_per_node, device_ids)
    placeholder = ServerLoad(traffic_share=0.0, concurrency=None, request_rate_per_s=None)
    servers: list[Server] = []
    for pool in pools:
        layout = pool.layout
        engine_dp = layout.dp if _one_server(info, pool) else 1
        pool_servers: list[Server] = []
        for replica in range(layout.dp // engine_dp):
            nodes, ids = packer.take(pool.name, layout.tp * layout.pp * engine_dp)
            pool_servers.append(Server(pool=pool, replica=replica, nodes=nodes, gpu_ids=ids, port=0, name="",
                                       engine_dp=engine_dp, load=placeholder))
        if info.placement.data_parallel == "one_server_per_node":
            pool_servers = _group_on_hosts(pool_servers)
        servers += pool_servers
    ports_on_node: dict[int, int] = {}
    out: list[Server] = []
    for server in servers:
        count = sum(1 for s in servers if s.pool is server.pool)
        index = sum(1 for s in out if s.pool is server.pool)
        offset = ports_on_node.get(server.nodes[0], 0)
        ports_on_node[server.nodes[0]] = offset + 1
        parts = (name, server.pool.name if len(pools) > 1 else None, str(index) if count > 1 else None)
        out.append(attrs.evolve(server, replica=index, port=port + offset, name="-".join(p for p in parts if p),
                                load=ServerLoad.divide(workload, server.pool, count)))
    return tuple(out)


def deployment(plan: Plan) -> Deployment:
    """The Deployment the plan's backend receives (raises :class:`PlacementError` when the servers do not fit)."""
    target, info = plan.target, plan.backend
    if not vendor_supported(info, target.gpu):
        raise PlacementError(f"the {info.name} backend runs on {', '.join(info.gpu_vendors)} GPUs only; "
                             f"{target.gpu.name} is an {target.gpu.vendor} GPU")
    spec = target.spec
    hw, ops, model, w = spec.hardware, spec.operations, spec.model, spec.workload
    hardware = Hardware(nodes=hw.nodes, gpus_per_node=hw.gpus_per_node, gpu_ids=hw.gpu_ids, network=hw.network,
                        network_interface=hw.network_interface, ib_hcas=hw.ib_hcas,
                        intra_node_link=str(getattr(target.intra_node_link, "id", "")),
                        reserved_memory_bytes=target.reserved_memory_bytes, cooling=spec.environment.cooling,
                        ambient_c=spec.environment.ambient_c)
    workload = Workload(kind=w.kind, prompt_tokens=w.prompt_tokens, output_tokens=w.output_tokens,
                        concurrency=w.concurrency, request_rate_per_s=w.request_rate_per_s,
                        shared_prefix_tokens=w.shared_prefix_tokens)
    pools = tuple(_pool(plan, p) for p in plan.pools)
    options: dict[str, Any] = spec.backends.get(info.name) or {}
    return Deployment(
        name=spec.name, spec_file=target.spec_file, deployc_version=plan.deployc_version, backend=info,
        model=ModelRef(id=model.id, revision=model.revision, served_name=model.served_name,
                       trust_remote_code=model.trust_remote_code, name=target.model.name,
                       family=target.model.family, checkpoint_quant=target.model.checkpoint_quant,
                       attention=attention_facts(target.model)),
        gpu=target.gpu, hardware=hardware,
        operations=Operations(port=ops.port, model_cache=ops.model_cache, hf_token_env=ops.hf_token_env,
                              trusted_extra_args=ops.trusted_extra_args),
        workload=workload, slo=Slo(ttft_ms=spec.slo.ttft_ms, itl_ms=spec.slo.itl_ms, tpot_ms=spec.slo.tpot_ms),
        image=image_ref(info, target), pools=pools,
        servers=place(info, pools, hardware, ops.port, spec.name, workload),
        decisions=plan.decisions, options=options)
