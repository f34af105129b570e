"""The ``deployc`` command: argument parsing, output formatting and exit codes only.

Exit codes: 0 ok, 1 invalid spec or infeasible plan, 2 usage, 3 internal error (a
report is saved, no traceback on the terminal), 4 plugin failure, 130 interrupted,
143 terminated (SIGTERM is handled like Ctrl-C).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from deployc import __version__
from deployc.diagnostics import DeploycError, Diagnostic, ExitCode, Severity, has_errors, sort_key

Handler = Callable[[argparse.Namespace], int]


def _redact(text: str) -> str:
    from deployc.spec.secrets import redact_text  # noqa: PLC0415

    return redact_text(text)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {_redact(message)}\n")  # it may quote a pasted token
        raise SystemExit(ExitCode.USAGE)


def _print_diagnostics(diagnostics: Sequence[Diagnostic], fmt: str, stream: TextIO | None = None) -> None:
    from deployc.spec.secrets import redact  # noqa: PLC0415

    # Every message may quote a command-line argument or a plugin's exception text: no token is printed.
    diagnostics = [redact(d) for d in diagnostics]
    out = stream or sys.stderr
    if fmt == "json":
        print(json.dumps([d.to_json() for d in diagnostics], indent=2), file=out)
        return
    for diag in diagnostics:
        print(diag.format_text(), file=out)


def _cmd_validate(args: argparse.Namespace) -> int:
    from deployc.api import validate  # noqa: PLC0415

    everything: list[Diagnostic] = []
    for path in args.specs:
        everything += validate(Path(path), display_name=path)
    everything.sort(key=sort_key)
    if args.format == "json":
        _print_diagnostics(everything, "json", sys.stdout)
    else:
        _print_diagnostics(everything, "text")
    return ExitCode.INVALID if has_errors(everything) else ExitCode.OK


def _cmd_plan(args: argparse.Namespace) -> int:
    from deployc.api import plan  # noqa: PLC0415
    from deployc.render.plan_json import plan_json_text  # noqa: PLC0415
    from deployc.render.text import plan_summary  # noqa: PLC0415

    result, document = plan(Path(args.spec), args.backend, display_name=args.spec)
    if args.format == "json":
        sys.stdout.write(plan_json_text(result, document.text, None))
    else:
        print(plan_summary(result))
    return ExitCode.OK


def _cmd_explain(args: argparse.Namespace) -> int:
    from deployc.api import plan  # noqa: PLC0415
    from deployc.render.explain import decision_lines  # noqa: PLC0415

    result, _ = plan(Path(args.spec), args.backend, display_name=args.spec)
    decisions = [d for d in result.decisions if args.key is None or d.id == args.key]
    if not decisions:
        known = ", ".join(d.id for d in result.decisions)
        print(_redact(f"deployc explain: no decision {args.key!r}; decisions: {known}"), file=sys.stderr)
        return ExitCode.USAGE
    for decision in decisions:
        print("\n".join(decision_lines(decision)))
    return ExitCode.OK


def _cmd_build(args: argparse.Namespace) -> int:
    from deployc.api import build  # noqa: PLC0415

    out = Path(args.output) if args.output else None
    if out is None:
        from deployc.api import load_spec  # noqa: PLC0415

        out = Path("out") / load_spec(Path(args.spec), display_name=args.spec).spec.name
    result = build(Path(args.spec), out, args.backend, force=args.force, display_name=args.spec)
    warnings = [d for d in result.plan.diagnostics if d.severity is not Severity.ERROR]
    _print_diagnostics([*_plugin_failures(), *warnings], "text")
    print(f"wrote {len(result.output.files)} files to {result.output.directory} "
          f"({result.plan.backend.engine} {result.plan.backend.engine_version}, "
          f"{result.plan.primary.layout.label()})")
    return ExitCode.OK


def _plugin_failures() -> list[Diagnostic]:
    """The plugins that failed to load, as warnings: a build must say which backends it could not consider."""
    from attrs import evolve  # noqa: PLC0415

    from deployc.plugins import default_registry  # noqa: PLC0415

    return [evolve(f.diagnostic, severity=Severity.WARNING) for f in default_registry().failures]


def _cmd_backends(args: argparse.Namespace) -> int:
    from deployc.plugins import default_registry  # noqa: PLC0415

    registry = default_registry()
    rows: list[dict[str, Any]] = [{"name": name, "state": "ok", "engine": registry.info(name).engine,
             "engine_version": registry.info(name).engine_version,
             "image": f"{registry.info(name).image}:{registry.info(name).image_tag}",
             "source": registry.backends[name].source.describe()} for name in registry.names()]
    rows += [{"name": f.source.entry_point, "state": "failed", "engine": None, "engine_version": None,
              "image": None, "source": f.source.describe(), "error": _redact(f.diagnostic.message)}
             for f in registry.failures]
    if args.format == "json":
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            if row["state"] == "ok":
                print(f"{row['name']:<10} {row['engine']} {row['engine_version']:<10} {row['image']}  "
                      f"[{row['source']}]")
            else:
                print(f"{row['name']:<10} FAILED: {row['error']}")
    return ExitCode.PLUGIN if registry.failures else ExitCode.OK


def _cmd_schema(_args: argparse.Namespace) -> int:
    from deployc.plugins import default_registry  # noqa: PLC0415
    from deployc.spec.schema import schema_text  # noqa: PLC0415

    sys.stdout.write(schema_text(default_registry().option_schemas()))
    return ExitCode.OK


def _cmd_catalog(args: argparse.Namespace) -> int:
    from deployc.render.catalog import catalog_rows  # noqa: PLC0415

    rows = catalog_rows(args.kind)
    if args.format == "json":
        print(json.dumps(rows, indent=2))
        return ExitCode.OK
    columns = list(rows[0]) if rows else []
    table = [columns] + [["" if row[c] is None else str(row[c]) for c in columns] for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    for line in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())
    return ExitCode.OK


def _cmd_check_log(args: argparse.Namespace) -> int:
    from deployc.checklog import check_log  # noqa: PLC0415

    result = check_log(Path(args.spec), Path(args.log), display_name=args.spec)
    print(result.text)
    return ExitCode.INVALID if result.failed else ExitCode.OK  # a figure outside its tolerance


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation tests)."""
    parser = _Parser(prog="deployc", description="Compile an LLM inference deployment spec into an explained "
                     "deployment for vLLM, SGLang or TensorRT-LLM.")
    parser.add_argument("--version", action="version", version=f"deployc {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def command(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(handler=handler)
        return p

    p = command("build", _cmd_build, "Plan a spec and write the deployment (atomically) to a directory.")
    p.add_argument("spec", help="spec file (TOML)")
    p.add_argument("-o", "--output", help="output directory (default: out/<spec name>)")
    p.add_argument("--backend", help="force a backend (default: the spec's operations.backend)")
    p.add_argument("--force", action="store_true", help="replace an output directory deployc did not write")
    p = command("validate", _cmd_validate, "Validate spec files (schema, rules, names); for pre-commit.")
    p.add_argument("specs", nargs="+", metavar="SPEC", help="spec files (TOML)")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p = command("plan", _cmd_plan, "Show the plan: memory per GPU, parallelism, performance, knobs.")
    p.add_argument("spec")
    p.add_argument("--backend")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p = command("explain", _cmd_explain, "Print the plan's decisions, or one of them, with reasons and numbers.")
    p.add_argument("spec")
    p.add_argument("key", nargs="?", help="a decision id, e.g. parallelism or max_model_len")
    p.add_argument("--backend")
    p = command("backends", _cmd_backends, "List installed backends, their engine versions and sources.")
    p.add_argument("--format", choices=("text", "json"), default="text")
    command("schema", _cmd_schema, "Print the spec's JSON Schema (with installed backends' options).")
    p = command("catalog", _cmd_catalog, "List the GPUs or models deployc knows.")
    p.add_argument("kind", choices=("gpus", "models"))
    p.add_argument("--format", choices=("text", "json"), default="text")
    p = command("check-log", _cmd_check_log, "Compare the plan with a real vLLM or SGLang start-up log.")
    p.add_argument("spec")
    p.add_argument("log")
    return parser


def _crash_report(exc: BaseException) -> Path | None:
    """Save the traceback for a bug report; the path, or None when nothing could be written.

    ``$XDG_CACHE_HOME/deployc/crash.log`` (or ``~/.cache``), opened without following a link and
    readable by the owner only (the traceback can hold spec values and paths).  When that directory
    is unusable, a new file with a random name in the temporary directory: never a fixed name
    there, where another user could have planted a link to a file of ours.
    """
    text = _redact(f"deployc {__version__}\nargv: {sys.argv!r}\n\n" + "".join(traceback.format_exception(exc)))
    directory = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "deployc"
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = directory / "crash.log"
        fd = os.open(path, flags, 0o600)
        os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_TRUNC
    except OSError:
        try:
            fd, name = tempfile.mkstemp(prefix="deployc-crash-", suffix=".log")  # O_EXCL, mode 0600
        except OSError:
            return None
        path = Path(name)
    with contextlib.suppress(OSError), os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as handle:
        handle.write(text)
    return path


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that every clean-up written for an interrupt runs for it too."""


def _raise_terminated(_signum: int, _frame: object) -> None:
    raise Terminated


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """While deployc runs, SIGTERM (``kill``, a CI runner's cancel) unwinds like Ctrl-C instead of killing it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``deployc`` console script; returns the exit code."""
    with _sigterm_as_interrupt():
        return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        handler: Handler = args.handler
        return int(handler(args))
    except SystemExit as exc:
        return int(exc.code) if isinstance(exc.code, int) else ExitCode.USAGE
    except DeploycError as exc:
        fmt = getattr(args, "format", "text") if "args" in locals() else "text"
        _print_diagnostics(exc.diagnostics, fmt if fmt in ("text", "json") else "text",
                           sys.stdout if fmt == "json" else None)
        return int(exc.exit_code)
    except KeyboardInterrupt as exc:
        terminated = isinstance(exc, Terminated)
        print(f"deployc: {'terminated' if terminated else 'interrupted'}", file=sys.stderr)
        return ExitCode.TERMINATED if terminated else ExitCode.INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`deployc catalog gpus | head`): stop quietly, as other Unix tools do.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitCode.OK
    except Exception as exc:
        report = _crash_report(exc)
        where = f"the details are in {report}" if report else "no crash report could be saved"
        print(_redact(f"deployc: internal error: {type(exc).__name__}: {exc}\n  this is a bug in deployc; {where}"),
              file=sys.stderr)
        return ExitCode.INTERNAL


def run() -> None:
    """Console-script wrapper."""
    sys.exit(main())
