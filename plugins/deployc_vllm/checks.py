"""``deployc_check_plan`` for vLLM 0.33.0: cross-flag invariants, placement, and every emitted argv.

Errors here are what vLLM would refuse at start-up (or worse, accept and then fail), found
before anything is deployed; warnings are settings that run but are known to hurt.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deployc.contract import GIB, Diagnostic, Severity
from deployc.contract.toolkit.agents import missing_parser_warning
from deployc.contract.toolkit.extra_args import DERIVED_HINT, extra_args_problems
from deployc_vllm import ENGINE_VERSION
from deployc_vllm.attention import forced_problems, rocm_forced_problems
from deployc_vllm.command import OWNED_FLAGS, LaunchError, NodeRole, serve_command
from deployc_vllm.container import image_note, node_role
from deployc_vllm.flags import check_argv, load_manifest
from deployc_vllm.options import VllmOptions, parse_options
from deployc_vllm.parsers import agent_parsers
from deployc_vllm.rocm import attention_values, vendor_mismatches

if TYPE_CHECKING:
    from deployc.contract import Deployment, Pool

RULE = "DPC402"
# What a vLLM worker holds before its start-up snapshot: the CUDA context (about 0.5 GiB for a PyTorch process on
# Ampere/Hopper, nvidia-smi after torch.cuda.init()) plus NCCL communicator and cuBLAS handle buffers, which
# Worker.init_device creates BEFORE the snapshot (vllm/v1/worker/gpu_worker.py, 0.33.0).
STARTUP_HEADROOM_BYTES = GIB
EXTRA_ARGS_KEY = "backends.vllm.extra_args"
# The [plan] key that pins what each planned flag carries (spec language, docs/spec.md).
PLAN_KEYS = {
    "--tensor-parallel-size": "tp", "-tp": "tp", "--pipeline-parallel-size": "pp", "-pp": "pp",
    "--data-parallel-size": "dp", "-dp": "dp", "--enable-expert-parallel": "ep", "-ep": "ep",
    "--disable-expert-parallel": "ep", "--quantization": "quantization", "-q": "quantization",
    "--kv-cache-dtype": "kv_cache_dtype", "--max-num-seqs": "max_num_seqs",
    "--max-num-batched-tokens": "max_num_batched_tokens", "--gpu-memory-utilization": "memory_fraction",
    "--device-memory-utilization": "memory_fraction", "--max-model-len": "max_model_len",
}


def _error(deployment: Deployment, message: str, hint: str | None = None, key: str | None = None,
           severity: Severity = Severity.ERROR) -> Diagnostic:
    return Diagnostic(rule=RULE, message=message, severity=severity, file=deployment.spec_file, key_path=key,
                      hint=hint)


def _startup_memory(deployment: Deployment, fraction: float, where: str) -> list[Diagnostic]:
    """vLLM's start-up check: fraction × TOTAL memory must be free once its own CUDA context exists."""
    total = deployment.gpu.memory_bytes
    reserved = deployment.hardware.reserved_memory_bytes
    requested = fraction * total
    free = total - reserved
    said = (f"vLLM {ENGINE_VERSION} requests gpu_memory_utilization × total = {requested / GIB:.1f} GiB at start-up "
            "and refuses to start unless that much is free once its CUDA context, NCCL and cuBLAS buffers exist "
            "(request_memory, vllm/v1/worker/utils.py); memory other processes hold is not subtracted from the "
            "request")
    if requested > free:
        return [_error(deployment, f"{where}{said}: with reserved_memory_gib = {reserved / GIB:g}, only "
                             f"{free / GIB:.1f} GiB is free, so vLLM stops with \"Free memory on device ... is less "
                             "than desired GPU memory utilization\" (USER-PAINS #11)",
                       key="hardware.reserved_memory_gib", hint="lower the fraction below (total − reserved) / total")]
    if reserved and free - requested < STARTUP_HEADROOM_BYTES:
        return [_error(deployment, f"{where}{said}: with reserved_memory_gib = {reserved / GIB:g}, "
                             f"{(free - requested) / GIB:.2f} GiB is left for them, less than the "
                             f"{STARTUP_HEADROOM_BYTES / GIB:g} GiB they take, so start-up fails if the other "
                             "processes hold what the spec says", key="hardware.reserved_memory_gib",
                       severity=Severity.WARNING,
                       hint="free the GPU memory other processes hold, or raise reserved_memory_gib to what they hold "
                            f"plus {STARTUP_HEADROOM_BYTES / GIB:g} GiB so the plan asks for less")]
    return []


