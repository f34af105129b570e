# ruff: noqa: PLC0415 -- engine modules are imported lazily, after the environment is set up
"""Dump an engine's real CLI parser to a JSON manifest (run INSIDE the engine venv).

Usage: python extract_manifest.py {vllm|sglang} > manifest.json

The parser is built exactly as check_vllm.py / check_sglang.py build it (that
is, as the engines' CLIs do), so a new engine version is: install it with
install.sh, run this, diff against the previous manifest. Format (same as
shared/reference/backends/<engine>-<version>.json):

  {"tool", "version", "parser", "note",
   "options": [{"flags", "dest", "type", "default", "choices", "nargs",
                "action", "help"}]}

"flags" are the option strings the parser shows; an option that also accepts
option strings it hides from --help (vLLM's --no-enable-X spelling of its
--enable-X/--disable-X pairs) gets an extra "hidden_flags" list.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import sys
from typing import Any

from _common import jsonable, real_stdout


def _vllm_parser() -> tuple[argparse.ArgumentParser, str]:
    from check_vllm import build_parser

    parser, _cmd, _given = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices["serve"], (
                "extracted from vllm serve's real parser (vllm CLI main parser + "
                "ServeSubcommand.subparser_init -> make_arg_parser) built with "
                "VLLM_TARGET_DEVICE=cpu by tools/engine_parsers/extract_manifest.py"
            )
    raise RuntimeError("vllm parser has no subcommands")


def _sglang_parser() -> tuple[argparse.ArgumentParser, str]:
    """Capture the parser prepare_server_args() itself builds."""
    from sglang.srt import server_args as sa_mod

    captured: list[argparse.ArgumentParser] = []
    original = sa_mod.ServerArgs.add_cli_args

    def add_cli_args(parser: argparse.ArgumentParser) -> None:
        original(parser)
        captured.append(parser)

    sa_mod.ServerArgs.add_cli_args = staticmethod(add_cli_args)
    try:
        sa_mod.prepare_server_args(["--model-path", "dummy"])
    finally:
        sa_mod.ServerArgs.add_cli_args = staticmethod(original)
    return captured[0], (
        "extracted from the parser sglang.srt.server_args.prepare_server_args "
        "builds (ServerArgs.add_cli_args) by tools/engine_parsers/extract_manifest.py"
    )


def _type_name(t: Any) -> str | None:
    if t is None:
        return None
    return str(getattr(t, "__name__", None) or type(t).__name__)


def _choices(choices: Any) -> list[Any] | None:
    if choices is None:
        return None
    items = list(choices)
    if isinstance(choices, (set, frozenset)):
        items = sorted(items, key=str)
    return [jsonable(c) for c in items]


def describe(parser: argparse.ArgumentParser) -> list[dict[str, Any]]:
    hidden: dict[int, list[str]] = {}
    for option, action in parser._option_string_actions.items():
        if option not in action.option_strings:
            hidden.setdefault(id(action), []).append(option)
    options = []
    for action in parser._actions:
        entry: dict[str, Any] = {
            "flags": list(action.option_strings) or [action.dest],
            "dest": action.dest,
            "type": _type_name(action.type),
            "default": jsonable(action.default),
            "choices": _choices(action.choices),
            "nargs": action.nargs,
            "action": type(action).__name__,
            "help": action.help if isinstance(action.help, str) else None,
        }
        if id(action) in hidden:
            entry["hidden_flags"] = sorted(hidden[id(action)])
        options.append(entry)
    return options


def main() -> int:
    if len(sys.argv) != 2 or sys.argv[1] not in ("vllm", "sglang"):
        print(__doc__, file=sys.stderr)
        return 2
    engine = sys.argv[1]
    out = real_stdout()
    if engine == "vllm":
        import check_vllm  # noqa: F401  (sets the CPU/offline environment first)

        parser, note = _vllm_parser()
    else:
        import check_sglang  # noqa: F401  (sets the offline environment first)

        parser, note = _sglang_parser()
    manifest = {
        "tool": engine,
        "version": importlib.metadata.version(engine),
        "parser": "real-parser dump",
        "note": note,
        "options": describe(parser),
    }
    out.write(json.dumps(manifest, indent=1, ensure_ascii=False))
    out.write("\n")
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
