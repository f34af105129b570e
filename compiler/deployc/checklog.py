"""``deployc check-log``: the plan against what a real engine measured at start-up.

The run is replayed as the engine did it: the log's own settings (tensor-parallel size, memory
fraction, max model length, running-request limit, token budget / chunk size, eager mode)
replace the plan's; a setting the log does not print is the engine's default at that version
and on that GPU (vLLM prints only non-default arguments); the memory accounting is the one of
the version the log names, when the backend knows it.  Each mismatch is attributed to the
assumption it points at, and a log whose model or GPU is not the spec's is said so.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from attrs import evolve, frozen

from deployc.catalog.lookup import load_data
from deployc.contract.backend import OverheadQuery, RuntimeOverheads
from deployc.contract.enginelog import EngineLog, likeliest
from deployc.diagnostics import Diagnostic, SpecError
from deployc.planner.evaluate import Candidate, Evaluated, evaluate_layout
from deployc.planner.models import BackendModels
from deployc.planner.types import Layout
from deployc.plugins import PluginRegistry, default_registry
from deployc.units import GIB

if TYPE_CHECKING:
    from deployc.catalog import GPU
    from deployc.contract.kinds import KvCacheDtype
    from deployc.target import Target

TOLERANCE = {"weights": 0.02, "kv_memory": 0.05, "kv_tokens": 0.05}
# A log's free memory before loading below this share of the spec GPU's total: another GPU (or a busy one).
FREE_BEFORE_LOAD_SHARE = 0.75


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

    @property
    def outside_tolerance(self) -> bool:
        """Whether the prediction misses the observed figure by more than its tolerance."""
        err = self.error
        return self.tolerance is not None and err is not None and abs(err) > self.tolerance

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


@frozen(kw_only=True)
class Setting:
    """One engine setting the replay ran with, and where it came from."""

    name: str
    value: object
    source: str  # "log", "default" (the engine's at that version and GPU) or "plan"

    def text(self) -> str:
        """``TP 4 (log)``."""
        return f"{self.name} {self.value} ({self.source})"


@frozen(kw_only=True)
class Replay:
    """The settings of the run as the engine did it."""

    tp: Setting
    memory_fraction: Setting
    max_model_len: Setting
    max_num_seqs: Setting
    max_num_batched_tokens: Setting
    cuda_graphs: Setting
    engine_version: str | None  # the version whose accounting is used (None: the backend's pinned one)


@frozen(kw_only=True)
class LogCheck:
    """The comparison, its text, and whether any figure is outside its tolerance."""

    rows: tuple[Comparison, ...]
    notes: tuple[str, ...]
    text: str

    @property
    def failed(self) -> bool:
        """True when a figure the log states misses its prediction by more than the tolerance."""
        return any(r.outside_tolerance for r in self.rows)


def replay_settings(log: EngineLog, target: Target, chosen: Evaluated) -> Replay:
    """Every setting of the logged run: the log's, else the engine's default, else (no default known) the plan's."""
    layout = chosen.evaluation.layout
    seqs_default, tokens_default = log.default_max_num_seqs, log.default_max_num_batched_tokens

    def pick(name: str, logged: object, default: object, planned: object) -> Setting:
        if logged is not None:
            return Setting(name=name, value=logged, source="log")
        if default is not None:
            return Setting(name=name, value=default, source=f"{log.engine} default")
        return Setting(name=name, value=planned, source="plan")

    return Replay(
        tp=pick("TP", log.tensor_parallel_size, None, layout.tp),
        memory_fraction=pick("memory fraction", log.gpu_memory_utilization, None, chosen.memory.memory_fraction),
        # vLLM and SGLang default to the model's own context length
        max_model_len=pick("max model length", log.max_model_len, target.model.max_position_embeddings, None),
        max_num_seqs=pick("max running requests", log.max_num_seqs, seqs_default, None),
        max_num_batched_tokens=pick("token budget (chunk)", log.max_num_batched_tokens, tokens_default, None),
        cuda_graphs=pick("CUDA graphs", None if log.enforce_eager is None else not log.enforce_eager, True, True),
        engine_version=log.engine_version)


def as_logged(models: BackendModels, replay: Replay) -> BackendModels:
    """The backend answering for the logged run: its batch sizes, engine version and memory fraction."""
    planned = models.runtime_overheads

    def runtime_overheads(query: OverheadQuery) -> RuntimeOverheads:
        r = replay
        seqs = r.max_num_seqs.value if r.max_num_seqs.source != "plan" else query.max_num_seqs
        overheads = planned(evolve(query, max_num_seqs=int(str(seqs)), engine_version=r.engine_version))
        if r.memory_fraction.source == "log":
            overheads = evolve(overheads, default_memory_fraction=float(str(r.memory_fraction.value)))
        return overheads

    return evolve(models, runtime_overheads=runtime_overheads)


