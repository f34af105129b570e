"""Resolving a valid spec into a Target: the model architecture, the GPU, the links, the backend.

Name lookups (GPU, model, interconnect, backend) and the semantic rules that need catalog
facts live here, so every diagnostic still points at the spec's key and line.  The installed
backends (and what their plugins add to the catalog) come from the plugin registry.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator

from attrs import astuple, evolve

from deployc.catalog import (
    GPU,
    CatalogLookupError,
    Link,
    ModelArch,
    ModelResolutionError,
    UnsupportedArchitecture,
    custom_gpu,
    resolve_gpu,
    resolve_link,
    resolve_model,
)
from deployc.catalog.hf import INSTALL_HINT, looks_like_repo_id
from deployc.diagnostics import Diagnostic, Severity, SpecError, has_errors
from deployc.plugins import PluginRegistry
from deployc.spec.loader import SpecDocument
from deployc.spec.model import Spec
from deployc.target import Target
from deployc.units import GIB


def _nvlink_id(gpu: GPU) -> str | None:
    if gpu.nvlink is None:
        return None
    return f"nvlink{gpu.nvlink.gen}" if gpu.nvlink.topology == "nvswitch" else "nvlink-bridge"


def _vendor_link_error(doc: SpecDocument, gpu: GPU, wanted: str) -> SpecError | None:
    """NVLink on an AMD GPU, or Infinity Fabric on an NVIDIA one: a link the GPU cannot have."""
    path = ("hardware", "interconnect")
    if gpu.is_amd and wanted.startswith("nvlink"):
        fix = "infinity-fabric" if gpu.xgmi_link else f"pcie{gpu.pcie_gen or 4}"
        return SpecError([doc.diagnostic("DPC104", f"{gpu.name} is an AMD GPU; NVLink is NVIDIA's link", path,
                                         value=repr(wanted), hint=f'use interconnect = "{fix}" (or "auto")')])
    if wanted == "infinity-fabric" and not gpu.xgmi_link:
        fix = _nvlink_id(gpu) or f"pcie{gpu.pcie_gen or 4}"
        what = "an NVIDIA GPU" if not gpu.is_amd else "not an Instinct OAM board"
        return SpecError([doc.diagnostic("DPC104", f"{gpu.name} is {what}; Infinity Fabric (xGMI) links AMD "
                                         "Instinct OAM boards", path, value=repr(wanted),
                                         hint=f'use interconnect = "{fix}" (or "auto")')])
    return None


def _intra_link(doc: SpecDocument, spec: Spec, gpu: GPU) -> Link:
    wanted = spec.hardware.interconnect
    path = ("hardware", "interconnect")
    error = _vendor_link_error(doc, gpu, wanted)
    if error is not None:
        raise error
    if wanted in ("auto", "infinity-fabric") and gpu.xgmi_link:
        return resolve_link(gpu.xgmi_link)
    if wanted == "auto":
        # What the card has without extras (docs/spec.md): NVSwitch NVLink on SXM boards; a PCIe card's
        # NVLink bridge is an add-on, so it is planned only when the spec states it.
        switched = gpu.nvlink is not None and gpu.nvlink.topology == "nvswitch"
        link_id = _nvlink_id(gpu) if switched else None
        return resolve_link(link_id or (f"pcie{gpu.pcie_gen}" if gpu.pcie_gen else "pcie4"))
    if wanted.startswith("nvlink"):
        have = _nvlink_id(gpu)
        if gpu.nvlink is None:
            raise SpecError([doc.diagnostic("DPC104", f"{gpu.name} has no NVLink", path, value=repr(wanted),
                                            hint=f'use interconnect = "pcie{gpu.pcie_gen or 4}"')])
        if wanted not in ("nvlink-bridge", f"nvlink{gpu.nvlink.gen}"):
            raise SpecError([doc.diagnostic("DPC104", f"{gpu.name} has NVLink {gpu.nvlink.gen}, not {wanted}",
                                            path, value=repr(wanted), hint=f'use interconnect = "{have}"')])
    return resolve_link(wanted if wanted != "none" else f"pcie{gpu.pcie_gen or 4}")


def _lookup_error(doc: SpecDocument, exc: CatalogLookupError, path: tuple[str, ...], rule: str,
                  listing: str) -> Diagnostic:
    hint = f"did you mean {exc.suggestions[0]!r}?" if exc.suggestions else f"see `deployc catalog {listing}`"
    message = f"unknown {exc.kind} {exc.name!r}"
    if isinstance(exc, ModelResolutionError) and looks_like_repo_id(exc.name):
        message += f": {'; '.join(exc.tried)}"
        hint = (f"to plan offline, set model.config to the model's config.json (a file or its directory); to read it "
                f"from the Hugging Face Hub, install the hf extra ({INSTALL_HINT}); or {hint[0].lower()}{hint[1:]}")
    return doc.diagnostic(rule, message, path, value=repr(exc.name), hint=hint)


def _custom_gpu(doc: SpecDocument, spec: Spec, extra: list[GPU], errors: list[Diagnostic]) -> GPU | None:
    """The GPU ``[hardware.custom]`` describes, validated; None (and errors) when it cannot be used."""
    custom = spec.hardware.custom
    assert custom is not None  # noqa: S101  (the caller checked)
    path = ("hardware", "custom")
    try:
        known = resolve_gpu(spec.hardware.gpu, extra=extra)
    except CatalogLookupError:
        known = None
    if known is not None:
        errors.append(doc.diagnostic("DPC106", f"the catalog has {known.name}; [hardware.custom] describes only a GPU "
                                     "it lacks", path, hint="remove [hardware.custom] (or name your card differently "
                                     "if it is another one)"))
        return None
    major, minor = (int(part) for part in custom.compute_capability.split("."))
    if custom.fp8_tflops is not None and (major, minor) < (8, 9):
        errors.append(doc.diagnostic("DPC106", f"compute capability {custom.compute_capability} has no FP8 tensor "
                                     "cores (FP8 needs 8.9 or newer)", (*path, "fp8_tflops"),
                                     value=f"{custom.fp8_tflops:g}", hint="remove fp8_tflops"))
    elif custom.fp8_tflops is not None and custom.fp8_tflops < custom.bf16_tflops:
        errors.append(doc.diagnostic("DPC106", f"fp8_tflops {custom.fp8_tflops:g} is below bf16_tflops "
                                     f"{custom.bf16_tflops:g}: FP8 tensor cores run at twice the BF16 rate",
                                     (*path, "fp8_tflops"), value=f"{custom.fp8_tflops:g}",
                                     hint="copy the dense (not sparse) figures of both rows of the spec sheet"))
    if errors:
        return None
    return custom_gpu(spec.hardware.gpu, memory_gib=custom.memory_gib, bandwidth_gb_s=custom.bandwidth_gb_s,
                      bf16_tflops=custom.bf16_tflops, fp8_tflops=custom.fp8_tflops,
                      compute_capability=(major, minor), tdp_w=custom.tdp_w, pcie_gen=custom.pcie_gen,
                      source=f"[hardware.custom] in {doc.display_name}")


def _gpu_lookup_error(doc: SpecDocument, exc: CatalogLookupError, extra: list[GPU]) -> Diagnostic:
    """Unknown GPU: a suggestion is another card, so say its memory rather than offer it silently."""
    diagnostic = _lookup_error(doc, exc, ("hardware", "gpu"), "DPC101", "gpus")
    if not exc.suggestions:
        return diagnostic
    close = resolve_gpu(exc.suggestions[0], extra=extra)
    return evolve(diagnostic, hint=(
        f"did you mean {close.name!r} ({close.memory_bytes / GIB:.1f} GiB, "
        f"{close.mem_bandwidth_bytes_per_s / 1e9:,.0f} GB/s)? Only if that is your card: describe another in "
        "[hardware.custom]"))


# An Instinct OAM platform (UBB) carries 8 GPUs in one Infinity Fabric mesh (catalog form_factor "OAM (8 per
# UBB)"; ROCm blogs "Understanding RCCL Bandwidth and xGMI Performance on AMD Instinct MI300X": seven peers).
INSTINCT_GPUS_PER_NODE = 8


def _instinct_node_checks(doc: SpecDocument, spec: Spec, gpu: GPU) -> Iterator[Diagnostic]:
    """More than one mesh's worth of Instinct GPUs per node, or device ids beyond it (partition modes not planned)."""
    if not gpu.xgmi_link:
        return
    hw = spec.hardware
    if hw.gpus_per_node > INSTINCT_GPUS_PER_NODE:
        yield doc.diagnostic("DPC104", f"{gpu.name} nodes hold {INSTINCT_GPUS_PER_NODE} GPUs in one Infinity Fabric "
                             f"mesh; {hw.gpus_per_node} per node would be a partition mode (CPX), which deployc does "
                             "not plan", ("hardware", "gpus_per_node"), value=str(hw.gpus_per_node),
                             hint=f"set gpus_per_node ≤ {INSTINCT_GPUS_PER_NODE} and add nodes")
    if hw.gpu_ids is not None and max(hw.gpu_ids) >= INSTINCT_GPUS_PER_NODE:
        yield doc.diagnostic("DPC104", f"device {max(hw.gpu_ids)} does not exist on an {gpu.name} node (devices 0-"
                             f"{INSTINCT_GPUS_PER_NODE - 1}, as `amd-smi list` numbers them)", ("hardware", "gpu_ids"),
                             value=str(list(hw.gpu_ids)), hint="use device indices 0-7")


