"""Feed argv lists to vLLM's real `vllm serve` parser (run INSIDE the vLLM venv).

Usage: python check_vllm.py CASES.json > RESULTS.json

CASES.json is a list of {"id": str, "argv": [str, ...], "config_yaml": str?}.
`argv` is what follows `vllm serve` (the vllm/vllm-openai image entrypoint),
so it must NOT start with "serve". If `config_yaml` is given, `--config PATH`
is appended to the argv (vLLM expands it into flags itself).

For each case, in ONE process:
  1. parse: top-level FlexibleArgumentParser + subparsers + the real
     ServeSubcommand().subparser_init() (what `vllm` main() builds), then
     parser.parse_args(["serve", *argv]);
  2. validate: ServeSubcommand().validate(args) (validate_parsed_serve_args),
     exactly what main() runs before dispatching;
  3. engine_args: args.model = args.model_tag (as ServeSubcommand.cmd does),
     then AsyncEngineArgs.from_cli_args(args) (runs EngineArgs.__post_init__:
     nested JSON configs -> config dataclasses, quantization config, plugins).
  create_engine_config() is NOT run: it builds ModelConfig, which needs the
  model's config.json (a hub download) -- see README.md.

Output (stdout): a JSON list of
  {"id", "ok", "error", "stage", "parsed", "warnings"}
where "parsed" maps dest -> value for the options explicitly given (on the
command line or through --config), "stage" is the step that failed
(parse / validate / engine_args) or "done", and "warnings" are the
WARNING+ log records vLLM emitted for that case (e.g. deprecations).
A rejection is ok=false with the parser's own message, never a crash.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("VLLM_TARGET_DEVICE", "cpu")
os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
import traceback  # noqa: E402
from typing import Any  # noqa: E402

from _common import (  # noqa: E402
    jsonable,
    load_cases,
    message_from_stderr,
    real_stdout,
    record_explicit,
)


def build_parser() -> tuple[argparse.ArgumentParser, Any, set[str]]:
    """Build the parser the way vllm.entrypoints.cli.main.main() does (serve only)."""
    from vllm.entrypoints.cli.serve import ServeSubcommand
    from vllm.entrypoints.common.startup import VLLM_SUBCMD_PARSER_EPILOG
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    parser = FlexibleArgumentParser(
        description="vLLM CLI",
        epilog=VLLM_SUBCMD_PARSER_EPILOG.format(subcmd="[subcommand]"),
    )
    subparsers = parser.add_subparsers(required=False, dest="subparser")
    cmd = ServeSubcommand()
    serve_parser = cmd.subparser_init(subparsers)
    serve_parser.set_defaults(dispatch_function=cmd.cmd)
    given: set[str] = set()
    record_explicit(serve_parser, given)
    return parser, cmd, given


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.records.append(record.getMessage())
        except Exception:  # pragma: no cover - formatting problems
            self.records.append(str(record.msg))


def _clear_once_caches() -> None:
    """vLLM's warning_once/info_once are lru_caches: reset them per case."""
    import vllm.logger as vlog

    for name in ("_print_warning_once", "_print_info_once", "_print_error_once"):
        fn = getattr(vlog, name, None)
        if fn is not None and hasattr(fn, "cache_clear"):
            fn.cache_clear()


def check_case(case: dict[str, Any]) -> dict[str, Any]:
    from vllm.engine.arg_utils import AsyncEngineArgs

    argv = [str(a) for a in case.get("argv", [])]
    if case.get("config_yaml"):
        argv += ["--config", str(case["config_yaml"])]
    result: dict[str, Any] = {
        "id": case.get("id"),
        "ok": False,
        "error": None,
        "stage": "parse",
        "parsed": {},
        "warnings": [],
    }
    capture = _Capture()
    vllm_logger = logging.getLogger("vllm")
    vllm_logger.addHandler(capture)
    _clear_once_caches()
    err = io.StringIO()
    try:
        parser, cmd, given = build_parser()
        with contextlib.redirect_stderr(err):
            try:
                args = parser.parse_args(["serve", *argv])
            except SystemExit as e:
                result["error"] = message_from_stderr(err.getvalue(), e.code)
                return result
        result["parsed"] = {
            d: jsonable(getattr(args, d))
            for d in sorted(given)
            if hasattr(args, d) and not (d == "model_tag" and args.model_tag is None)
        }
        result["stage"] = "validate"
        cmd.validate(args)
        result["stage"] = "engine_args"
        if getattr(args, "model_tag", None) is not None:
            args.model = args.model_tag
        AsyncEngineArgs.from_cli_args(args)
        result["stage"] = "done"
        result["ok"] = True
    except SystemExit as e:  # pragma: no cover - defensive
        result["error"] = f"SystemExit({e.code}): {err.getvalue().strip()}"
    except Exception as e:
        result["error"] = f"{type(e).__name__}: {e}"
        if os.environ.get("DEPLOYC_CHECKER_TRACEBACK"):
            traceback.print_exc()
    finally:
        vllm_logger.removeHandler(capture)
        result["warnings"] = capture.records
    return result


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = real_stdout()  # keep stdout for the JSON; everything else -> stderr
    cases = load_cases(sys.argv[1])
    from vllm.entrypoints.common.startup import cli_env_setup

    cli_env_setup()
    results = [check_case(c) for c in cases]
    out.write(json.dumps(results, indent=1))
    out.write("\n")
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
