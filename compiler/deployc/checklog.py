"""``deployc check-log``: the plan against what a real engine measured at start-up.

The log's own settings (tensor-parallel size, memory fraction, max model length) replace the
plan's where the log states them, so the comparison is like for like; each mismatch is
attributed to the assumption it points at.
"""

from __future__ import annotations

from pathlib import Path

from attrs import evolve, frozen

from deployc.diagnostics import Diagnostic, SpecError
from deployc.enginelog import EngineLog, parse_engine_log
from deployc.planner.evaluate import Candidate, Evaluated, evaluate_layout
from deployc.planner.types import Layout
from deployc.plugins import PluginRegistry, default_registry

GIB = 1 << 30
TOLERANCE = {"weights": 0.02, "kv_memory": 0.05, "kv_tokens": 0.05}


@frozen
class Comparison:
    """One predicted-vs-observed figure."""

    label: str
    predicted: float
    observed: float | None
    unit: str
    tolerance: float | None
    blame: str

    @property
    def error(self) -> float | None:
        """Relative error of the prediction (None when the log does not say)."""
        if self.observed in (None, 0):
            return None
        return (self.predicted - self.observed) / self.observed

    def line(self) -> str:
        """``weights  14.21 GiB predicted, 14.25 observed (-0.3%) ok``."""
        if self.observed is None:
            return f"{self.label:<24} {self.predicted:>12,.2f} {self.unit} predicted, not in the log"
        err = self.error or 0.0
        if self.tolerance is None:
            verdict = "(follows from the rows above)"
        else:
            verdict = "ok" if abs(err) <= self.tolerance else f"OFF by more than {self.tolerance:.0%}: {self.blame}"
        digits = 0 if self.unit == "tokens" else 2
        return (f"{self.label:<18} {self.predicted:>12,.{digits}f} {self.unit} predicted, {self.observed:,.{digits}f} "
                f"observed ({err:+.1%}) {verdict}")


def _evaluate_like_the_log(candidate: Candidate, log: EngineLog, registry: PluginRegistry,
                           chosen: Evaluated) -> Evaluated:
    layout = chosen.evaluation.layout
    if log.tensor_parallel_size and log.tensor_parallel_size != layout.tp:
        layout = Layout(tp=log.tensor_parallel_size, pp=1, dp=1)
    target = candidate.target
    if log.max_model_len:
        spec = evolve(target.spec, model=evolve(target.spec.model, max_context_tokens=log.max_model_len))
        candidate = evolve(candidate, target=evolve(target, spec=spec))
    if log.gpu_memory_utilization:
        registry = _FractionOverride(registry, log.gpu_memory_utilization)  # type: ignore[assignment]
    return evaluate_layout(candidate, layout, registry)


class _FractionOverride:
    """A registry view whose backend reports the memory fraction the log ran with."""

    def __init__(self, registry: PluginRegistry, fraction: float) -> None:
        self._registry = registry
        self._fraction = fraction

    def runtime_overheads(self, backend: str, query: object) -> object:
        overheads = self._registry.runtime_overheads(backend, query)  # type: ignore[arg-type]
        return evolve(overheads, default_memory_fraction=self._fraction)


