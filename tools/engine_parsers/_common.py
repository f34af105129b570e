"""Helpers shared by check_vllm.py / check_sglang.py (stdlib only; runs in engine venvs)."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import enum
import json
import math
import os
import sys
from pathlib import Path
from typing import IO, Any

_RECORDING_CLASSES: dict[type, type] = {}


def _recording_class(cls: type) -> type:
    """A subclass of an argparse Action class that notes which dests were set."""
    if cls not in _RECORDING_CLASSES:

        def __call__(  # noqa: N807
            self: Any,
            parser: argparse.ArgumentParser,
            namespace: argparse.Namespace,
            values: Any,
            option_string: str | None = None,
        ) -> None:
            cls.__call__(self, parser, namespace, values, option_string)
            self._deployc_given[self.dest] = namespace

        # keep the class name: manifests and messages show it
        _RECORDING_CLASSES[cls] = type(cls.__name__, (cls,), {"__call__": __call__})
    return _RECORDING_CLASSES[cls]


def record_explicit(parser: argparse.ArgumentParser, given: dict[str, argparse.Namespace]) -> None:
    """Make every action of `parser` note its dest in `given` when argparse runs it.

    argparse only calls an action for options present on the command line
    (and for positionals, possibly with their default), so `given` ends up
    mapping each explicitly set dest to the namespace that holds its final
    value; defaults never trigger it. The action classes keep their names.
    """
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        action.__class__ = _recording_class(type(action))
        action._deployc_given = given  # type: ignore[attr-defined]


def jsonable(value: Any, _depth: int = 0) -> Any:
    """Best-effort conversion of a parsed value to plain JSON data."""
    if _depth > 20:
        return repr(value)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, enum.Enum):
        return jsonable(value.value, _depth + 1)
    if isinstance(value, dict):
        return {str(k): jsonable(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [jsonable(v, _depth + 1) for v in items]
    dump = getattr(value, "model_dump", None)  # pydantic models
    if callable(dump):
        with contextlib.suppress(Exception):  # fall through to the next representation
            return jsonable(dump(), _depth + 1)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        with contextlib.suppress(Exception):
            return jsonable({f.name: getattr(value, f.name) for f in dataclasses.fields(value)}, _depth + 1)
    return repr(value)


def real_stdout() -> IO[str]:
    """Reserve the real stdout for the JSON result; route everything else to stderr.

    Engines log (and some C extensions print) to stdout; both the Python-level
    sys.stdout and file descriptor 1 are pointed at stderr.
    """
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(saved, "w", encoding="utf-8")


def load_cases(path: str) -> list[dict[str, Any]]:
    cases = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(cases, list):
        raise SystemExit(f"{path}: expected a JSON list of cases")
    for i, case in enumerate(cases):
        if not isinstance(case, dict) or not isinstance(case.get("argv", []), list):
            raise SystemExit(f"{path}: case {i} must be an object with an 'argv' list")
        case.setdefault("id", str(i))
    return cases


def explicit_values(given: dict[str, argparse.Namespace]) -> dict[str, Any]:
    """{dest: JSON value} for the dests record_explicit() saw being set."""
    return {
        dest: jsonable(getattr(ns, dest, None))
        for dest, ns in sorted(given.items())
        if getattr(ns, dest, None) is not None or dest != "model_tag"
    }


def message_from_stderr(text: str, code: object) -> str:
    """The argparse error line ('prog: error: ...') from captured stderr."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    for i in range(len(lines) - 1, -1, -1):
        if ": error:" in lines[i]:
            return "\n".join(lines[i:])
    return "\n".join(lines[-3:]) if lines else f"SystemExit({code})"
