"""Validating ``[plan]`` pins against the model, the hardware and the installed backends.

Each pin is checked where it can be checked alone, before any planning, so the error points at
its own key and line: a TP the heads do not divide, more GPUs than given, TP across nodes, a
precision the GPU, checkpoint or backend cannot run, a context above the model's limit, a pin
that contradicts the same setting elsewhere in the spec. Pins that are valid alone but do not
fit together (memory) are found by planning them (rule DPC307, :mod:`deployc.planner.pins`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING

from deployc.catalog import GPU, Link, ModelArch
from deployc.diagnostics import Diagnostic, Severity
from deployc.planner.parallel import split_reasons, topology_reasons
from deployc.planner.precision import (
    DENSE_DTYPES,
    ON_THE_FLY_FORMATS,
    activation_dtype,
    checkpoint_format,
    chosen_dtype,
    kv_dtype_candidates,
    weight_candidates,
)
from deployc.planner.types import Layout
from deployc.planner.workload import workload_shapes
from deployc.spec.loader import SpecDocument
from deployc.spec.model import Spec

if TYPE_CHECKING:
    from deployc.planner.models import Backends
    from deployc.target import Target


def _conflicts(doc: SpecDocument, spec: Spec) -> Iterator[Diagnostic]:
    """DPC216: a pin and the same setting given elsewhere must agree."""
    pins, model, ops = spec.plan, spec.model, spec.operations
    if pins.quantization is not None and model.quantization != "auto":
        same = pins.quantization in DENSE_DTYPES if model.quantization == "none" else (
            pins.quantization == model.quantization)
        if not same:
            yield doc.diagnostic("DPC216", f"[plan].quantization = {pins.quantization!r} but model.quantization = "
                                 f"{model.quantization!r}", ("plan", "quantization"), value=repr(pins.quantization),
                                 hint="give the weights format once: drop one of the two")
    dense = DENSE_DTYPES.get(pins.quantization or "")
    if dense is not None and model.dtype not in ("auto", dense):
        yield doc.diagnostic("DPC216", f"{pins.quantization} weights are served in {dense}, but model.dtype = "
                             f"{model.dtype!r}", ("plan", "quantization"), value=repr(pins.quantization),
                             hint=f'drop model.dtype, or pin quantization = "{_dense_of(model.dtype)}"')
    if pins.kv_cache_dtype is not None and model.kv_cache_dtype not in ("auto", pins.kv_cache_dtype):
        yield doc.diagnostic("DPC216", f"[plan].kv_cache_dtype = {pins.kv_cache_dtype!r} but model.kv_cache_dtype "
                             f"= {model.kv_cache_dtype!r}", ("plan", "kv_cache_dtype"),
                             value=repr(pins.kv_cache_dtype), hint="give the KV-cache dtype once: drop one of the two")
    if pins.max_model_len is not None and model.max_context_tokens not in (None, pins.max_model_len):
        yield doc.diagnostic("DPC216", f"[plan].max_model_len = {pins.max_model_len} but model.max_context_tokens = "
                             f"{model.max_context_tokens}", ("plan", "max_model_len"), value=str(pins.max_model_len),
                             hint="give the context length once: drop one of the two")
    if pins.backend is not None and ops.backend not in ("auto", pins.backend):
        yield doc.diagnostic("DPC216", f"[plan].backend = {pins.backend!r} but operations.backend = "
                             f"{ops.backend!r}", ("plan", "backend"), value=repr(pins.backend),
                             hint="give the backend once: drop one of the two")


def _dense_of(dtype: str) -> str:
    return next(fmt for fmt, name in DENSE_DTYPES.items() if name == dtype)


def _precision(doc: SpecDocument, spec: Spec, model: ModelArch, gpu: GPU) -> Iterator[Diagnostic]:
    """DPC214: what the GPU or the checkpoint rules out, before asking any backend."""
    fmt, kv = spec.plan.quantization, spec.plan.kv_cache_dtype
    path = ("plan", "quantization")
    ckpt = checkpoint_format(model)
    if fmt is not None and ckpt is not None and fmt != ckpt:
        yield doc.diagnostic("DPC214", f"the checkpoint is already quantized as {ckpt}; it cannot be served as {fmt}",
                             path, value=repr(fmt), hint=f'pin quantization = "{ckpt}", or point model.config at a '
                             f"checkpoint quantized as {fmt}")
    elif fmt is not None and ckpt is None and fmt not in DENSE_DTYPES and fmt not in ON_THE_FLY_FORMATS:
        yield doc.diagnostic("DPC214", f"{fmt} weights need a checkpoint quantized as {fmt}; {model.name} is "
                             "unquantized", path, value=repr(fmt),
                             hint=f"point model.id (or model.config) at a checkpoint quantized as {fmt}, or pin "
                                  f"{' / '.join(sorted(ON_THE_FLY_FORMATS))} (quantized at load)")
    if fmt == "bf16" and not gpu.supports_bf16:
        yield doc.diagnostic("DPC214", f"{gpu.name} ({gpu.arch}) has no bfloat16", path, value=repr(fmt),
                             hint='pin quantization = "fp16"')
    if fmt == "nvfp4" and not gpu.fp4_native:
        yield doc.diagnostic("DPC214", f"NVFP4 needs Blackwell; {gpu.name} is {gpu.arch}", path, value=repr(fmt),
                             hint='pin "fp8" or a 4-bit AWQ checkpoint')
    if kv == "bfloat16" and not gpu.supports_bf16:
        yield doc.diagnostic("DPC214", f"{gpu.name} ({gpu.arch}) has no bfloat16 for the KV cache",
                             ("plan", "kv_cache_dtype"), value=repr(kv), hint='pin "float16" or "fp8"')


def _layout(doc: SpecDocument, spec: Spec, model: ModelArch, gpu: GPU, link: Link) -> Iterator[Diagnostic]:
    """DPC212 (the model cannot be split so) and DPC213 (the GPUs cannot hold it)."""
    pins, hw = spec.plan, spec.hardware
    total = hw.gpus_per_node * hw.nodes
    given = [(key, value) for key, value in (("tp", pins.tp), ("pp", pins.pp), ("dp", pins.dp)) if value is not None]
    if given and math.prod(v for _, v in given) > total:
        product = " × ".join(f"{k} {v}" for k, v in given)
        yield doc.diagnostic("DPC213", f"{product} needs {math.prod(v for _, v in given)} GPUs, but the spec gives "
                             f"{total} ({hw.gpus_per_node} per node × {hw.nodes} node{'s' * (hw.nodes > 1)})",
                             ("plan", given[-1][0]), value=str(given[-1][1]),
                             hint="lower the pins, or give more GPUs (hardware.gpus_per_node, hardware.nodes)")
    quant = model.checkpoint_quant
    block = quant.block_size[-1] if quant is not None and quant.block_size else None
    if pins.tp is not None:
        for reason in split_reasons(model, tp=pins.tp, pp=1, ep=pins.ep or 1, weights_block_size=block):
            yield doc.diagnostic("DPC212", reason, ("plan", "tp"), value=str(pins.tp), hint=_tp_hint(model, total))
        layout = Layout(tp=pins.tp, pp=1, dp=1)
        topology = [] if pins.tp > total else topology_reasons(
            layout, gpus_per_node=hw.gpus_per_node, nodes=hw.nodes, intra_link=link, gpu=gpu)
        for reason in topology:
            yield doc.diagnostic("DPC213", reason, ("plan", "tp"), value=str(pins.tp),
                                 hint="use pipeline parallelism (pp) across nodes, TP inside each")
    if pins.pp is not None and model.num_layers < pins.pp:
        yield doc.diagnostic("DPC212", f"{model.num_layers} layers are fewer than the {pins.pp} pipeline stages",
                             ("plan", "pp"), value=str(pins.pp), hint=f"pp ≤ {model.num_layers}")
    yield from _experts(doc, spec, model)


def _tp_hint(model: ModelArch, total: int) -> str:
    fits = [tp for tp in range(1, total + 1) if not split_reasons(model, tp=tp, pp=1, ep=1, weights_block_size=None)]
    return f"TP sizes this model takes on {total} GPUs: {', '.join(map(str, fits))}" if fits else "pin tp = 1"


def _experts(doc: SpecDocument, spec: Spec, model: ModelArch) -> Iterator[Diagnostic]:
    pins = spec.plan
    if pins.ep is None or pins.ep == 1:
        return
    path, value = ("plan", "ep"), str(pins.ep)
    if not model.is_moe:
        yield doc.diagnostic("DPC212", f"EP{pins.ep} needs a mixture-of-experts model; {model.name} is dense",
                             path, value=value, hint="drop ep (or pin ep = 1)")
        return
    if model.num_experts % pins.ep:
        yield doc.diagnostic("DPC212", f"{model.num_experts} experts are not divisible by EP{pins.ep}", path,
                             value=value, hint="EP must divide the number of experts")
    if pins.tp is not None and pins.dp is not None and pins.ep != pins.tp * pins.dp:
        yield doc.diagnostic("DPC212", f"EP must equal TP × DP = {pins.tp * pins.dp} (vLLM --enable-expert-parallel)",
                             path, value=value, hint=f"pin ep = {pins.tp * pins.dp}, or ep = 1")


def _knobs(doc: SpecDocument, spec: Spec, model: ModelArch) -> Iterator[Diagnostic]:
    """DPC215: knob pins outside what the model or the engine accepts."""
    pins = spec.plan
    limit = model.max_position_embeddings
    if pins.max_model_len is not None:
        if pins.max_model_len > limit:
            yield doc.diagnostic("DPC215", f"{pins.max_model_len:,} tokens exceed the model's limit of {limit:,}",
                                 ("plan", "max_model_len"), value=str(pins.max_model_len),
                                 hint=f"max_model_len ≤ {limit} (RoPE scaling beyond the config is not planned)")
        else:
            longest = max(shape.needed_context_tokens for shape in workload_shapes(spec))
            if pins.max_model_len < longest:
                yield doc.diagnostic("DPC215", f"the longest request needs {longest:,} tokens (prompt + output) but "
                                     f"max_model_len is {pins.max_model_len:,}: the engine refuses longer requests",
                                     ("plan", "max_model_len"), value=str(pins.max_model_len),
                                     severity=Severity.WARNING, hint=f"max_model_len ≥ {longest}, or accept "
                                     "that the longest requests fail")
    if pins.max_num_batched_tokens is not None and pins.max_num_seqs is not None and (
            pins.max_num_batched_tokens < pins.max_num_seqs):
        yield doc.diagnostic("DPC215", f"max_num_batched_tokens {pins.max_num_batched_tokens:,} is below max_num_seqs "
                             f"{pins.max_num_seqs:,}: each step needs a token per running sequence",
                             ("plan", "max_num_batched_tokens"), value=str(pins.max_num_batched_tokens),
                             hint=f"max_num_batched_tokens ≥ {pins.max_num_seqs}")


def pin_diagnostics(doc: SpecDocument, spec: Spec, model: ModelArch, gpu: GPU, link: Link,
                    installed: list[str]) -> list[Diagnostic]:
    """Every problem with the ``[plan]`` pins that needs the catalog but no backend."""
    out = [*_conflicts(doc, spec), *_precision(doc, spec, model, gpu), *_layout(doc, spec, model, gpu, link),
           *_knobs(doc, spec, model)]
    backend = spec.plan.backend
    if backend is not None and backend not in installed:
        out.append(doc.diagnostic("DPC105", f"no installed backend named {backend!r}", ("plan", "backend"),
                                  value=repr(backend),
                                  hint=f"installed: {', '.join(installed) or 'none'} (see `deployc backends`)"))
    return out


def capability_diagnostics(doc: SpecDocument, target: Target, installed: Backends) -> list[Diagnostic]:
    """DPC214: a pinned precision that no backend the plan may use can run on this GPU."""
    spec = target.spec
    pins = spec.plan
    if pins.quantization is None and pins.kv_cache_dtype is None:
        return []
    forced = pins.backend or (spec.operations.backend if spec.operations.backend != "auto" else None)
    backends = [forced] if forced else installed.names()
    dtype = chosen_dtype(activation_dtype(spec, target.model, target.gpu))
    # Ask about the pinned precision beside the plainest other half (the checkpoint's or dense weights, the
    # activation-dtype KV cache), so a refusal is about the pin and not about another candidate.
    candidates = weight_candidates(spec, target.model, target.gpu, dtype)
    plain = [c.weights_format for c in candidates if c.weights_format in DENSE_DTYPES or c.from_checkpoint]
    formats = plain if pins.quantization is None and plain else [candidates[0].weights_format]
    kvs = kv_dtype_candidates(spec, dtype, target.gpu)[:1]
    refusals: list[str] = []
    for name in backends:
        verdicts = [installed[name].capability(target, fmt, kv) for fmt in formats for kv in kvs]
        if any(v.supported for v in verdicts):
            return []
        refusals += [f"{name}: {v.reason}" + (f"; {v.alternative}" if v.alternative else "") for v in verdicts[:1]]
    key = "quantization" if pins.quantization is not None else "kv_cache_dtype"
    value = pins.quantization if pins.quantization is not None else pins.kv_cache_dtype
    what = " with ".join(x for x in (f"{pins.quantization} weights" if pins.quantization else "",
                                     f"KV cache dtype {pins.kv_cache_dtype}" if pins.kv_cache_dtype else "") if x)
    message = (f"the {forced} backend cannot run {what} on {target.gpu.name}" if forced else
               f"no installed backend can run {what} on {target.gpu.name}")
    return [doc.diagnostic("DPC214", message, ("plan", key), value=repr(value),
                           hint="; ".join(dict.fromkeys(refusals)) or "see `deployc backends`")]