def compare(spec_path: Path, log_path: Path, *, display_name: str | None = None,
            registry: PluginRegistry | None = None) -> list[Comparison]:
    """Predicted vs observed figures for a spec and an engine log."""
    from deployc.api import resolve_spec  # noqa: PLC0415  (avoid an import cycle at module load)
    from deployc.planner.planner import _search_pool  # noqa: PLC0415
    from deployc.planner.precision import activation_dtype  # noqa: PLC0415
    from deployc.planner.workload import workload_shapes  # noqa: PLC0415

    registry = registry or default_registry()
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError as exc:
        raise SpecError([Diagnostic(rule="DPC001", message=f"cannot read log: {exc.strerror}",
                                    file=str(log_path))]) from None
    log = parse_engine_log(lines)
    if log.engine is None:
        raise SpecError([Diagnostic(rule="DPC001", file=str(log_path), message="no vLLM or SGLang start-up lines "
                                    "found", hint='expected lines like "GPU KV cache size: N tokens"')])
    _, target, _ = resolve_spec(spec_path, registry, display_name)
    if log.engine not in registry.backends:
        raise SpecError([Diagnostic(rule="DPC105", message=f"the log is from {log.engine}, which is not installed")])
    dtype = str(activation_dtype(target.spec, target.model, target.gpu).value)
    shape = workload_shapes(target.spec)[0]
    hw = target.spec.hardware
    search, _, _ = _search_pool(target, registry, log.engine, dtype, shape, hw.gpus_per_node, hw.nodes)
    chosen = search.chosen()
    if chosen is None:
        chosen = search.closest()
    assert chosen is not None  # noqa: S101  (_search_pool raises when nothing fits)
    ev = _evaluate_like_the_log(search.candidate, log, registry, chosen)
    m = ev.memory
    per_request = log.max_concurrency_tokens_per_request or m.kv_capacity_tokens
    kv_blame = "engine overheads (activation peak, CUDA graphs, non-torch) or the memory fraction"
    graphs_gib = m.per_gpu.cuda_graph_bytes / GIB
    if log.available_kv_gib is not None and ev.overheads.cuda_graph_in_budget and \
            abs(log.available_kv_gib - m.per_gpu.kv_cache_bytes / GIB - graphs_gib) < 0.25:
        kv_blame = (f"CUDA graphs: the planned engine counts their {graphs_gib:.2f} GiB inside its budget; the engine "
                    "that wrote this log did not (vLLM before 0.21)")
    tokens_blame = "KV bytes per token (layers, KV heads per rank, head_dim, dtype) or block rounding"
    if log.available_kv_gib and log.kv_tokens and m.per_gpu.kv_cache_bytes:
        memory_err = m.per_gpu.kv_cache_bytes / GIB / log.available_kv_gib - 1
        tokens_err = m.kv_capacity_tokens / log.kv_tokens - 1
        if abs(tokens_err - memory_err) < 0.02:
            tokens_blame = "follows from the KV memory above (bytes per token agree)"
    return [
        Comparison("weights per GPU", ev.weights.total_bytes / GIB, log.weights_gib, "GiB", TOLERANCE["weights"],
                   "weight sharding or quantized-bytes assumption (checkpoint format, scales, vocab padding)"),
        Comparison("KV cache memory", m.per_gpu.kv_cache_bytes / GIB, log.available_kv_gib, "GiB",
                   TOLERANCE["kv_memory"], kv_blame),
        Comparison("KV cache tokens", m.kv_capacity_tokens, log.kv_tokens, "tokens", TOLERANCE["kv_tokens"],
                   tokens_blame),
        Comparison("max concurrency", m.kv_capacity_tokens / per_request, log.max_concurrency, "x", None, ""),
        Comparison("CUDA graphs", m.per_gpu.cuda_graph_bytes / GIB, log.cuda_graph_gib, "GiB", None, ""),
    ]


def check_log(spec_path: Path, log_path: Path, *, display_name: str | None = None) -> str:
    """The comparison as text, with the settings it was made under."""
    registry = default_registry()
    rows = compare(spec_path, log_path, display_name=display_name, registry=registry)
    log = parse_engine_log(log_path.read_text(errors="replace").splitlines())
    info = registry.info(str(log.engine))
    version = log.engine_version or "not printed in the log"
    header = [f"{info.engine} log (engine version: {version}); predicted with deployc's {info.engine} "
              f"{info.engine_version} model at the log's settings: TP {log.tensor_parallel_size or 'as planned'}, "
              f"memory fraction {log.gpu_memory_utilization or 'as planned'}, max model length "
              f"{log.max_model_len or 'as planned'}"]
    if log.engine_version and log.engine_version != info.engine_version:
        header.append(f"note: the log is from {info.engine} {log.engine_version}; memory accounting changes between "
                      "versions (e.g. vLLM counts CUDA graphs inside its budget since 0.21)")
    return "\n".join([*header, *(r.line() for r in rows)])
