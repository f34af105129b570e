"""The ``python -m sglang.launch_server`` argv of one server, each flag from a plan Decision, with its reason.

Flags are spelled in full as SGLang 0.5.23's parser has them (no prefixes such as ``--tp``,
and the 0.5.23 CUDA-graph spellings: ``--cuda-graph-max-bs-decode``, never the ambiguous
``--cuda-graph-max-bs``).  The same settings are written as a ``--config`` YAML file
(:func:`config_document`): keys are the flag names without ``--`` in the dash spelling.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from attrs import frozen

from deployc.contract import FlagReason, Server
from deployc.contract.toolkit import EnvRef, Word
from deployc.contract.toolkit.agents import agent_flags
from deployc.contract.toolkit.argv import FlagBuilder
from deployc.contract.toolkit.shell import ArgGroup
from deployc_sglang import ENGINE_VERSION
from deployc_sglang.attention import softcap_flag
from deployc_sglang.options import SglangOptions
from deployc_sglang.parsers import agent_parsers
from deployc_sglang.rocm import AITER_SCALE, AITER_SCALE_ABOVE_TOKENS, aiter_scales_fraction

if TYPE_CHECKING:
    from deployc.contract import Deployment, Pool

LAUNCH = ("python3", "-m", "sglang.launch_server")
DIST_PORT = 50000  # --dist-init-addr port on node-0 (any free port; the same on every node)
DIST_INIT_ADDR = EnvRef("SGLANG_DIST_INIT_ADDR", required=False)  # set by the node scripts from SGLANG_HEAD_ADDR
NODE_FLAGS = frozenset({"--nnodes", "--node-rank", "--dist-init-addr"})
# Flags deployc derives from the plan (any spelling of the same option counts): extra_args may not repeat them.
OWNED_FLAGS = frozenset({
    "--model-path", "--revision", "--served-model-name", "--host", "--port", "--tp-size", "--pp-size", "--dp-size",
    "--attn-dp-size", "--enable-dp-attention", "--ep-size", "--context-length", "--mem-fraction-static",
    "--max-running-requests", "--chunked-prefill-size", "--max-prefill-tokens", "--schedule-policy",
    "--disable-radix-cache", "--kv-cache-dtype", "--quantization", "--dtype", "--cuda-graph-max-bs-decode",
    "--cuda-graph-backend-decode", "--cuda-graph-backend-prefill", "--disable-cuda-graph",
    "--disable-custom-all-reduce", "--trust-remote-code", *NODE_FLAGS})
# SGLang's --quantization name for a planner quantization value (choices of the 0.5.23 manifest)
QUANTIZATION = {"fp8": "fp8", "awq": "awq", "gptq": "gptq", "int8": "w8a8_int8", "mxfp4": "mxfp4",
                "nvfp4": "modelopt_fp4"}


@frozen(kw_only=True)
class NodeRole:
    """Which node of a server this argv is for."""

    nnodes: int = 1
    rank: int = 0


@frozen(kw_only=True)
class LaunchCommand:
    """The argv (after ``python3 -m sglang.launch_server``), grouped one flag per line, and the reasons."""

    argv: tuple[Word, ...]
    groups: tuple[ArgGroup, ...]
    flags: tuple[FlagReason, ...]


def format_fraction(value: float) -> str:
    """A memory fraction rounded DOWN to 3 decimals (rounding up could ask for memory that is not there)."""
    floored = math.floor(value * 1000 + 1e-9) / 1000
    return f"{floored:.3f}".rstrip("0").rstrip(".")


def kv_cache_dtype_value(kv: str, dtype: str) -> str | None:
    """SGLang's ``--kv-cache-dtype`` for the plan's KV dtype; None for the default (the model dtype)."""
    if kv == "fp8":
        return "fp8_e4m3"  # SGLang 0.5.23 rejects plain "fp8" (choices: auto, fp8_e5m2, fp8_e4m3, ...)
    if kv == dtype:
        return None
    return "bfloat16" if kv == "bfloat16" else None


def schedule_policy(pool: Pool, options: SglangOptions) -> tuple[str, str]:
    """The scheduling policy and why."""
    if options.schedule_policy:
        return options.schedule_policy, "set in [backends.sglang] schedule_policy"
    if pool.knobs.prefix_caching:
        return "lpm", ("longest-prefix-match first: requests that share a cached prefix run together, so the radix "
                       "cache keeps the shared prefix hot (cache-aware scheduling for prefix-heavy traffic)")
    return "fcfs", "first come, first served: prefixes are not shared enough for cache-aware ordering to pay"


def _parallel(b: FlagBuilder, pool: Pool, engine_dp: int) -> None:
    """TP, PP, and the data-parallel ranks of this server: the pool's replicas on its node (``engine_dp``), or
    every replica as DP attention (MoE with EP)."""
    layout = pool.layout
    label = layout.label()
    attention_dp = layout.ep > 1 and layout.dp > 1
    tp = layout.tp * layout.dp if attention_dp else layout.tp
    b.add(("--tp-size", str(tp)), f"{label}: tensor parallelism from the plan's layout", "parallelism",
          note=f"attention runs data-parallel in {layout.dp} groups inside this TP{tp} group" if attention_dp else "")
    if layout.pp > 1:
        b.add(("--pp-size", str(layout.pp)), f"{label}: pipeline stages from the plan's layout", "parallelism")
    if attention_dp:
        b.add(("--attn-dp-size", str(layout.dp)),
              f"{label}: DP attention (replaces the deprecated --enable-dp-attention): each of {layout.dp} groups "
              "keeps its own KV cache while the MoE experts are sharded across all of them; it pays for MoE "
              "models, where replicated attention would duplicate the KV cache", "parallelism")
    elif engine_dp > 1:
        # SGLang 0.5.23 refuses --dp-size with --nnodes (validation_hook.check_server_args: "multi-node
        # data-parallel replicas are not supported"), so a server holds the replicas of one node only.
        of = "" if engine_dp == layout.dp else f" (of the pool's {layout.dp}: one such server per node)"
        b.add(("--dp-size", str(engine_dp)),
              f"{label}: {engine_dp} data-parallel replicas{of} behind SGLang's own router (one port)", "parallelism")
    if layout.ep > 1:
        b.add(("--ep-size", str(layout.ep)), f"{label}: MoE experts sharded across {layout.ep} GPUs", "parallelism")


def _memory(b: FlagBuilder, pool: Pool, options: SglangOptions) -> None:
    k = pool.knobs
    b.add(("--context-length", str(k.max_model_len)), "the longest request the plan serves", "max_model_len")
    scaled = aiter_scales_fraction(b.deployment.gpu.is_amd, k.max_model_len)
    value = k.memory_fraction / AITER_SCALE if scaled else k.memory_fraction
    rocm = (f"given as {format_fraction(value)} = {k.memory_fraction:.3f} / {AITER_SCALE}: on ROCm SGLang's AITER "
            f"attention multiplies it by {AITER_SCALE} when the context exceeds {AITER_SCALE_ABOVE_TOKENS:,} tokens; "
            if scaled else "")
    b.add(("--mem-fraction-static", format_fraction(value)),
          f"{k.memory_fraction:.3f} of total GPU memory for weights + KV pool", "memory_fraction",
          note=rocm + "SGLang's fraction is (weights + KV pool) / total memory; OOM at start-up (loading, CUDA-graph "
               "capture): LOWER it; KV-cache exhaustion or many retracted requests at run time: the KV pool is too "
               "small, so add GPUs or quantize rather than raising it past what activations need")
    b.add(("--max-running-requests", str(k.max_num_seqs)), "requests batched per step", "max_num_seqs")
    if k.chunked_prefill:
        b.add(("--chunked-prefill-size", str(k.max_num_batched_tokens)), "tokens per prefill chunk",
              "max_num_batched_tokens")
    else:
        b.add(("--chunked-prefill-size", "-1"), "chunked prefill off", "chunked_prefill")
        b.add(("--max-prefill-tokens", str(max(k.max_num_batched_tokens, k.max_model_len))),
              "prompts are prefilled whole: the prefill budget must hold the longest one", "max_num_batched_tokens")
    policy, why = schedule_policy(pool, options)
    b.add(("--schedule-policy", policy), why, *(() if options.schedule_policy else ("prefix_caching",)))
    if not k.prefix_caching:
        b.add(("--disable-radix-cache",), "no shared prefixes: the radix cache would only cost lookups",
              "prefix_caching")


def _precision(b: FlagBuilder, pool: Pool) -> None:
    k = pool.knobs
    kv = kv_cache_dtype_value(k.kv_cache_dtype, k.dtype)
    if kv:
        b.add(("--kv-cache-dtype", kv), f"{k.kv_cache_dtype} KV cache", "kv_cache_dtype",
              note="SGLang spells FP8 as fp8_e4m3" if kv.startswith("fp8") else "")
    if k.quantization:
        b.add(("--quantization", QUANTIZATION.get(k.quantization, k.quantization)),
              f"{k.weights_format} weights", "quantization")
    b.add(("--dtype", k.dtype), "activation and unquantized-weight dtype", "dtype")


def _attention(b: FlagBuilder, deployment: Deployment, options: SglangOptions) -> None:
    cc = deployment.gpu.compute_capability
    if cc is None or deployment.gpu.is_amd:
        return
    flag = softcap_flag((cc[0], cc[1]), deployment.model.attention, options.extra_args)
    if flag is not None:
        b.add(*flag)


def _runtime(b: FlagBuilder, pool: Pool) -> None:
    k = pool.knobs
    if k.cuda_graphs:
        bs = pool.decode_graph_max_batch  # this backend's overhead answer at the pool's knobs, kept by the planner
        if bs is None:
            raise ValueError(f"pool {pool.name!r} plans CUDA graphs but carries no decode graph batch (the plan was "
                             "made without SGLang's overhead answer)")
        b.add(("--cuda-graph-max-bs-decode", str(bs)),
              f"decode CUDA graphs up to batch {bs}: SGLang's default for this GPU class, capped at "
              "--max-running-requests, stated so the memory plan and the engine agree", "cuda_graphs")
    else:
        for phase in ("decode", "prefill"):
            b.add((f"--cuda-graph-backend-{phase}", "disabled"),
                  f"no CUDA graphs for {phase} (0.5.23 spelling; --disable-cuda-graph is deprecated)", "cuda_graphs")
    if pool.layout.tp > 1 and not k.custom_all_reduce:
        b.add(("--disable-custom-all-reduce",), "NCCL all-reduce instead of the custom kernel", "custom_all_reduce")


def _agent(b: FlagBuilder, deployment: Deployment) -> None:
    for words, reason in agent_flags(deployment.workload.kind,
                                     agent_parsers(deployment.model.family, deployment.model.id)):
        b.add(words, reason)


def launch_command(deployment: Deployment, server: Server, options: SglangOptions,
                   role: NodeRole | None = None) -> LaunchCommand:
    """The full argv of one server on one node."""
    role = role or NodeRole()
    spec = deployment
    pool = server.pool
    b = FlagBuilder(deployment, pool)
    b.add(("--model-path", spec.model.id), f"the model to serve ({deployment.model.name})")
    if spec.model.revision:
        b.add(("--revision", spec.model.revision), "the model revision pinned in the spec (model.revision)")
    if spec.model.served_name:
        b.add(("--served-model-name", spec.model.served_name), "the name clients send as `model` (model.served_name)")
    b.add(("--host", "0.0.0.0"),  # noqa: S104
          "listen on every interface of the container (SGLang's default is 127.0.0.1, "
          "which a published port cannot reach)")
    b.add(("--port", str(server.port)), "the API port (operations.port, + one per extra server on the host)")
    _parallel(b, pool, server.engine_dp)
    _memory(b, pool, options)
    _precision(b, pool)
    _attention(b, deployment, options)
    _runtime(b, pool)
    if spec.model.trust_remote_code:
        b.add(("--trust-remote-code",), "the spec allows the model repository's own code (model.trust_remote_code)")
    b.add(("--enable-metrics",), "Prometheus metrics on /metrics (monitoring.md, prometheus-rules.yaml); SGLang serves "
          "none without it")
    _agent(b, deployment)
    if role.nnodes > 1:
        b.add(("--nnodes", str(role.nnodes)), f"one server across {role.nnodes} nodes")
        b.add(("--node-rank", str(role.rank)), "this node's rank (0 serves the API)")
        b.add(("--dist-init-addr", DIST_INIT_ADDR),
              f"node-0's address and port {DIST_PORT} for torch.distributed rendezvous (open it between the nodes)")
    for words in extra_words(options.extra_args):
        b.argv += words
        b.groups.append(ArgGroup(words=words, why="from [backends.sglang] extra_args"))
        b.flags.append(FlagReason(flag=words[0], value=" ".join(words[1:]) or None,
                                  reason="passed through from [backends.sglang] extra_args (checked against the "
                                         f"SGLang {ENGINE_VERSION} flag set)"))
    return LaunchCommand(argv=tuple(b.argv), groups=tuple(b.groups), flags=tuple(b.flags))


def extra_words(extra_args: tuple[str, ...]) -> list[tuple[str, ...]]:
    """``[backends.sglang] extra_args`` as flag + values groups, ``--flag=value`` split in two words."""
    words: list[str] = []
    for arg in extra_args:
        flag, eq, value = arg.partition("=")
        words += [flag, value] if arg.startswith("--") and eq else [arg]
    groups: list[list[str]] = []
    for word in words:
        if (word.startswith("-") and not word.lstrip("-").replace(".", "").isdigit()) or not groups:
            groups.append([word])
        else:
            groups[-1].append(word)
    return [tuple(g) for g in groups]


def _yaml_value(values: list[str]) -> Any:
    if not values:
        return True
    typed: list[Any] = []
    for value in values:
        try:
            typed.append(int(value))
        except ValueError:
            try:
                typed.append(float(value))
            except ValueError:
                typed.append(value)
    return typed[0] if len(typed) == 1 else typed


def config_document(command: LaunchCommand) -> dict[str, Any]:
    """The ``--config`` YAML of a command: every flag except the per-node ones, keys without ``--``."""
    doc: dict[str, Any] = {}
    key: str | None = None
    values: list[str] = []
    for word in (*command.argv, "--"):
        if isinstance(word, str) and word.startswith("--"):
            if key is not None and key not in {f[2:] for f in NODE_FLAGS}:
                doc[key] = _yaml_value(values)
            key, values = word[2:], []
        elif isinstance(word, str):
            values.append(word)
    return doc
