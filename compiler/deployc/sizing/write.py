"""``deployc size --write``: the spec again, on the chosen hardware, as a new TOML file.

What the search chose replaces the spec's: the GPU type and count, the weight precision when
it differs, and a ``[plan]`` table pinning the backend, the layout and the precision (one pool).
The serving knobs are not pinned: the planner sizes them again for these GPUs, and the same
inputs give the same plan.
"""

from __future__ import annotations

import contextlib
import copy
import os
import tempfile
from pathlib import Path
from typing import Any

import tomli_w

from deployc.diagnostics import Diagnostic, OutputError
from deployc.sizing.deployment import Deployment
from deployc.sizing.space import HARDWARE_PINS
from deployc.spec.loader import SpecDocument
from deployc.spec.model import Spec


def resized_document(document: SpecDocument, spec: Spec, spec_gpu: str, chosen: Deployment) -> dict[str, Any]:
    """The spec's TOML table with the chosen hardware, and the search's choices pinned in ``[plan]``.

    ``spec_gpu`` is the catalog name the spec's GPU resolves to: on that GPU type the spec's own
    spelling, interconnect and price are kept.
    """
    raw = copy.deepcopy(document.raw)
    hardware = raw.setdefault("hardware", {})
    same_gpu = chosen.gpu == spec_gpu
    if not same_gpu:
        hardware["gpu"] = chosen.gpu
        hardware.pop("interconnect", None)  # the old GPU's link; the new one takes its own (auto)
        slo = raw.get("slo")
        if isinstance(slo, dict):
            slo.pop("gpu_hour_usd", None)  # the old GPU's price
    hardware["gpus_per_node"] = chosen.size.gpus_per_node
    hardware["nodes"] = chosen.size.nodes
    if not same_gpu or chosen.size.gpus_per_node != spec.hardware.gpus_per_node:
        hardware.pop("gpu_ids", None)
    if chosen.variant.quantization != spec.model.quantization:
        raw.setdefault("model", {})["quantization"] = chosen.variant.quantization
    plan = {k: v for k, v in raw.pop("plan", {}).items() if k not in HARDWARE_PINS} | _pins(chosen)
    if plan:
        raw["plan"] = plan
    return raw


def _pins(chosen: Deployment) -> dict[str, Any]:
    """The search's choices as ``[plan]`` pins: backend and, for one pool, its layout and precision.

    With several pools (request classes) each has its own layout: only the backend is pinned.
    """
    plan = chosen.plan
    if plan is None:
        return {}
    pins: dict[str, Any] = {"backend": plan.backend.name}
    if len(plan.pools) == 1:
        pool = plan.primary
        pins |= {"tp": pool.layout.tp, "pp": pool.layout.pp, "dp": pool.layout.dp, "ep": pool.layout.ep,
                 "quantization": pool.knobs.weights_format, "kv_cache_dtype": pool.knobs.kv_cache_dtype}
    return pins


def resized_text(document: SpecDocument, spec: Spec, spec_gpu: str, chosen: Deployment) -> str:
    """The new spec's text: a header saying where it comes from, then the TOML."""
    header = (f"# Written by `deployc size {_printable(document.display_name)}`: {_printable(chosen.label())}, "
              "the cheapest deployment\n"
              "# found that serves the workload within the SLO. [plan] pins the backend, layout and precision the\n"
              "# search chose; the planner sizes the serving knobs again for these GPUs.\n")
    return header + tomli_w.dumps(resized_document(document, spec, spec_gpu, chosen))


def _printable(text: str) -> str:
    """A file name or label for a comment line: a newline or other control character could start a TOML line."""
    return "".join(c if c.isprintable() else "?" for c in text)


def write_spec(path: Path, text: str, source: Path) -> None:
    """Write the new spec atomically; never over the spec it comes from."""
    if path.exists() and path.resolve() == source.resolve():
        raise OutputError([Diagnostic(rule="DPC602", message=f"--write {path} would replace the spec it is sized from",
                                      hint="give another file name")])
    directory = path.parent if str(path.parent) else Path()
    temporary: Path | None = None
    try:
        handle, name = tempfile.mkstemp(prefix=".deployc-size-", suffix=".toml", dir=directory)
        temporary = Path(name)
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        temporary.replace(path)
    except OSError as exc:
        if temporary is not None:
            with contextlib.suppress(OSError):
                temporary.unlink()
        raise OutputError([Diagnostic(rule="DPC602", message=f"cannot write {path}: {exc.strerror or exc}")]) from exc