def _checks(doc: SpecDocument, spec: Spec, model: ModelArch, gpu: GPU) -> Iterator[Diagnostic]:
    limit = model.max_position_embeddings
    ctx = spec.model.max_context_tokens
    if ctx is not None and ctx > limit:
        yield doc.diagnostic("DPC201", f"{ctx:,} tokens exceed the model's limit of {limit:,}",
                             ("model", "max_context_tokens"), value=str(ctx),
                             hint=f"set max_context_tokens ≤ {limit} (RoPE scaling beyond the config is not planned)")
    if spec.model.dtype == "bfloat16" and not gpu.supports_bf16:
        yield doc.diagnostic("DPC202", f"{gpu.name} ({gpu.arch}) has no bfloat16", ("model", "dtype"),
                             value='"bfloat16"', hint='use dtype = "float16" (or "auto"); FP16 can overflow where '
                             "BF16 would not, watch for NaNs")
    quant = spec.model.quantization
    if quant == "nvfp4" and gpu.is_amd:
        fix = 'use "mxfp4" (the OCP FP4 format CDNA 4 runs natively)' if gpu.fp4_native else 'use "fp8"'
        yield doc.diagnostic("DPC203", f"NVFP4 is NVIDIA's FP4 format; {gpu.name} is an AMD GPU",
                             ("model", "quantization"), value='"nvfp4"', hint=fix)
    elif quant == "nvfp4" and not gpu.fp4_native:
        yield doc.diagnostic("DPC203", f"NVFP4 needs Blackwell; {gpu.name} is {gpu.arch}",
                             ("model", "quantization"), value='"nvfp4"', hint='use "fp8" or "awq"')
    if spec.model.kv_cache_dtype == "bfloat16" and not gpu.supports_bf16:
        yield doc.diagnostic("DPC202", f"{gpu.name} has no bfloat16 for the KV cache", ("model", "kv_cache_dtype"),
                             value='"bfloat16"', hint='use "float16", "fp8" or "auto"')
    yield from _instinct_node_checks(doc, spec, gpu)
    ckpt = model.checkpoint_quant
    if ckpt is not None and quant not in ("auto", ckpt.method) and not (quant == "int8" and ckpt.bits == 8):
        yield doc.diagnostic("DPC210", f"the checkpoint is already quantized ({ckpt.method}); cannot serve it as "
                             f"{quant}", ("model", "quantization"), value=repr(quant),
                             hint=f'use quantization = "auto" (or "{ckpt.method}"), or an unquantized checkpoint')
    yield from _power_limit_checks(doc, spec, gpu)
    reserved = spec.hardware.reserved_memory_gib * GIB
    if reserved >= gpu.memory_bytes:
        yield doc.diagnostic("DPC207", f"{spec.hardware.reserved_memory_gib:g} GiB reserved of {gpu.name}'s "
                             f"{gpu.memory_bytes / GIB:.1f} GiB", ("hardware", "reserved_memory_gib"),
                             hint="reserved memory is what other processes already hold on each GPU")


