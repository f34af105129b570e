"""The ``vllm serve`` argv of one server, each flag from a plan Decision, with its reason.

The argv is what follows the ``vllm/vllm-openai`` entrypoint (already ``vllm serve``): the
model first as a positional, then the flags, spelled in full as vLLM 0.33.0's parser has
them.  Each flag comes with a :class:`~deployc.contract.backend.FlagReason` naming the Decision
behind it; its first sentence is also the comment above the flag in the scripts.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from attrs import frozen

from deployc.contract import GIB, FlagReason, Server
from deployc.contract.toolkit import EnvRef, Word
from deployc.contract.toolkit.agents import agent_flags
from deployc.contract.toolkit.argv import FlagBuilder
from deployc.contract.toolkit.shell import ArgGroup
from deployc_vllm import ENGINE_VERSION
from deployc_vllm.attention import softcap_flag
from deployc_vllm.options import VllmOptions
from deployc_vllm.parsers import agent_parsers
from deployc_vllm.rocm import attention_values

if TYPE_CHECKING:
    from deployc.contract import Deployment, Pool

MASTER_PORT = 29501  # --master-port default in the 0.33.0 manifest; stated so every node agrees
DP_RPC_PORT = 13345
HEAD_ADDR = EnvRef("VLLM_HEAD_ADDR", "set VLLM_HEAD_ADDR to the address of the head node (node-0)")
# The flags that join one engine's nodes (vLLM 0.33.0's native multi-node launch), in the order they are added.
NODE_FLAGS = ("--nnodes", "--node-rank", "--master-addr", "--master-port",
              "--data-parallel-size-local", "--data-parallel-start-rank", "--data-parallel-address",
              "--data-parallel-rpc-port", "--headless")

# Flags deployc derives from the plan; extra_args may not repeat them.
OWNED_FLAGS = frozenset({
    "--model", "--served-model-name", "--revision", "--port", "--host", "--tensor-parallel-size", "-tp",
    "--pipeline-parallel-size", "-pp", "--data-parallel-size", "-dp", "--enable-expert-parallel", "-ep",
    "--disable-expert-parallel", "--max-model-len", "--gpu-memory-utilization", "--device-memory-utilization",
    "--max-num-seqs", "--max-num-batched-tokens", "--enable-chunked-prefill", "--disable-chunked-prefill",
    "--enable-prefix-caching", "--disable-prefix-caching", "--kv-cache-dtype", "--quantization", "-q", "--dtype",
    "--enforce-eager", "--no-enforce-eager", "--disable-custom-all-reduce", "--enable-custom-all-reduce",
    "--trust-remote-code", "--no-trust-remote-code", "--distributed-executor-backend", "--nnodes", "-n",
    "--node-rank", "-r", "--master-addr", "--master-port", "--headless", "--data-parallel-size-local", "-dpl",
    "--data-parallel-start-rank", "-dpr", "--data-parallel-address", "-dpa", "--data-parallel-rpc-port", "-dpp",
})


class LaunchError(ValueError):
    """A server the node scripts cannot launch as placed."""


@frozen(kw_only=True)
class NodeRole:
    """Which node of a server this argv is for (rank and head address may be environment references)."""

    nnodes: int = 1
    rank: Word = "0"
    head: bool = True
    head_addr: Word = HEAD_ADDR


@frozen(kw_only=True)
class ServeCommand:
    """The argv, the same words grouped one flag per line with short reasons, and the full reasons."""

    argv: tuple[Word, ...]
    groups: tuple[ArgGroup, ...]
    flags: tuple[FlagReason, ...]


def split_flags(args: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Arguments grouped as flag + its values (a leading value stands alone)."""
    groups: list[list[str]] = []
    for arg in args:
        if arg.startswith("--") or not groups:
            groups.append([arg])
        else:
            groups[-1].append(arg)
    return [tuple(g) for g in groups]


def format_fraction(value: float) -> str:
    """A memory fraction rounded DOWN to 4 decimals (rounding up could ask for memory that is not free)."""
    floored = math.floor(value * 10_000 + 1e-9) / 10_000
    return f"{floored:.4f}".rstrip("0").rstrip(".")


