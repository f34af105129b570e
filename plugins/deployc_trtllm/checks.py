"""``deployc_check_plan`` for TensorRT-LLM 1.2: placement, limits, every emitted flag and YAML key.

Every flag of every emitted command is checked against the flag manifests and every key of every
emitted options YAML against the LLM-API manifest (``data/``); a key the manifest lacks is an
error, so CI fails before such a file ships.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deployc.contract import Diagnostic, Severity
from deployc_trtllm import ENGINE_VERSION
from deployc_trtllm.capability import deployment_flow
from deployc_trtllm.commands import build_command, engine_extra_options, quantize_command
from deployc_trtllm.commands import serve_command as engine_serve_command
from deployc_trtllm.manifests import check_flags, check_llm_api_yaml
from deployc_trtllm.pytorch import CONFIG_DIR, attention_dp, config_name, extra_options, serve_command

if TYPE_CHECKING:
    from deployc.contract import Deployment, Pool

RULE = "DPC402"


def _diag(deployment: Deployment, message: str, hint: str | None = None) -> Diagnostic:
    return Diagnostic(rule=RULE, message=message, file=deployment.spec_file, hint=hint)


def _limits(deployment: Deployment, pool: Pool) -> list[Diagnostic]:
    k = pool.knobs
    out: list[Diagnostic] = []
    if not 0 < k.memory_fraction <= 1:
        out.append(_diag(deployment, f"free_gpu_memory_fraction {k.memory_fraction} is outside (0, 1]"))
    if not k.chunked_prefill and k.max_num_batched_tokens < k.max_model_len:
        out.append(_diag(deployment, f"max_num_tokens {k.max_num_batched_tokens:,} is below max_seq_len "
                               f"{k.max_model_len:,} with chunked prefill off: a long prompt cannot be scheduled",
                         hint="enable chunked prefill or raise the token budget"))
    return out


def _engine_flow(deployment: Deployment) -> list[Diagnostic]:
    hw = deployment.hardware
    used = sum(p.layout.gpus_used for p in deployment.pools)
    if hw.nodes > 1 or used > hw.gpus_per_node:
        return [_diag(deployment,
                      f"the TensorRT-LLM engine flow is emitted for one node; this plan uses {used} GPUs on "
                            f"{hw.nodes} node(s) of {hw.gpus_per_node}",
                      hint='remove flow = "engine" from [backends.trtllm]: the PyTorch flow runs across nodes')]
    out: list[Diagnostic] = []
    for pool in deployment.pools:
        out += _limits(deployment, pool)
        for tool, command, positionals in (
                ("quantize", quantize_command(deployment, pool, "model_dir"), 0),
                ("build", build_command(deployment, pool), 0),
                ("serve", engine_serve_command(deployment, pool, deployment.operations.port), 1)):
            out += [_diag(deployment, f"TensorRT-LLM {ENGINE_VERSION} {tool}: {p}")
                    for p in check_flags(tool, command.args, positionals)]
        out += [_diag(deployment, f"TensorRT-LLM {ENGINE_VERSION} extra options: {p}")
                for p in check_llm_api_yaml(engine_extra_options(pool), "tensorrt")]
    return out


def check_plan(deployment: Deployment) -> list[Diagnostic]:
    """Every problem TensorRT-LLM 1.2 (as deployc emits it) would have with this plan."""
    if deployment_flow(deployment) == "engine":
        return _engine_flow(deployment)
    servers = deployment.servers
    out: list[Diagnostic] = []
    for pool in deployment.pools:
        out += _limits(deployment, pool)
        server = next(s for s in servers if s.pool is pool)
        command = serve_command(deployment, pool, server.port, f"{CONFIG_DIR}/{config_name(server.name)}")
        out += [_diag(deployment, f"TensorRT-LLM {ENGINE_VERSION} serve: {p}") for p in check_flags("serve",
                                                                                                    command.args, 1)]
        out += [_diag(deployment, f"TensorRT-LLM {ENGINE_VERSION} options YAML: {p}")
                for p in check_llm_api_yaml(extra_options(deployment, pool), "pytorch")]
        layout = pool.layout
        if attention_dp(pool) and layout.tp > 1:
            out.append(Diagnostic(
                rule=RULE, severity=Severity.WARNING, file=deployment.spec_file,
                message=f"pool {pool.name}: TensorRT-LLM's attention DP runs attention unsharded on each of its "
                        f"{layout.tp * layout.dp} ranks, where the plan's {layout.label()} shards it over "
                        f"{layout.tp} GPUs: attention weights take more memory per GPU than planned",
                hint="the MoE experts, the bulk of the weights, are sharded as planned; if start-up runs out of "
                     "memory, lower kv_cache_config.free_gpu_memory_fraction"))
    return out
