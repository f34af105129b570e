# ruff: noqa: PLC0415 -- engine modules are imported lazily, after the environment is set up
"""Feed argv lists to SGLang's real launch_server parser (run INSIDE the SGLang venv).

Usage: python check_sglang.py CASES.json > RESULTS.json

CASES.json is a list of {"id": str, "argv": [str, ...], "config_yaml": str?}.
`argv` is what follows `python -m sglang.launch_server`. If `config_yaml` is
given, `--config PATH` is appended (SGLang merges the YAML into the argv).

For each case, in ONE process, this does what `python -m sglang.launch_server`
does before it starts serving: import sglang.launch_server, load_plugins(),
then sglang.srt.server_args.prepare_server_args(argv): the real argparse
parser built by ServerArgs.add_cli_args, the --config YAML merge
(ConfigArgumentMerger), parse_args, ServerArgs.from_cli_args (whose
__post_init__ is a no-op in 0.5.23) and the launch-command redaction.

It stops there. In 0.5.23 all resolution and validation (model config,
device, CUDA-graph and parallelism defaults, dp-attention translation, ...)
happens in ServerArgs.resolve_once(), called by launch_server.run_server();
it imports sglang.srt.configs, which needs transformers and a loadable
torchvision (PyPI only has CUDA-linked torchvision wheels) and, past its
model-independent prefix, the model's config.json. See README.md.

Output (stdout): a JSON list of
  {"id", "ok", "error", "stage", "parsed", "warnings"}
where "parsed" maps dest -> value for the options explicitly given (on the
command line or in the --config YAML), "stage" is "parse" when it failed or
"done", and "warnings" are the WARNING+ log records SGLang emitted for that
case (e.g. "'--enable-dp-attention' is deprecated ...").
A rejection is ok=false with the parser's own message, never a crash.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Belt and braces: should anything still try the hub, fail fast on loopback.
os.environ.setdefault("HF_ENDPOINT", "http://127.0.0.1:9")

import argparse
import contextlib
import io
import json
import logging
import re
import sys
import traceback
from typing import Any

from _common import (
    explicit_values,
    load_cases,
    message_from_stderr,
    real_stdout,
    record_explicit,
)

_ANSI = re.compile(r"\x1b\[[0-9;]*m")

# dest -> namespace, filled by the recording actions during one case
_GIVEN: dict[str, argparse.Namespace] = {}


def _install_recorder() -> None:
    """Wrap ServerArgs.add_cli_args so prepare_server_args' own parser records
    which dests the command line set (prepare_server_args itself is unchanged)."""
    from sglang.srt import server_args as sa_mod

    original = sa_mod.ServerArgs.add_cli_args

    def add_cli_args(parser: argparse.ArgumentParser) -> None:
        original(parser)
        record_explicit(parser, _GIVEN)

    sa_mod.ServerArgs.add_cli_args = staticmethod(add_cli_args)


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = record.getMessage()
        except Exception:  # pragma: no cover - formatting problems
            msg = str(record.msg)
        self.records.append(_ANSI.sub("", msg))


def check_case(case: dict[str, Any]) -> dict[str, Any]:
    from sglang.srt.server_args import prepare_server_args

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
    _GIVEN.clear()
    capture = _Capture()
    sglang_logger = logging.getLogger("sglang")
    sglang_logger.addHandler(capture)
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            try:
                prepare_server_args(argv)
            except SystemExit as e:
                result["error"] = message_from_stderr(err.getvalue(), e.code)
                return result
        result["parsed"] = explicit_values(_GIVEN)
        result["stage"] = "done"
        result["ok"] = True
    except Exception as e:
        result["error"] = f"{type(e).__name__}: {e}"
        if os.environ.get("DEPLOYC_CHECKER_TRACEBACK"):
            traceback.print_exc()
    finally:
        sglang_logger.removeHandler(capture)
        result["warnings"] = capture.records
        sys.stderr.write(err.getvalue())
    return result


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = real_stdout()  # keep stdout for the JSON; everything else -> stderr
    cases = load_cases(sys.argv[1])
    import sglang.launch_server  # noqa: F401  (what `python -m` imports first)
    from sglang.srt.plugins import load_plugins

    load_plugins()
    _install_recorder()
    results = [check_case(c) for c in cases]
    out.write(json.dumps(results, indent=1))
    out.write("\n")
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