def _pool_checks(deployment: Deployment, pool: Pool) -> list[Diagnostic]:
    k = pool.knobs
    where = f"pool {pool.name!r}: " if len(deployment.pools) > 1 else ""
    out: list[Diagnostic] = []
    if not k.chunked_prefill and k.max_num_batched_tokens < k.max_model_len:
        out.append(_error(deployment,
                          f"{where}max_num_batched_tokens {k.max_num_batched_tokens:,} is below max_model_len "
                                f"{k.max_model_len:,} with chunked prefill off: vLLM refuses to start (USER-PAINS #14)",
                          hint=f"enable chunked prefill, or raise the token budget to at least {k.max_model_len:,}"))
    if k.max_num_batched_tokens < k.max_num_seqs:
        out.append(_error(deployment,
                          f"{where}max_num_batched_tokens {k.max_num_batched_tokens:,} is below max_num_seqs "
                                f"{k.max_num_seqs:,}: vLLM requires room for one token per running sequence",
                          hint=f"raise the token budget to at least {k.max_num_seqs:,}"))
    if not 0 < k.memory_fraction <= 1:
        out.append(_error(deployment, f"{where}gpu_memory_utilization {k.memory_fraction} is outside (0, 1]"))
    out += _startup_memory(deployment, k.memory_fraction, where)
    if k.kv_cache_dtype in ("float16", "bfloat16") and k.kv_cache_dtype != k.dtype:
        out.append(_error(deployment, f"{where}a {k.kv_cache_dtype} KV cache with {k.dtype} activations: vLLM "
                                f"{ENGINE_VERSION} requires a 16-bit KV cache to match the model dtype"))
    link = deployment.hardware.intra_node_link
    if pool.layout.tp > 2 and link.startswith("pcie") and k.custom_all_reduce:
        out.append(_error(deployment,
                          f"{where}TP{pool.layout.tp} over {link} with vLLM's custom all-reduce on: it is only "
                                "supported for two PCIe GPUs (vllm#8303)", severity=Severity.WARNING,
                          hint="the plan should turn custom all-reduce off (--disable-custom-all-reduce)"))
    return out


def _extra_args_checks(deployment: Deployment, options: VllmOptions) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    manifest = load_manifest()
    problems = extra_args_problems(
        options.extra_args, owned=OWNED_FLAGS.__contains__, known_flag=lambda f: manifest.option(f) is not None,
        owned_hint=lambda f: f"pin it in the spec instead: [plan].{PLAN_KEYS[f]}" if f in PLAN_KEYS else DERIVED_HINT,
        example='["--max-logprobs", "5"]')
    out += [_error(deployment, message, key=EXTRA_ARGS_KEY, hint=hint) for message, hint in problems]
    for message, fix in vendor_mismatches(deployment.gpu, options.extra_args):
        out.append(_error(deployment, message, key=EXTRA_ARGS_KEY, hint=fix))
    cc = deployment.gpu.compute_capability
    forced = attention_values(options.extra_args)
    if deployment.gpu.is_amd:
        for message, fix in rocm_forced_problems(deployment.model.attention, forced):
            out.append(_error(deployment, message, key=EXTRA_ARGS_KEY, hint=fix))
    elif forced and cc is not None:
        for kv in sorted({p.knobs.kv_cache_dtype for p in deployment.pools}):
            for message, fix in forced_problems((cc[0], cc[1]), kv, deployment.model.attention, forced):
                out.append(_error(deployment, message, key=EXTRA_ARGS_KEY, hint=fix))
    return out


