"""The catalog matrix: every catalog GPU × model × GPU count × workload kind × goal × backend, as a new user writes it.

One case is a spec drawn from deployc's own catalog. Its outcome is checked with the
library API in-process (fast enough to run thousands): ``plan`` may refuse it (a located
diagnostic, exit 1), but must never raise anything else (an internal error, exit 3) nor a
plugin failure (exit 4), and a plan that succeeds must emit with the same backend (what
``build`` does, minus writing the files). ``bench/matrix.py`` runs every case;
``tests/reliability/test_catalog_matrix.py`` a fixed-seed sample.
"""

from __future__ import annotations

import itertools
import random
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path

from attrs import frozen

# GPU counts of the matrix: 1, 2, 4 or 8 GPUs on one node, and 2 nodes of 8.
SIZES: tuple[tuple[int, int], ...] = ((1, 1), (2, 1), (4, 1), (8, 1), (8, 2))
GOALS: tuple[str, ...] = ("latency", "throughput", "cost")


@frozen
class Workload:
    """One workload kind as a user would describe it (lengths and load typical of the kind)."""

    kind: str
    prompt: int
    output: int
    load: str
    shared_prefix: int = 0


WORKLOADS: tuple[Workload, ...] = (
    Workload("chat", 1000, 300, "concurrency = 32"),
    Workload("rag", 12000, 400, "request_rate_per_s = 2.0"),
    Workload("agent", 6000, 200, "concurrency = 64", shared_prefix=4000),
    Workload("batch", 500, 500, "concurrency = 256"),
)


@frozen
class Case:
    """One spec of the matrix; ``backend`` is ``auto`` or a backend forced in the spec."""

    gpu: str
    model: str
    gpus_per_node: int
    nodes: int
    workload: Workload
    goal: str
    backend: str

    def label(self) -> str:
        """A short, unique, readable name."""
        return (f"{self.model} on {self.nodes}×{self.gpus_per_node} {self.gpu}, {self.workload.kind}, "
                f"{self.goal}, backend {self.backend}")

    def spec_text(self) -> str:
        """The TOML a new user would write for this case."""
        w = self.workload
        network = 'network = "ib-ndr"\n' if self.nodes > 1 else ""
        prefix = f"shared_prefix_tokens = {w.shared_prefix}\n" if w.shared_prefix else ""
        return (f'version = 1\nname = "matrix"\n[model]\nid = "{self.model}"\n[hardware]\ngpu = "{self.gpu}"\n'
                f"gpus_per_node = {self.gpus_per_node}\nnodes = {self.nodes}\n{network}"
                f'[workload]\nkind = "{w.kind}"\nprompt_tokens = {{ mean = {w.prompt} }}\n'
                f"output_tokens = {{ mean = {w.output} }}\n{w.load}\n{prefix}"
                f'[slo]\ngoal = "{self.goal}"\n[operations]\nbackend = "{self.backend}"\n')


@frozen
class Outcome:
    """What happened to one case: ``built``, ``refused`` (exit 1) or a failure kind with its detail."""

    case: Case
    status: str  # built | refused | internal-error | plugin-failure | plan-but-cannot-build
    detail: str = ""
    backend: str | None = None

    @property
    def failed(self) -> bool:
        """Whether the case broke a rule of the matrix."""
        return self.status not in ("built", "refused")


def catalog_names() -> tuple[list[str], list[str], list[str]]:
    """The catalog's GPU and model names (built-in and from plugins) and the installed backends."""
    from deployc.catalog import load_gpus, load_models
    from deployc.plugins import default_registry

    registry = default_registry()
    gpus = sorted(g.name for g in (*load_gpus(), *registry.catalog_gpus()))
    models = sorted(m.name for m in (*load_models(), *registry.catalog_models()))
    return gpus, models, registry.names()


def all_cases(gpus: Sequence[str], models: Sequence[str], backends: Sequence[str]) -> Iterator[Case]:
    """Every case of the matrix, in a fixed order."""
    for gpu, model, (per, nodes), workload, goal, backend in itertools.product(
            gpus, models, SIZES, WORKLOADS, GOALS, ("auto", *backends)):
        yield Case(gpu, model, per, nodes, workload, goal, backend)


def draw(cases: Sequence[Case], count: int, seed: int) -> list[Case]:
    """``count`` of the cases drawn without replacement with a fixed seed (the same list every run)."""
    return random.Random(seed).sample(list(cases), min(count, len(cases)))  # noqa: S311  (a sample, not a secret)


def sample_cases(count: int, seed: int) -> list[Case]:
    """``count`` cases of the whole matrix, drawn with a fixed seed."""
    gpus, models, backends = catalog_names()
    return draw(list(all_cases(gpus, models, backends)), count, seed)


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    last = frames[-1] if frames else None
    return f" at {Path(last.filename).name}:{last.lineno}" if last else ""


def run_case(case: Case, workdir: Path) -> Outcome:
    """Plan the case and, when it plans, emit and render it as ``build`` would; never raises."""
    from deployc import api
    from deployc.diagnostics import PlanError, PluginError, SpecError
    from deployc.plugins import default_registry
    from deployc.render.explain import explain_markdown
    from deployc.render.plan_json import plan_json_text

    registry = default_registry()
    path = workdir / "matrix.toml"
    path.write_text(case.spec_text())
    try:
        plan, document = api.plan(path, None, registry)
    except (SpecError, PlanError) as exc:
        return Outcome(case, "refused", exc.diagnostics[0].message if exc.diagnostics else "")
    except PluginError as exc:
        return Outcome(case, "plugin-failure", f"plan: {exc.diagnostics[0].message}")
    except Exception as exc:
        return Outcome(case, "internal-error", f"plan: {type(exc).__name__}: {exc}{_where(exc)}")
    backend = plan.backend.name
    try:
        emission = api.emit(plan, registry)
        explain_markdown(plan, emission)
        plan_json_text(plan, document.text, emission)
    except (SpecError, PlanError) as exc:
        return Outcome(case, "plan-but-cannot-build", f"{backend}: {exc.diagnostics[0].message}", backend)
    except PluginError as exc:
        return Outcome(case, "plugin-failure", f"build: {exc.diagnostics[0].message}", backend)
    except Exception as exc:
        return Outcome(case, "internal-error", f"build: {type(exc).__name__}: {exc}{_where(exc)}", backend)
    return Outcome(case, "built", backend=backend)
