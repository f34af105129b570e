"""The ``deployc`` command: argument parsing, output formatting and exit codes only.

Exit codes: 0 ok, 1 invalid spec or infeasible plan, 2 usage, 3 internal error (a
report is saved, no traceback on the terminal), 4 plugin failure, 130 interrupted,
143 terminated (SIGTERM is handled like Ctrl-C).
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import gc
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

import attrs
from attrs import evolve

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
        from deployc.serialise import to_data  # noqa: PLC0415  (plan types load only for JSON output)

        print(json.dumps(to_data(list(diagnostics)), indent=2), file=out)
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
    if has_errors(everything):
        return ExitCode.INVALID
    if args.format != "json":
        warnings = len(everything)
        what = f"{args.specs[0]}: valid" if len(args.specs) == 1 else f"{len(args.specs)} specs: all valid"
        print(what + (f" ({warnings} warning{'s' if warnings != 1 else ''})" if warnings else ""))
    return ExitCode.OK


def _cmd_plan(args: argparse.Namespace) -> int:
    from deployc.api import plan  # noqa: PLC0415
    from deployc.render.plan_json import plan_json_text  # noqa: PLC0415
    from deployc.render.text import plan_summary  # noqa: PLC0415

    result, document = plan(Path(args.spec), args.backend, display_name=args.spec)
    if args.format == "json":
        sys.stdout.write(plan_json_text(result, document.text, None))
    else:
        print(plan_summary(result))
    # A plan that fits but does not serve the traffic at the SLO is printed, and fails.
    return ExitCode.INVALID if has_errors(result.diagnostics) else ExitCode.OK


def _cmd_explain(args: argparse.Namespace) -> int:
    from deployc.api import plan  # noqa: PLC0415
    from deployc.render.explain import decision_lines, diagnostics_lines  # noqa: PLC0415

    result, _ = plan(Path(args.spec), args.backend, display_name=args.spec)
    decisions = [d for d in result.decisions if args.key is None or d.id == args.key]
    if not decisions:
        known = ", ".join(d.id for d in result.decisions)
        print(_redact(f"deployc explain: no decision {args.key!r}; decisions: {known}"), file=sys.stderr)
        return ExitCode.USAGE
    for decision in decisions:
        print("\n".join(decision_lines(decision)))
    if args.key is None and result.diagnostics:  # what is wrong, and the fixes, after the decisions
        print("\n".join(diagnostics_lines(result)))
    return ExitCode.OK


def _cmd_build(args: argparse.Namespace) -> int:
    from deployc.api import build  # noqa: PLC0415

    out = Path(args.output) if args.output else None
    if out is None:
        from deployc.api import load_spec  # noqa: PLC0415

        out = Path("out") / load_spec(Path(args.spec), display_name=args.spec).spec.name
    result = build(Path(args.spec), out, args.backend, force=args.force, display_name=args.spec,
                   accept_slo_miss=args.accept_slo_miss)
    warnings = [d if d.severity is not Severity.ERROR else evolve(d, severity=Severity.WARNING)
                for d in result.plan.diagnostics]
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


def _cmd_size(args: argparse.Namespace) -> int:
    from deployc.sizing.report import size_json_text, size_text  # noqa: PLC0415
    from deployc.sizing.run import size  # noqa: PLC0415
    from deployc.sizing.space import SizeUsageError  # noqa: PLC0415
    from deployc.sizing.workers import available_cores  # noqa: PLC0415

    try:
        jobs = available_cores() if args.jobs is None else args.jobs
        sized = size(Path(args.spec), gpus=args.gpus, max_gpus=args.max_gpus, display_name=args.spec, jobs=jobs)
    except SizeUsageError as exc:
        print(f"deployc size: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    report = sized.report
    if args.format == "json":
        sys.stdout.write(size_json_text(report))
    else:
        print(size_text(report))
    winners = report.search.winners
    if args.write and winners:
        from deployc.sizing.write import resized_text, write_spec  # noqa: PLC0415

        text = resized_text(sized.loaded.document, sized.loaded.spec, sized.target.gpu.name, winners[0])
        write_spec(Path(args.write), text, Path(args.spec))
        print(f"wrote {args.write}: {winners[0].label()} (the hardware, and [plan] pins of the backend, layout and "
              "precision)", file=sys.stderr)
    if not winners:
        from deployc.sizing.report import nothing_serves  # noqa: PLC0415

        print(nothing_serves(report, args.spec).format_text(), file=sys.stderr)
        if args.write:
            print(f"deployc size: nothing serves the traffic; {args.write} not written", file=sys.stderr)
    return ExitCode.OK if winners else ExitCode.INVALID


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
    p.add_argument("--accept-slo-miss", action="store_true",
                   help="write the deployment even when the simulation says it misses the SLO or cannot keep up")
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
    p = command("size", _cmd_size, "Find the cheapest GPU type and count that serve the spec's traffic within "
                "its SLO.")
    p.add_argument("spec")
    p.add_argument("--gpus", metavar="LIST", help="comma-separated GPU types to search, e.g. H100,A100-80GB,L40S "
                   "(default: the catalog GPUs with a price, else H100 SXM, A100 80GB SXM, L40S, L4; plus the spec's)")
    p.add_argument("--max-gpus", type=int, default=16, metavar="N", help="largest GPU count to try (default 16)")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--write", metavar="SPEC_OUT", help="write the cheapest deployment as a new spec")
    p.add_argument("--jobs", type=int, metavar="N", help="GPU types searched at once, each in its own "
                   "process (default: the CPU cores available; the answer is the same for any N)")
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
        spec = getattr(args, "spec", None) if "args" in locals() else None
        # A problem found while planning or building one spec (a backend, a plugin) names that spec's file.
        diagnostics = [d if d.file or not spec else attrs.evolve(d, file=spec) for d in exc.diagnostics]
        _print_diagnostics(diagnostics, fmt if fmt in ("text", "json") else "text",
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
    """Console-script wrapper (``deployc``, ``python -m deployc``): one command, then the process ends."""
    # One short command: its garbage is nearly all acyclic (deployc size's peak RSS 65 -> 66 MiB without the
    # collector), and the collector's passes over the imported modules' objects cost a cold build ~25 ms.
    gc.disable()
    _exit(main())


def _exit(code: int) -> None:
    """Exit with ``code``, without the interpreter's teardown when nothing is left for it to do.

    Teardown (a last garbage collection, then freeing every module) took 50-90 ms after a build.  It is
    skipped only when stdout and stderr are flushed, no atexit callback is registered (a plugin's, a
    ``weakref.finalize``) and no non-daemon thread runs: then exiting at once ends the process exactly as
    the interpreter would.  Otherwise the usual exit runs.
    """
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:  # the usual exit reports it, as Python does
        sys.exit(code)
    if atexit._ncallbacks() == 0 and all(t.daemon or t is threading.main_thread() for t in threading.enumerate()):
        os._exit(code)
    sys.exit(code)