def _parallel(b: FlagBuilder, server: Server) -> None:
    layout = server.pool.layout
    label = layout.label()
    b.add(("--tensor-parallel-size", str(layout.tp)), f"{label}: tensor parallelism from the plan's layout",
          "parallelism")
    b.add(("--pipeline-parallel-size", str(layout.pp)), f"{label}: pipeline stages from the plan's layout",
          "parallelism")
    if server.engine_dp > 1:
        b.add(("--data-parallel-size", str(server.engine_dp)),
              f"{label}: {server.engine_dp} data-parallel ranks inside one engine, so the experts can be sharded "
              "across them" if layout.ep > 1 else
              f"{label}: {server.engine_dp} replicas on this host as one engine: vLLM's API server spreads the "
              "requests over them behind one port", "parallelism")
    if layout.ep > 1:
        b.add(("--enable-expert-parallel",), f"{label}: MoE experts sharded across GPUs instead of split by TP",
              "parallelism")


def _memory(b: FlagBuilder, pool: Pool, reserved_bytes: int) -> None:
    knobs = pool.knobs
    b.add(("--max-model-len", str(knobs.max_model_len)), "the longest request the plan serves", "max_model_len")
    held = (f"; the {reserved_bytes / GIB:g} GiB other processes hold must stay outside it, free when vLLM starts"
            if reserved_bytes else "")
    b.add(("--gpu-memory-utilization", format_fraction(knobs.memory_fraction)),
          f"{knobs.memory_fraction:.4f} of the GPU's memory for weights, activations, CUDA graphs and KV cache",
          "memory_fraction", "gpu_memory_utilization",
          note=f"vLLM's fraction is of TOTAL GPU memory, not of free memory{held}")
    b.add(("--max-num-seqs", str(knobs.max_num_seqs)), "requests batched per step", "max_num_seqs")
    b.add(("--max-num-batched-tokens", str(knobs.max_num_batched_tokens)), "tokens per engine step",
          "max_num_batched_tokens")
    b.add(("--enable-chunked-prefill",) if knobs.chunked_prefill else ("--disable-chunked-prefill",),
          "long prompts are prefilled in chunks that share steps with decodes" if knobs.chunked_prefill else
          "prompts are prefilled whole; the token budget must hold the longest one", "chunked_prefill")
    b.add(("--enable-prefix-caching",) if knobs.prefix_caching else ("--disable-prefix-caching",),
          "reuse the KV cache of shared prompt prefixes" if knobs.prefix_caching else "no shared prefixes",
          "prefix_caching")


def _precision(b: FlagBuilder, pool: Pool) -> None:
    knobs = pool.knobs
    if knobs.kv_cache_dtype == "fp8":
        b.add(("--kv-cache-dtype", "fp8"), "FP8 KV cache: twice the tokens in the same memory", "kv_cache_dtype")
    if knobs.quantization:
        b.add(("--quantization", quantization_method(knobs.quantization)),
              f"{knobs.weights_format} weights quantized when loading", "quantization")
    b.add(("--dtype", knobs.dtype), "activation and unquantized-weight dtype", "dtype")


def quantization_method(knob: str) -> str:
    """vLLM 0.33.0's ``--quantization`` name for a planner quantization value."""
    return {"nvfp4": "modelopt_fp4"}.get(knob, knob)


def _runtime(b: FlagBuilder, server: Server, options: VllmOptions) -> None:
    knobs = server.pool.knobs
    eager = (not knobs.cuda_graphs) if options.enforce_eager is None else options.enforce_eager
    if eager:
        override = options.enforce_eager is not None
        b.add(("--enforce-eager",), "set in [backends.vllm] enforce_eager" if override else
              "CUDA graphs off: they do not fit in memory", *(() if override else ("cuda_graphs",)))
    if server.pool.layout.tp > 1 and not knobs.custom_all_reduce:
        b.add(("--disable-custom-all-reduce",), "NCCL all-reduce instead of vLLM's custom kernel",
              "custom_all_reduce")


