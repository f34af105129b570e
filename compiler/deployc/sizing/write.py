"""``deployc size --write``: the spec again, on the chosen hardware, as a new TOML file.

Only what the search chose is changed: the GPU type and count, and the backend and weight
precision when the choice differs from the spec's. The spec language has no ``[plan]`` table on
this version, so the layout and the serving knobs are not pinned: the planner chooses them again
from these inputs, and the same inputs give the same plan.
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
from deployc.spec.loader import SpecDocument
from deployc.spec.model import Spec


def resized_document(document: SpecDocument, spec: Spec, spec_gpu: str, chosen: Deployment) -> dict[str, Any]:
    """The spec's TOML table with the chosen hardware (and backend / quantization when they changed).

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
    if chosen.variant.backend != spec.operations.backend:
        raw.setdefault("operations", {})["backend"] = chosen.variant.backend
    if chosen.variant.quantization != spec.model.quantization:
        raw.setdefault("model", {})["quantization"] = chosen.variant.quantization
    return raw


def resized_text(document: SpecDocument, spec: Spec, spec_gpu: str, chosen: Deployment) -> str:
    """The new spec's text: a header saying where it comes from, then the TOML."""
    header = (f"# Written by `deployc size {document.display_name}`: {chosen.label()}, the cheapest deployment\n"
              f"# found that serves the workload within the SLO. No [plan] table in this spec language version:\n"
              f"# the planner chooses the layout and knobs again from these inputs (the same inputs, the same plan).\n")
    return header + tomli_w.dumps(resized_document(document, spec, spec_gpu, chosen))


def write_spec(path: Path, text: str, source: Path) -> None:
    """Write the new spec atomically; never over the spec it comes from."""
    if path.exists() and path.resolve() == source.resolve():
        raise OutputError([Diagnostic(rule="DPC602", message=f"--write {path} would replace the spec it is sized from",
                                      hint="give another file name")])
    directory = path.parent if str(path.parent) else Path()
    try:
        handle, temporary = tempfile.mkstemp(prefix=".deployc-size-", suffix=".toml", dir=directory)
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except OSError as exc:
        with contextlib.suppress(OSError, UnboundLocalError):
            os.unlink(temporary)
        raise OutputError([Diagnostic(rule="DPC602", message=f"cannot write {path}: {exc.strerror or exc}")]) from exc