def evaluate_like_the_log(candidate: Candidate, replay: Replay, models: BackendModels,
                          chosen: Evaluated) -> Evaluated:
    """The chosen layout evaluated at the logged run's settings."""
    layout = chosen.evaluation.layout
    tp = int(str(replay.tp.value))
    if tp != layout.tp:
        layout = Layout(tp=tp, pp=1, dp=1)
    target = candidate.target
    spec = evolve(target.spec, model=evolve(target.spec.model, max_context_tokens=int(str(replay.max_model_len.value))))
    candidate = evolve(candidate, target=evolve(target, spec=spec), cuda_graphs=bool(replay.cuda_graphs.value))
    if replay.max_num_batched_tokens.source != "plan":
        candidate = evolve(candidate, max_num_batched_tokens=int(str(replay.max_num_batched_tokens.value)))
    return evaluate_layout(candidate, layout, as_logged(models, replay))


# Engine --quantization names to deployc weight formats (the others are spelled alike).
_QUANTIZATION_FORMATS = {"modelopt_fp4": "nvfp4", "w8a8_int8": "int8", "awq_marlin": "awq", "gptq_marlin": "gptq"}


def with_logged_precision(candidate: Candidate, log: EngineLog) -> Candidate:
    """The candidate with the weight format and KV dtype the logged run used (the engine's defaults when unset)."""
    from deployc.contract.kinds import planned_format  # noqa: PLC0415
    from deployc.planner.precision import WeightChoice  # noqa: PLC0415

    target = candidate.target
    ckpt = target.model.checkpoint_quant
    weights = candidate.weights
    if log.quantization not in (None, "none"):
        try:
            fmt = planned_format(_QUANTIZATION_FORMATS.get(str(log.quantization), str(log.quantization)))
        except ValueError:
            raise SpecError([Diagnostic(rule="DPC001", message=f"the log's quantization {log.quantization!r} is "
                                        "not a weight format deployc plans")]) from None
        weights = WeightChoice(weights_format=fmt, quantization_flag=fmt, from_checkpoint=ckpt is not None)
    elif ckpt is None:  # unset: the checkpoint's own dtype
        weights = WeightChoice(weights_format="bf16" if candidate.dtype == "bfloat16" else "fp16",
                               quantization_flag=None, from_checkpoint=False)
    logged = str(log.kv_cache_dtype)
    kv: KvCacheDtype = ("fp8" if logged.startswith("fp8") else "float16" if logged == "float16" else
                        "bfloat16" if logged == "bfloat16" else candidate.dtype)  # "auto" (or unset): the model's
    return evolve(candidate, weights=weights, kv_dtype=kv)


def _names(value: str) -> str:
    return value.rstrip("/").rsplit("/", 1)[-1].lower()


def mismatch_notes(log: EngineLog, target: Target) -> list[str]:
    """What says the log's model or GPU is not the spec's."""
    notes: list[str] = []
    spec_id = target.spec.model.id
    if log.model and _names(log.model) not in {_names(spec_id), _names(target.model.name)}:
        notes.append(f"note: the log served {log.model!r}, the spec plans {spec_id!r} ({target.model.name}): the "
                     "figures compare only where the two models have the same shapes")
    families = load_data("hf_families.json")["families"]
    family = families.get(target.model.family, {})
    if log.architecture and family and log.architecture not in family.get("architectures", ()):
        notes.append(f"note: the log loaded a {log.architecture}, the spec's {target.model.name} is a "
                     f"{', '.join(family['architectures'])}: a different model")
    total = target.gpu.memory_bytes / GIB
    if log.free_before_load_gib is not None and not (
            FREE_BEFORE_LOAD_SHARE * total <= log.free_before_load_gib <= total * 1.01):
        notes.append(f"note: the log's GPU had {log.free_before_load_gib:g} GiB free before loading, the spec's "
                     f"{target.gpu.name} has {total:.1f} GiB: a different GPU (or one other processes were using); "
                     "the predictions are for the spec's GPU")
    return notes


def _read_text(log_path: Path) -> str:
    try:
        return log_path.read_text(errors="replace")
    except OSError as exc:
        raise SpecError([Diagnostic(rule="DPC001", message=f"cannot read log: {exc.strerror}",
                                    file=str(log_path))]) from None


