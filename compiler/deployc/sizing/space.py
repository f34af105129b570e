"""What ``deployc size`` searches: GPU types, GPU counts, and the backend × precision variants of a spec.

Layouts (TP, PP, DP, EP), KV dtype and serving knobs are not enumerated here: each variant is
planned by the planner, which searches those itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from attrs import evolve, frozen

from deployc.catalog import GPU, CatalogLookupError, ModelArch, resolve_gpu
from deployc.catalog.prices import catalog_prices
from deployc.contract.backend import BackendInfo
from deployc.planner.backend_choice import rank_backends
from deployc.spec.model import Spec

# Searched when --gpus is absent and the catalog lists no prices: the data-centre GPUs the large
# clouds rent on demand, one per class (Hopper, Ampere 80 GB, Ada 48 GB, Ada 24 GB). Documented in
# docs/size.md; `deployc catalog gpus` lists the rest.
DEFAULT_GPUS: tuple[str, ...] = ("H100 SXM", "A100 80GB SXM", "L40S", "L4")
DEFAULT_MAX_GPUS = 16
# Beyond one node, sizes grow by whole 8-GPU nodes: the HGX / DGX / MI300X platform boards hold 8.
GPUS_PER_FULL_NODE = 8
SINGLE_NODE_COUNTS: tuple[int, ...] = (1, 2, 4, 8)
# [plan] pins that describe the spec's own GPUs (a layout, knobs sized to their memory): not carried to
# other sizes. The backend, weights format, KV dtype and context pins are requirements and are kept.
HARDWARE_PINS: tuple[str, ...] = ("tp", "pp", "dp", "ep", "max_num_seqs", "max_num_batched_tokens",
                                  "memory_fraction")


class SizeUsageError(ValueError):
    """A bad ``deployc size`` argument (exit code 2); the message is printed as is."""


@frozen(kw_only=True)
class Size:
    """GPUs per node × nodes."""

    gpus_per_node: int
    nodes: int

    @property
    def gpus(self) -> int:
        """All GPUs."""
        return self.gpus_per_node * self.nodes

    def label(self) -> str:
        """``4`` or ``2×8`` (nodes × GPUs per node)."""
        return str(self.gpus) if self.nodes == 1 else f"{self.nodes}×{self.gpus_per_node}"


@frozen(kw_only=True)
class Variant:
    """A backend and the spec's ``model.quantization`` to plan one GPU type and size with."""

    backend: str
    quantization: str


def parse_gpus(text: str, extra: Iterable[GPU] = ()) -> tuple[GPU, ...]:
    """``H100,A100-80GB,L40S`` → catalog GPUs in the order given (duplicates dropped)."""
    names = [part.strip() for part in text.split(",")]
    if not any(names) or not all(names):
        raise SizeUsageError(f"--gpus: expected comma-separated GPU names, got {text!r}")
    out: list[GPU] = []
    for name in names:
        try:
            gpu = resolve_gpu(name, extra=extra)
        except CatalogLookupError as exc:
            hint = f"did you mean {exc.suggestions[0]!r}?" if exc.suggestions else "see `deployc catalog gpus`"
            raise SizeUsageError(f"--gpus: unknown GPU {name!r}; {hint}") from exc
        if gpu not in out:
            out.append(gpu)
    return tuple(out)


def default_gpus(spec_gpu: GPU, extra: Iterable[GPU] = ()) -> tuple[tuple[GPU, ...], str]:
    """The GPUs to search without --gpus, and where the list comes from.

    The catalog GPUs that have a listed price; without any, :data:`DEFAULT_GPUS`. The spec's own
    GPU is always included: it is what the user has.
    """
    priced = catalog_prices()
    extra = tuple(extra)
    if priced:
        found = [resolve_gpu(name, extra=extra) for name in sorted(priced)]
        source = "the catalog GPUs with a listed price"
    else:
        found = [resolve_gpu(name, extra=extra) for name in DEFAULT_GPUS]
        source = f"deployc's default list ({', '.join(DEFAULT_GPUS)}; the catalog lists no prices)"
    if spec_gpu not in found:
        found.insert(0, spec_gpu)
        source += f" and the spec's {spec_gpu.name}"
    return tuple(dict.fromkeys(found)), source


