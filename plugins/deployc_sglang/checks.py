"""``deployc_check_plan`` for SGLang 0.5.23: cross-flag invariants, placement, and every emitted argv and YAML."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from deployc.diagnostics import Diagnostic, Severity
from deployc_sglang import ENGINE_VERSION
from deployc_sglang.command import OWNED_FLAGS, NodeRole, config_document, launch_command
from deployc_sglang.flags import check_argv, check_config, load_manifest
from deployc_sglang.options import SglangOptions, parse_options
from deployc_sglang.parsers import agent_parsers
from deployc_sglang.placement import PlacementError, place

if TYPE_CHECKING:
    from deployc.planner.plan import Plan

RULE = "DPC402"
EXTRA_ARGS_KEY = "backends.sglang.extra_args"
_HIDDEN_FLAG = re.compile(r"\s(--[a-z0-9][a-z0-9-]*)")


def _diag(plan: Plan, message: str, hint: str | None = None, key: str | None = None,
          severity: Severity = Severity.ERROR) -> Diagnostic:
    return Diagnostic(rule=RULE, message=message, severity=severity, file=plan.target.spec_file, key_path=key,
                      hint=hint)


def _pool_checks(plan: Plan) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    total = plan.target.gpu.memory_bytes
    free = total - plan.target.reserved_memory_bytes
    for pool in plan.pools:
        k = pool.knobs
        where = f"pool {pool.name!r}: " if len(plan.pools) > 1 else ""
        if not 0 < k.memory_fraction < 1:
            out.append(_diag(plan, f"{where}mem_fraction_static {k.memory_fraction} is outside (0, 1)"))
        elif k.memory_fraction * total > free:
            out.append(_diag(plan, f"{where}mem_fraction_static {k.memory_fraction:.3f} asks for "
                                   f"{k.memory_fraction * total / 2**30:.1f} GiB of weights + KV but only "
                                   f"{free / 2**30:.1f} GiB is free (other processes hold the rest)",
                             hint="lower it below (total − reserved) / total"))
        if k.max_num_batched_tokens < k.max_num_seqs:
            out.append(_diag(plan, f"{where}chunk of {k.max_num_batched_tokens:,} tokens is below "
                                   f"max_running_requests {k.max_num_seqs:,}", severity=Severity.WARNING))
    return out


def _extra_args_checks(plan: Plan, options: SglangOptions) -> list[Diagnostic]:
    manifest = load_manifest()
    owned = {manifest[f]["dest"] for f in OWNED_FLAGS if f in manifest}
    out: list[Diagnostic] = []
    for arg in options.extra_args:
        flag = arg.partition("=")[0]
        if flag in OWNED_FLAGS or (flag in manifest and manifest[flag]["dest"] in owned):
            out.append(_diag(plan, f"extra_args sets {flag}, which deployc derives from the plan", key=EXTRA_ARGS_KEY,
                             hint="change the spec (or the option this backend offers) instead"))
        hidden = [m for m in _HIDDEN_FLAG.findall(arg) if m in manifest]
        if hidden and not arg.startswith("-"):
            out.append(_diag(plan, f"extra_args value {arg!r} hides the flag {hidden[0]}", key=EXTRA_ARGS_KEY,
                             hint="give each flag as its own item of extra_args"))
        elif arg.startswith("-") and (" " in arg or "\t" in arg) and "=" not in arg:
            out.append(_diag(plan, f"extra_args item {arg!r} holds several words", key=EXTRA_ARGS_KEY,
                             hint='one flag or value per item: ["--log-level", "debug"]'))
    return out


def _argv_checks(plan: Plan, options: SglangOptions) -> list[Diagnostic]:
    try:
        servers = place(plan)
    except PlacementError as exc:
        return [_diag(plan, f"cannot place the SGLang servers: {exc}")]
    out: list[Diagnostic] = []
    seen: set[str] = set()
    for server in servers:
        for rank in range(len(server.nodes)):
            command = launch_command(plan, server, options, NodeRole(nnodes=len(server.nodes), rank=rank))
            for problem in check_argv(command.argv):
                if problem not in seen:
                    seen.add(problem)
                    out.append(_diag(plan, f"SGLang {ENGINE_VERSION} would reject the command of {server.name!r}: "
                                           f"{problem}", key=EXTRA_ARGS_KEY if options.extra_args else None))
        out += [_diag(plan, f"SGLang {ENGINE_VERSION} would reject the config file of {server.name!r}: {p}")
                for p in check_config(config_document(launch_command(plan, server, options))) if p not in seen]
    hw = plan.target.spec.hardware
    if hw.nodes > 1 and hw.network_interface is None:
        out.append(_diag(plan, "several nodes but no hardware.network_interface: NCCL may pick docker0 or a "
                               "management NIC and hang (USER-PAINS #15)", key="hardware.network_interface",
                         severity=Severity.WARNING, hint='set it to the interface the nodes share, e.g. "eth0"'))
    if ":" in plan.target.spec.operations.model_cache:
        out.append(_diag(plan, "model_cache contains ':', which `docker run --volume` reads as a separator",
                         key="operations.model_cache", hint="use a path without ':'"))
    return out


def _agent_warning(plan: Plan, extra_args: tuple[str, ...]) -> list[Diagnostic]:
    spec = plan.target.spec
    if spec.workload.kind != "agent" or any(a.partition("=")[0] == "--tool-call-parser" for a in extra_args):
        return []
    if agent_parsers(plan.target.model.family, spec.model.id) is not None:
        return []
    return [_diag(plan, f"an agent workload, but deployc knows no SGLang tool-call parser for {spec.model.id}: "
                          "tool calls come back as plain text in the answer", key="workload.kind",
                    severity=Severity.WARNING,
                    hint='name the model\'s parser in [backends.sglang] extra_args, e.g. ["--tool-call-parser", '
                         '"hermes"]')]


def check_plan(plan: Plan) -> list[Diagnostic]:
    """Every problem SGLang 0.5.23 would have with this plan."""
    options = parse_options(plan.target.spec.backends.get("sglang"))
    return (_pool_checks(plan) + _extra_args_checks(plan, options) + _argv_checks(plan, options)
            + _agent_warning(plan, options.extra_args))
