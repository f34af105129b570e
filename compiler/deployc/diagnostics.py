"""One type for every problem deployc finds, and the exit codes that go with them.

A :class:`Diagnostic` names the rule that fired (a stable ``DPC###`` id listed in
``docs/rules.md``), where (file, dotted key path, line), what was wrong (the value)
and how to fix it.  Schema errors, semantic errors, planner infeasibility, backend
constraints and plugin failures all come out as Diagnostics, in text or JSON.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Sequence

from attrs import field, frozen


class ExitCode(enum.IntEnum):
    """Process exit codes of the ``deployc`` command (documented in the README)."""

    OK = 0
    INVALID = 1  # invalid spec or infeasible plan
    USAGE = 2  # bad command line
    INTERNAL = 3  # a bug in deployc: clean report, traceback saved to a file
    PLUGIN = 4  # a backend plugin failed
    INTERRUPTED = 130  # Ctrl-C (SIGINT)
    TERMINATED = 143  # SIGTERM, handled like Ctrl-C: partial output removed (128 + 15, the shell's convention)


class Severity(enum.StrEnum):
    """How bad a diagnostic is: errors stop a build, warnings and notes do not."""

    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"


# Longest text a diagnostic carries per field: a 1 MB key must not make a 2 MB message (nor 50,000 of them).
MAX_MESSAGE_CHARS = 2000
MAX_KEY_PATH_CHARS = 300
MAX_FILE_CHARS = 4096  # PATH_MAX on Linux
MAX_VALUE_CHARS = 200
# Diagnostics of one rule shown in full; the rest are counted in one more diagnostic of that rule.
MAX_PER_RULE = 20


def _cut(text: str | None, limit: int) -> str | None:
    return text if text is None or len(text) <= limit else text[: limit - 1] + "…"


def _cut_message(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 1] + "…"


def _cut_hint(text: str | None) -> str | None:
    return _cut(text, MAX_MESSAGE_CHARS)


def _cut_path(text: str | None) -> str | None:
    return _cut(text, MAX_KEY_PATH_CHARS)


def _cut_file(text: str | None) -> str | None:
    return _cut(text, MAX_FILE_CHARS)


def _cut_value(text: str | None) -> str | None:
    return _cut(text, MAX_VALUE_CHARS)


def _short_repr(value: object, limit: int = 80) -> str:
    # ASCII escapes: no control character (C0, DEL, C1 such as the 8-bit CSI) reaches a terminal raw.
    text = json.dumps(value, ensure_ascii=True, default=str) if not isinstance(value, str) else ascii(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@frozen(kw_only=True)
class Diagnostic:
    """A problem in a spec, a plan or a plugin, located as precisely as deployc can."""

    rule: str
    message: str = field(converter=_cut_message)
    severity: Severity = Severity.ERROR
    file: str | None = field(default=None, converter=_cut_file)
    key_path: str | None = field(default=None, converter=_cut_path)
    line: int | None = None
    column: int | None = None
    value: str | None = field(default=None, converter=_cut_value)  # short repr of the offending value
    hint: str | None = field(default=None, converter=_cut_hint)

    @staticmethod
    def value_repr(value: object) -> str:
        """Render a spec value the way messages quote it (strings in quotes, long ones cut)."""
        return _short_repr(value)

    def location(self) -> str:
        """``file:line:col`` (as much of it as is known)."""
        parts = [self.file or "<spec>"]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)

    def format_text(self) -> str:
        """Render for people: location, key path, message, rule id, then the hint."""
        head = f"{self.location()}: {self.severity.value}"
        if self.key_path:
            head += f": {self.key_path}"
        text = f"{head}: {self.message} [{self.rule}]"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


def has_errors(diagnostics: Iterable[Diagnostic]) -> bool:
    """True when any diagnostic is an error."""
    return any(d.severity is Severity.ERROR for d in diagnostics)


def cap_per_rule(diagnostics: Sequence[Diagnostic], limit: int = MAX_PER_RULE) -> list[Diagnostic]:
    """The first ``limit`` diagnostics of each rule, then one per rule counting the rest (order kept).

    The count stands at the key path of the first one left out, so it is located like the others.
    """
    shown: dict[str, int] = {}
    hidden: dict[str, list[Diagnostic]] = {}
    out: list[Diagnostic] = []
    for d in diagnostics:
        if shown.get(d.rule, 0) < limit:
            shown[d.rule] = shown.get(d.rule, 0) + 1
            out.append(d)
        else:
            hidden.setdefault(d.rule, []).append(d)
    for rule, rest in hidden.items():
        first = rest[0]
        out.append(Diagnostic(rule=rule, severity=first.severity, file=first.file, key_path=first.key_path,
                              line=first.line, message=f"and {len(rest):,} more {rule} problems like the ones above",
                              hint=f"only the first {limit} of each kind are listed; fix those and validate again"))
    return out


def sort_key(d: Diagnostic) -> tuple[str, int, str, str]:
    """Stable order: by file, line, key path, rule."""
    return (d.file or "", d.line if d.line is not None else 1 << 30, d.key_path or "", d.rule)


class DeploycError(Exception):
    """Base of the errors the CLI turns into a clean message and an exit code."""

    exit_code: ExitCode = ExitCode.INVALID

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        self.diagnostics = tuple(diagnostics)
        super().__init__("\n".join(d.format_text() for d in self.diagnostics))

    def __reduce__(self) -> tuple[type[DeploycError], tuple[tuple[Diagnostic, ...]]]:
        # Pickled by its diagnostics (a sizing worker process raises it in the parent), not by its message.
        return type(self), (self.diagnostics,)


class SpecError(DeploycError):
    """The spec is invalid (syntax, schema or semantic rules)."""


class PlanError(DeploycError):
    """The spec is valid but no plan satisfies it (it does not fit, no valid parallelism, ...)."""


class PluginError(DeploycError):
    """A backend plugin failed to load, raised, returned the wrong type or timed out."""

    exit_code = ExitCode.PLUGIN


class OutputError(DeploycError):
    """The output directory cannot be written safely."""