def read_log(text: str, gpu: GPU, registry: PluginRegistry, log_path: Path) -> EngineLog:
    """The log as the backend whose engine wrote it reads it (each backend reads its own engine's format)."""
    found = likeliest(registry.engine_logs(text, gpu))
    if found is None:
        engines = " or ".join(registry.log_readers()) or "engine"
        raise SpecError([Diagnostic(rule="DPC001", file=str(log_path), message=f"no {engines} start-up lines found",
                                    hint="check-log reads the start-up log of an installed backend's engine (the "
                                         "lines it prints while loading the model and sizing its KV cache)")])
    return found[1]


def _rows(log: EngineLog, ev: Evaluated) -> list[Comparison]:
    m = ev.memory
    per_request = log.max_concurrency_tokens_per_request or m.kv_capacity_tokens
    kv_blame = "engine overheads (activation peak, CUDA graphs, non-torch) or the memory fraction"
    graphs_gib = m.per_gpu.cuda_graph_bytes / GIB
    if log.available_kv_gib is not None and ev.overheads.cuda_graph_in_budget and \
            abs(log.available_kv_gib - m.per_gpu.kv_cache_bytes / GIB - graphs_gib) < 0.25:
        kv_blame = (f"CUDA graphs: the modelled engine counts their {graphs_gib:.2f} GiB inside its budget; the engine "
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


def run_check(spec_path: Path, log_path: Path, *, display_name: str | None = None,
              registry: PluginRegistry | None = None) -> LogCheck:
    """Predicted vs observed figures for a spec and an engine log, with the replayed settings."""
    from deployc.api import resolve_spec  # noqa: PLC0415  (avoid an import cycle at module load)
    from deployc.planner.planner import search_pool  # noqa: PLC0415
    from deployc.planner.precision import activation_dtype, chosen_dtype  # noqa: PLC0415
    from deployc.planner.workload import workload_shapes  # noqa: PLC0415

    registry = registry or default_registry()
    text = _read_text(log_path)
    _, target, _ = resolve_spec(spec_path, registry, display_name)
    log = read_log(text, target.gpu, registry, log_path)
    engine = str(log.engine)  # the backend that read it
    installed = registry.models()
    dtype = chosen_dtype(activation_dtype(target.spec, target.model, target.gpu))
    shape = workload_shapes(target.spec)[0]
    hw = target.spec.hardware
    search, _, _ = search_pool(target, installed[engine], dtype, shape, hw.gpus_per_node, hw.nodes)
    chosen = search.chosen() or search.closest()
    assert chosen is not None  # noqa: S101  (search_pool raises when nothing fits)
    replay = replay_settings(log, target, chosen)
    replayed = with_logged_precision(search.candidate, log)
    ev = evaluate_like_the_log(replayed, replay, installed[engine], chosen)
    rows = tuple(_rows(log, ev))
    info = installed.info(engine)
    precision = (f"{replayed.weights.weights_format} weights ({'log' if log.quantization else f'{engine} default'}), "
                 f"{replayed.kv_dtype} KV cache ({'log' if log.kv_cache_dtype else f'{engine} default'})")
    settings = ", ".join([*(s.text() for s in (replay.tp, replay.memory_fraction, replay.max_model_len,
                                                replay.max_num_seqs, replay.max_num_batched_tokens,
                                                replay.cuda_graphs)), precision])
    accounting = ev.overheads.engine_version
    header = [f"{info.engine} log (engine version: {log.engine_version or 'not printed in the log'}); replayed with "
              f"deployc's {info.engine} {accounting} memory accounting at the run's settings: {settings}"]
    if log.engine_version and not log.engine_version.lstrip("v").startswith(accounting):
        header.append(f"note: the log is from {info.engine} {log.engine_version}; deployc models {info.engine} "
                      f"{accounting}'s memory accounting, which may differ (e.g. vLLM counts CUDA graphs inside its "
                      "budget since 0.21)")
    notes = tuple(mismatch_notes(log, target))
    failed = any(r.outside_tolerance for r in rows)
    verdict = ("result: a figure is outside its tolerance" if failed else
               "result: every figure the log states is within its tolerance")
    text = "\n".join([*header, *notes, *(r.line() for r in rows), verdict])
    return LogCheck(rows=rows, notes=notes, text=text)


def compare(spec_path: Path, log_path: Path, *, display_name: str | None = None,
            registry: PluginRegistry | None = None) -> list[Comparison]:
    """Predicted vs observed figures for a spec and an engine log."""
    return list(run_check(spec_path, log_path, display_name=display_name, registry=registry).rows)


def check_log(spec_path: Path, log_path: Path, *, display_name: str | None = None) -> LogCheck:
    """The comparison as text, with the settings it was made under, and its verdict."""
    return run_check(spec_path, log_path, display_name=display_name)