def _word_checks(deployment: Deployment) -> list[Diagnostic]:
    """Spec values that become whole words of the argv must not read as flags."""
    model = deployment.model
    out = []
    for key, value in (("model.id", model.id), ("model.served_name", model.served_name),
                       ("model.revision", model.revision)):
        if value is not None and value.startswith("-"):
            out.append(_error(deployment, f"{value!r} starts with '-': vllm serve would read it as a flag, not as the "
                                    f"{key.split('.')[1].replace('_', ' ')}", key=key))
    return out


def _argv_checks(deployment: Deployment, options: VllmOptions) -> list[Diagnostic]:
    servers = deployment.servers
    out: list[Diagnostic] = []
    seen: set[str] = set()
    for server in servers:
        roles = [node_role(server, r) for r in range(len(server.nodes))] if server.spans_nodes else [NodeRole()]
        for role in roles:
            try:
                argv = serve_command(deployment, server, options, role).argv
            except LaunchError as exc:
                out.append(_error(deployment, f"server {server.name!r}: {exc}"))
                continue
            for problem in check_argv(argv):
                if problem not in seen:
                    seen.add(problem)
                    key = EXTRA_ARGS_KEY if options.extra_args else None
                    out.append(_error(deployment, f"vllm serve {ENGINE_VERSION} would reject the command of "
                                            f"{server.name!r}: {problem}", key=key))
    return out


def _option_warnings(deployment: Deployment, options: VllmOptions) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    note = image_note(deployment)
    if note:
        out.append(_error(deployment, note, key="operations.image_tag", severity=Severity.WARNING))
    if options.enforce_eager is False and not all(p.knobs.cuda_graphs for p in deployment.pools):
        out.append(_error(deployment,
                          "enforce_eager = false forces CUDA graphs the plan found no memory for: start-up may "
                                "fail while capturing graphs (USER-PAINS #2)", key="backends.vllm.enforce_eager",
                          severity=Severity.WARNING))
    cache = deployment.operations.model_cache
    if ":" in cache:
        out.append(_error(deployment, f"model_cache {cache!r} contains ':', which `docker run --volume` reads as a "
                                "separator", key="operations.model_cache", hint="use a path without ':'"))
    hw = deployment.hardware
    # Independent servers, one node each, keep NCCL on the node: only a server that spans nodes needs the NIC.
    if hw.network_interface is None and any(s.spans_nodes for s in deployment.servers):
        out.append(_error(deployment, "not set while a server spans nodes: NCCL may pick "
                                "docker0 or a management NIC and hang (USER-PAINS #15)",
                         key="hardware.network_interface",
                          severity=Severity.WARNING, hint='set it to the interface the nodes share, e.g. "eth0"'))
    return out


def _agent_warning(deployment: Deployment, extra_args: tuple[str, ...]) -> list[Diagnostic]:
    return missing_parser_warning(deployment, agent_parsers(deployment.model.family, deployment.model.id), extra_args,
                                  backend="vllm", rule=RULE,
                                  example='["--enable-auto-tool-choice", "--tool-call-parser", "hermes"]')


def check_plan(deployment: Deployment) -> list[Diagnostic]:
    """Every problem vLLM 0.33.0 would have with this plan."""
    options = parse_options(deployment.options)
    diagnostics: list[Diagnostic] = []
    for pool in deployment.pools:
        diagnostics += _pool_checks(deployment, pool)
    diagnostics += _extra_args_checks(deployment, options)
    words = _word_checks(deployment)
    diagnostics += words or _argv_checks(deployment, options)  # a flag-like value would be reported twice
    diagnostics += _option_warnings(deployment, options)
    diagnostics += _agent_warning(deployment, options.extra_args)
    return diagnostics
