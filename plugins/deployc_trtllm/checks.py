"""``deployc_check_plan`` for TensorRT-LLM 1.2: single node, build limits, every emitted flag and YAML key."""

from __future__ import annotations

from typing import TYPE_CHECKING

from deployc.diagnostics import Diagnostic
from deployc_trtllm import ENGINE_VERSION
from deployc_trtllm.commands import build_command, extra_options, quantize_command, serve_command
from deployc_trtllm.manifests import check_flags, check_llm_api_yaml

if TYPE_CHECKING:
    from deployc.planner.plan import Plan

RULE = "DPC402"


def _diag(plan: Plan, message: str, hint: str | None = None) -> Diagnostic:
    return Diagnostic(rule=RULE, message=message, file=plan.target.spec_file, hint=hint)


def check_plan(plan: Plan) -> list[Diagnostic]:
    """Every problem TensorRT-LLM 1.2 (as deployc emits it) would have with this plan."""
    hw = plan.target.spec.hardware
    used = sum(p.layout.gpus_used for p in plan.pools)
    if hw.nodes > 1 or used > hw.gpus_per_node:
        return [_diag(plan, f"the TensorRT-LLM backend emits single-node deployments; this plan uses {used} GPUs "
                            f"on {hw.nodes} node(s) of {hw.gpus_per_node}",
                      hint="multi-node TensorRT-LLM needs an MPI/Slurm launcher deployc does not emit yet; use "
                           "--backend vllm or sglang (native multi-node scripts)")]
    out: list[Diagnostic] = []
    for pool in plan.pools:
        k = pool.knobs
        if not 0 < k.memory_fraction <= 1:
            out.append(_diag(plan, f"free_gpu_memory_fraction {k.memory_fraction} is outside (0, 1]"))
        if not k.chunked_prefill and k.max_num_batched_tokens < k.max_model_len:
            out.append(_diag(plan, f"max_num_tokens {k.max_num_batched_tokens:,} is below max_seq_len "
                                   f"{k.max_model_len:,} with chunked prefill off: a long prompt cannot be scheduled",
                             hint="enable chunked prefill or raise the token budget"))
        for tool, command, positionals in (
                ("quantize", quantize_command(plan, pool, "model_dir"), 0),
                ("build", build_command(plan, pool), 0),
                ("serve", serve_command(plan, pool, plan.target.spec.operations.port), 1)):
            out += [_diag(plan, f"TensorRT-LLM {ENGINE_VERSION} {tool}: {p}")
                    for p in check_flags(tool, command.args, positionals)]
        out += [_diag(plan, f"TensorRT-LLM {ENGINE_VERSION} extra options: {p}")
                for p in check_llm_api_yaml(extra_options(pool))]
    return out