def _multi_node(b: FlagBuilder, server: Server, role: NodeRole, options: VllmOptions) -> None:
    if role.nnodes == 1:
        if options.distributed_executor_backend == "ray":
            b.add(("--distributed-executor-backend", "ray"), "set in [backends.vllm] distributed_executor_backend")
        return
    if options.distributed_executor_backend == "ray":
        b.add(("--distributed-executor-backend", "ray"),
              "workers run in the Ray cluster the node scripts start (distributed_executor_backend = \"ray\")")
        return
    if server.engine_dp > 1:
        per_node = server.local_dp
        if isinstance(role.rank, str):
            start: Word = str(int(role.rank) * per_node)
        elif per_node == 1:
            start = role.rank
        else:
            raise LaunchError("a multi-node expert-parallel engine with several data-parallel ranks per node "
                                 "needs literal node ranks (the node scripts), not an environment reference")
        b.add(("--data-parallel-size-local", str(per_node)), f"{per_node} data-parallel ranks on each node")
        b.add(("--data-parallel-start-rank", start), "the first data-parallel rank on this node")
        b.add(("--data-parallel-address", role.head_addr), "the head node, where the API server coordinates ranks")
        b.add(("--data-parallel-rpc-port", str(DP_RPC_PORT)), "the head's coordination port (same on every node)")
    else:
        b.add(("--distributed-executor-backend", "mp"), "vLLM's native multi-node launcher: no Ray cluster to set up")
        b.add(("--nnodes", str(role.nnodes)), f"one engine across {role.nnodes} nodes")
        b.add(("--node-rank", role.rank), "this node's rank (0 is the head that serves the API)")
        b.add(("--master-addr", role.head_addr), "the head node's address for torch.distributed rendezvous")
        b.add(("--master-port", str(MASTER_PORT)), "rendezvous port on the head (open it between the nodes)")
    if not role.head:
        b.add(("--headless",), "a worker node: runs GPU workers only, the head serves the API")


# vLLM refuses tool_choice "auto" unless this is set beside the parser (SGLang needs no such flag).
AUTO_TOOL_CHOICE = (("--enable-auto-tool-choice",), "agent workload: the model may decide to call a tool "
                    "(tool_choice \"auto\"); vLLM refuses such requests without it")


def _agent(b: FlagBuilder, deployment: Deployment) -> None:
    for words, reason in agent_flags(deployment.workload.kind,
                                     agent_parsers(deployment.model.family, deployment.model.id),
                                     before_tool=(AUTO_TOOL_CHOICE,)):
        b.add(words, reason)


def serve_command(deployment: Deployment, server: Server, options: VllmOptions,
                  role: NodeRole | None = None) -> ServeCommand:
    """The full argv of one server on one node."""
    role = role or NodeRole()
    spec = deployment
    pool = server.pool
    b = FlagBuilder(deployment, pool)
    b.add((spec.model.id,), f"the model to serve, first and positional ({deployment.model.name})")
    if spec.model.revision:
        b.add(("--revision", spec.model.revision), "the model revision pinned in the spec (model.revision)")
    if spec.model.served_name:
        b.add(("--served-model-name", spec.model.served_name),
              "the name clients send as `model` in API calls (model.served_name)")
    b.add(("--port", str(server.port)), "the API port (operations.port, + one per extra server on the host)")
    _parallel(b, server)
    _memory(b, pool, deployment.hardware.reserved_memory_bytes)
    _precision(b, pool)
    flag = softcap_flag(deployment.model.attention, deployment.gpu.is_amd, attention_values(options.extra_args))
    if flag is not None:
        b.add(*flag)
    _runtime(b, server, options)
    if spec.model.trust_remote_code:
        b.add(("--trust-remote-code",), "the spec allows the model repository's own code (model.trust_remote_code)")
    _agent(b, deployment)
    _multi_node(b, server, role, options)
    for words in split_flags(options.extra_args):
        b.argv += words
        b.groups.append(ArgGroup(words=words, why="from [backends.vllm] extra_args"))
        b.flags.append(FlagReason(flag=words[0], value=" ".join(words[1:]) or None,
                                  reason="passed through from [backends.vllm] extra_args (checked against the "
                                         f"vLLM {ENGINE_VERSION} flag set)"))
    return ServeCommand(argv=tuple(b.argv), groups=tuple(b.groups), flags=tuple(b.flags))
