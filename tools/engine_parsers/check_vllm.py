# ruff: noqa: PLC0415 -- engine modules are imported lazily, after the environment is set up
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
     nested JSON configs -> config dataclasses, quantization config, plugins);
  4. field_types: each explicit value against the declared pydantic type of
     the vLLM config field it feeds (enforced by vLLM only in
     create_engine_config());
  5. executor_class: a non-builtin --distributed-executor-backend through
     vLLM's Executor.get_class(), as at engine start-up.
  create_engine_config() is NOT run: it builds ModelConfig, which needs the
  model's config.json (a hub download) -- see README.md.

Output (stdout): a JSON list of
  {"id", "ok", "error", "stage", "parsed", "warnings"}
where "parsed" maps dest -> value for the options explicitly given (on the
command line or through --config), "stage" is the step that failed
(parse / validate / engine_args / field_types / executor_class) or "done", and "warnings" are the
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
# Belt and braces: should anything still try the hub, fail fast on loopback.
os.environ.setdefault("HF_ENDPOINT", "http://127.0.0.1:9")

import argparse
import contextlib
import io
import json
import logging
import sys
import traceback
from typing import Any, cast

from _common import (
    explicit_values,
    load_cases,
    message_from_stderr,
    real_stdout,
    record_explicit,
)


def build_parser() -> tuple[argparse.ArgumentParser, Any, dict[str, argparse.Namespace]]:
    """Build the parser the way vllm.entrypoints.cli.main.main() does (serve only)."""
    from vllm.entrypoints.cli.serve import ServeSubcommand
    from vllm.entrypoints.common.startup import VLLM_SUBCMD_PARSER_EPILOG
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    parser = FlexibleArgumentParser(
        prog="vllm",  # main() runs as the `vllm` console script
        description="vLLM CLI",
        epilog=VLLM_SUBCMD_PARSER_EPILOG.format(subcmd="[subcommand]"),
    )
    subparsers = parser.add_subparsers(required=False, dest="subparser")
    cmd = ServeSubcommand()
    serve_parser = cmd.subparser_init(subparsers)
    serve_parser.set_defaults(dispatch_function=cmd.cmd)
    given: dict[str, argparse.Namespace] = {}
    record_explicit(serve_parser, given)
    _STATE["parser"] = parser
    return parser, cmd, given


# the last parser build_parser() made, and the field validators built from it
_STATE: dict[str, Any] = {}


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


def _engine_args_as_online(cls: Any, args: argparse.Namespace) -> Any:
    """AsyncEngineArgs.from_cli_args(args) as it runs on a host with hub access.

    With HF_HUB_OFFLINE set, EngineArgs.__post_init__ replaces the model id by
    its local snapshot path (get_model_path), which fails here because the
    model is not downloaded; online (the real deployment) that branch is
    skipped. So the hub's offline switch is turned off for this call only;
    nothing in __post_init__ then touches the network (and HF_ENDPOINT points
    at a closed loopback port in case something did).
    """
    import huggingface_hub.constants as hf_constants

    saved = hf_constants.HF_HUB_OFFLINE
    hf_constants.HF_HUB_OFFLINE = False
    try:
        return cls.from_cli_args(args)
    finally:
        hf_constants.HF_HUB_OFFLINE = saved


def _field_adapters(parser: argparse.ArgumentParser) -> dict[str, list[tuple[str, Any]]]:
    """dest -> [(Config.field, pydantic TypeAdapter)] for vLLM's config classes.

    vLLM builds most serve flags from the fields of its pydantic config
    dataclasses, one argument group per class (the group title is the class
    name: ParallelConfig, CacheConfig, ...). Those fields' declared types and
    constraints (Literal, ge=, le=, ...) are only enforced when
    create_engine_config() builds the configs, which needs the model's
    config.json. This checks an explicitly given value against the declared
    type of the field of the same name in its group's config class.
    Calibrated: an option whose parser default fails its own check is skipped.
    """
    if "adapters" in _STATE:
        return dict(_STATE["adapters"])
    from typing import Annotated

    import pydantic
    import vllm.config as vllm_config

    serve = next(a.choices["serve"] for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    adapters: dict[str, list[tuple[str, Any]]] = {}
    for group in serve._action_groups:
        cls = getattr(vllm_config, str(group.title), None)
        fields = getattr(cls, "__pydantic_fields__", None)
        if not isinstance(cls, type) or not fields:
            continue
        for action in group._group_actions:
            info = fields.get(action.dest)
            if info is None:
                continue
            try:
                adapter = pydantic.TypeAdapter(
                    Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
                )
                if action.default is not None and _is_plain(action.default):
                    adapter.validate_python(action.default)
            except Exception:  # noqa: S112 -- unusable type, or the parser default fails: skip
                continue
            adapters.setdefault(action.dest, []).append((f"{group.title}.{action.dest}", adapter))
    _STATE["adapters"] = adapters
    return adapters


def _is_plain(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_is_plain(v) for v in value)
    return False


def _check_field_types(given: dict[str, argparse.Namespace]) -> None:
    """Reject an explicit value that no same-named vLLM config field accepts."""
    import pydantic

    adapters = _field_adapters(_STATE["parser"])
    for dest, ns in sorted(given.items()):
        value = getattr(ns, dest, None)
        if dest not in adapters or value is None or not _is_plain(value):
            continue
        errors = []
        for where, adapter in adapters[dest]:
            try:
                adapter.validate_python(value)
                break
            except pydantic.ValidationError as e:
                msgs = "; ".join(err["msg"] for err in e.errors())
                errors.append(f"{where}: {msgs}")
        else:
            raise ValueError(
                f"{dest}={value!r} is rejected by vLLM's declared config type "
                f"({' | '.join(errors)}); vLLM would fail when it builds its "
                "config at start-up"
            )


def _check_executor_backend(backend: Any) -> None:
    """Resolve a non-builtin --distributed-executor-backend like vLLM does.

    The parser takes any string (a custom Executor's import path is allowed);
    vLLM resolves it in Executor.get_class() at engine start-up. The built-in
    names (the DistributedExecutorBackend Literal) need no check, and 'ray'
    would import Ray; anything else goes through vLLM's own get_class().
    """
    import typing
    from types import SimpleNamespace

    from vllm.config.parallel import DistributedExecutorBackend
    from vllm.v1.executor.abstract import Executor

    if backend is None or not isinstance(backend, str):
        return
    if backend in typing.get_args(DistributedExecutorBackend):
        return
    stub = SimpleNamespace(parallel_config=SimpleNamespace(distributed_executor_backend=backend))
    try:
        Executor.get_class(cast(Any, stub))
    except Exception as e:
        raise ValueError(
            f"--distributed-executor-backend {backend!r} is neither one of "
            f"{typing.get_args(DistributedExecutorBackend)} nor an importable "
            f"Executor subclass (vLLM's Executor.get_class: "
            f"{type(e).__name__}: {e})"
        ) from e


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
        result["parsed"] = explicit_values(given)
        result["stage"] = "validate"
        cmd.validate(args)
        result["stage"] = "engine_args"
        if getattr(args, "model_tag", None) is not None:
            args.model = args.model_tag
        engine_args = _engine_args_as_online(AsyncEngineArgs, args)
        result["stage"] = "field_types"
        _check_field_types(given)
        result["stage"] = "executor_class"
        _check_executor_backend(engine_args.distributed_executor_backend)
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
