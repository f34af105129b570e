"""``deployc_check_plan`` for SGLang 0.5.23: cross-flag invariants, placement, and every emitted argv and YAML."""

from __future__ import annotations

from typing import TYPE_CHECKING

from deployc.contract import Diagnostic, Severity
from deployc.contract.toolkit.agents import missing_parser_warning
from deployc.contract.toolkit.extra_args import extra_args_problems
from deployc_sglang import ENGINE_VERSION
from deployc_sglang.attention import forced_problems
from deployc_sglang.command import OWNED_FLAGS, NodeRole, config_document, launch_command
from deployc_sglang.flags import check_argv, check_config, load_manifest
from deployc_sglang.options import SglangOptions, parse_options
from deployc_sglang.parsers import agent_parsers

if TYPE_CHECKING:
    from deployc.contract import Deployment

RULE = "DPC402"
EXTRA_ARGS_KEY = "backends.sglang.extra_args"


def _diag(deployment: Deployment, message: str, hint: str | None = None, key: str | None = None,
          severity: Severity = Severity.ERROR) -> Diagnostic:
    return Diagnostic(rule=RULE, message=message, severity=severity, file=deployment.spec_file, key_path=key,
                      hint=hint)


def _pool_checks(deployment: Deployment) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    total = deployment.gpu.memory_bytes
    free = total - deployment.hardware.reserved_memory_bytes
    for pool in deployment.pools:
        k = pool.knobs
        where = f"pool {pool.name!r}: " if len(deployment.pools) > 1 else ""
        if not 0 < k.memory_fraction < 1:
            out.append(_diag(deployment, f"{where}mem_fraction_static {k.memory_fraction} is outside (0, 1)"))
        elif k.memory_fraction * total > free:
            out.append(_diag(deployment, f"{where}mem_fraction_static {k.memory_fraction:.3f} asks for "
                                   f"{k.memory_fraction * total / 2**30:.1f} GiB of weights + KV but only "
                                   f"{free / 2**30:.1f} GiB is free (other processes hold the rest)",
                             hint="lower it below (total − reserved) / total"))
        if k.max_num_batched_tokens < k.max_num_seqs:
            out.append(_diag(deployment, f"{where}chunk of {k.max_num_batched_tokens:,} tokens is below "
                                   f"max_running_requests {k.max_num_seqs:,}", severity=Severity.WARNING))
    return out


def _extra_args_checks(deployment: Deployment, options: SglangOptions) -> list[Diagnostic]:
    manifest = load_manifest()
    owned = {manifest[f]["dest"] for f in OWNED_FLAGS if f in manifest}
    problems = extra_args_problems(
        options.extra_args, known_flag=manifest.__contains__,
        owned=lambda f: f in OWNED_FLAGS or (f in manifest and manifest[f]["dest"] in owned),
        example='["--log-level", "debug"]')
    cc = deployment.gpu.compute_capability or (0, 0)
    problems += forced_problems((cc[0], cc[1]), deployment.model.attention, options.extra_args)
    return [_diag(deployment, message, key=EXTRA_ARGS_KEY, hint=hint) for message, hint in problems]


def _argv_checks(deployment: Deployment, options: SglangOptions) -> list[Diagnostic]:
    servers = deployment.servers
    out: list[Diagnostic] = []
    seen: set[str] = set()
    for server in servers:
        for rank in range(len(server.nodes)):
            command = launch_command(deployment, server, options, NodeRole(nnodes=len(server.nodes), rank=rank))
            for problem in check_argv(command.argv):
                if problem not in seen:
                    seen.add(problem)
                    out.append(_diag(deployment,
                                     f"SGLang {ENGINE_VERSION} would reject the command of {server.name!r}: "
                                           f"{problem}", key=EXTRA_ARGS_KEY if options.extra_args else None))
        out += [_diag(deployment, f"SGLang {ENGINE_VERSION} would reject the config file of {server.name!r}: {p}")
                for p in check_config(config_document(launch_command(deployment, server, options))) if p not in seen]
    hw = deployment.hardware
    # Independent servers, one node each, keep NCCL on the node: only a server that spans nodes needs the NIC.
    if hw.network_interface is None and any(s.spans_nodes for s in deployment.servers):
        out.append(_diag(deployment, "not set while a server spans nodes: NCCL may pick "
                               "docker0 or a management NIC and hang (USER-PAINS #15)",
                         key="hardware.network_interface",
                         severity=Severity.WARNING, hint='set it to the interface the nodes share, e.g. "eth0"'))
    if ":" in deployment.operations.model_cache:
        out.append(_diag(deployment, "model_cache contains ':', which `docker run --volume` reads as a separator",
                         key="operations.model_cache", hint="use a path without ':'"))
    return out


def _agent_warning(deployment: Deployment, extra_args: tuple[str, ...]) -> list[Diagnostic]:
    return missing_parser_warning(deployment, agent_parsers(deployment.model.family, deployment.model.id), extra_args,
                                  backend="sglang", example='["--tool-call-parser", "hermes"]', rule=RULE)


def check_plan(deployment: Deployment) -> list[Diagnostic]:
    """Every problem SGLang 0.5.23 would have with this plan."""
    options = parse_options(deployment.options)
    return (_pool_checks(deployment) + _extra_args_checks(deployment, options) + _argv_checks(deployment, options)
            + _agent_warning(deployment, options.extra_args))