def sizes(max_gpus: int, has_network: bool) -> tuple[Size, ...]:
    """1, 2, 4, 8 GPUs on one node, then whole 8-GPU nodes when the spec has a network, up to ``max_gpus``."""
    if max_gpus < 1:
        raise SizeUsageError(f"--max-gpus: expected a positive number of GPUs, got {max_gpus}")
    out = [Size(gpus_per_node=n, nodes=1) for n in SINGLE_NODE_COUNTS if n <= max_gpus]
    if has_network:
        nodes = 2
        while nodes * GPUS_PER_FULL_NODE <= max_gpus:
            out.append(Size(gpus_per_node=GPUS_PER_FULL_NODE, nodes=nodes))
            nodes += 1
    return tuple(out)


def variants(spec: Spec, gpu: GPU, model: ModelArch, installed: Sequence[BackendInfo]) -> tuple[Variant, ...]:
    """Backend × precision variants of one GPU type: first the spec as written (the planner's own choice).

    Then, when the spec (or its ``[plan]``) leaves them to deployc, each backend the backend rules allow (in their
    order) with each weight format an engine makes at load time from an unquantized checkpoint
    (unquantized, FP8). AWQ, GPTQ and NVFP4 need a checkpoint quantized offline: not searched.
    """
    own = Variant(backend=spec.plan.backend or spec.operations.backend, quantization=spec.model.quantization)
    backends = ((own.backend,) if own.backend != "auto" else rank_backends(spec, installed, gpu.vendor).order)
    precisions: tuple[str, ...] = (spec.model.quantization,)
    if spec.model.quantization == "auto" and spec.plan.quantization is None and model.checkpoint_quant is None:
        fp8_first = gpu.fp8_native and spec.slo.goal in ("throughput", "cost")
        precisions = ("fp8", "none") if fp8_first else ("none", "fp8")
    others = [Variant(backend=b, quantization=q) for q in precisions for b in backends]
    return (own, *(v for v in others if v != own))


def same_choice(variant: Variant, backend: str, weights_format: str) -> bool:
    """Whether a plan made with ``backend`` and ``weights_format`` is what ``variant`` would plan."""
    if variant.backend not in ("auto", backend):
        return False
    if variant.quantization == "none":
        return weights_format in ("bf16", "fp16")
    return variant.quantization in ("auto", weights_format)


def sized_spec(spec: Spec, gpu: GPU, spec_gpu: GPU, size: Size, variant: Variant) -> Spec:
    """The spec on ``size`` × ``gpu`` with the variant's backend and quantization.

    The spec's interconnect, device ids, ``[hardware.custom]`` and ``slo.gpu_hour_usd`` describe its own GPUs: they are
    kept only for the spec's GPU type at its own count (the price for any count of it); other GPU
    types take their own link (``auto``) and the catalog price. ``[plan]`` pins of a layout or of
    knobs sized to the spec's GPUs (:data:`HARDWARE_PINS`) are dropped.
    """
    hw = spec.hardware
    same_gpu = gpu == spec_gpu
    same_devices = same_gpu and size.gpus_per_node == hw.gpus_per_node
    hardware = evolve(hw, gpu=gpu.name, gpus_per_node=size.gpus_per_node, nodes=size.nodes,
                      interconnect=hw.interconnect if same_gpu else "auto",
                      gpu_ids=hw.gpu_ids if same_devices else None,
                      custom=hw.custom if same_gpu else None)  # [hardware.custom] describes the spec's GPU only
    slo = spec.slo if same_gpu else evolve(spec.slo, gpu_hour_usd=None)
    operations = evolve(spec.operations, backend=variant.backend)
    model = evolve(spec.model, quantization=variant.quantization)  # type: ignore[arg-type]
    # The backend goes to operations.backend, not [plan]: any pin makes the planner plan twice (to explain it).
    plan = evolve(spec.plan, backend=None, **dict.fromkeys(HARDWARE_PINS))
    return evolve(spec, hardware=hardware, slo=slo, operations=operations, model=model, plan=plan)


def dropped_pins(spec: Spec) -> tuple[str, ...]:
    """The spec's ``[plan]`` pins the search does not apply (they describe its own GPUs)."""
    return tuple(name for name in HARDWARE_PINS if getattr(spec.plan, name) is not None)