def _power_limit_checks(doc: SpecDocument, spec: Spec, gpu: GPU) -> Iterator[Diagnostic]:
    limit = spec.environment.power_limit_w
    low, high = gpu.power_limit_min_w, gpu.power_limit_max_w
    if limit is None or ((low is None or limit >= low) and (high is None or limit <= high)):
        return
    accepted = f"{low:g}-{high:g} W" if low is not None and high is not None else (
        f"at least {low:g} W" if low is not None else f"at most {high:g} W")
    yield doc.diagnostic("DPC220", f"{gpu.name} accepts power limits of {accepted} (nvidia-smi Min/Max Power Limit), "
                         f"not {limit:g} W", ("environment", "power_limit_w"), value=f"{limit:g}",
                         hint="set the limit the GPUs actually run at (`nvidia-smi -q -d POWER` shows it)")


def resolve(doc: SpecDocument, spec: Spec, registry: PluginRegistry) -> tuple[Target, list[Diagnostic]]:
    """Resolve names to facts and run the catalog-dependent rules; raise SpecError on errors."""
    errors: list[Diagnostic] = []
    extra_gpus = registry.catalog_gpus()
    extra_models = registry.catalog_models()
    gpu = model = None
    model_key = ("model", "config") if spec.model.config else ("model", "id")
    if spec.hardware.custom is not None:
        gpu = _custom_gpu(doc, spec, extra_gpus, errors)
    else:
        try:
            gpu = resolve_gpu(spec.hardware.gpu, extra=extra_gpus)
        except CatalogLookupError as exc:
            errors.append(_gpu_lookup_error(doc, exc, extra_gpus))
    try:
        model = resolve_model(spec.model.config or spec.model.id, base_dir=doc.path.parent, extra=extra_models)
    except CatalogLookupError as exc:
        errors.append(_lookup_error(doc, exc, model_key, "DPC102", "models"))
    except UnsupportedArchitecture as exc:
        errors.append(doc.diagnostic("DPC103", str(exc), model_key, value=repr(spec.model.id),
                                     hint="deployc plans the architectures listed in docs/spec.md"))
    backend = spec.operations.backend
    if backend != "auto" and backend not in registry.backends:
        failure = registry.failure_for(backend)
        close = difflib.get_close_matches(backend, registry.names(), n=1)
        hint = (failure.diagnostic.message if failure else f"did you mean {close[0]!r}?" if close else
                f"installed: {', '.join(registry.names()) or 'none'} (see `deployc backends`)")
        errors.append(doc.diagnostic("DPC105", f"no installed backend named {backend!r}",
                                     ("operations", "backend"), value=repr(backend), hint=hint))
    if errors or gpu is None or model is None:
        raise SpecError(errors)
    link = _intra_link(doc, spec, gpu)
    network = resolve_link(spec.hardware.network) if spec.hardware.network != "none" else None
    diagnostics = list(_checks(doc, spec, model, gpu))
    pins = any(value is not None for value in astuple(spec.plan))
    if pins:  # the pin checks use the planner's layout and precision rules: imported only when needed
        from deployc.pin_checks import capability_diagnostics, pin_diagnostics  # noqa: PLC0415

        diagnostics += pin_diagnostics(doc, spec, model, gpu, link, registry.names())
    if has_errors(diagnostics):
        raise SpecError([d for d in diagnostics if d.severity is Severity.ERROR])
    target = Target(spec=spec, spec_file=doc.display_name, model=model, gpu=gpu, intra_node_link=link,
                    network=network, reserved_memory_bytes=int(spec.hardware.reserved_memory_gib * GIB))
    if pins:
        diagnostics += capability_diagnostics(doc, target, registry.models())
    if has_errors(diagnostics):
        raise SpecError([d for d in diagnostics if d.severity is Severity.ERROR])
    return target, diagnostics
