"""Emit helpers shared by the backends: shell scripts, docker run, Compose, Kubernetes, NCCL.

Backends build their commands as sequences of :data:`Word` (a literal string, or an
:class:`EnvRef` resolved where the artifact runs) and hand them to these renderers, which
own the quoting and escaping rules of each format.  Nothing here knows an engine.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence
from typing import Any

import yaml
from attrs import field, frozen

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
# A hint is printed by the shell when the variable is unset. Inside "${NAME:?hint}" bash still parses
# quotes, so no quote characters (an apostrophe would open a string), no $, backslash or braces.
_HINT = re.compile(r"^[A-Za-z0-9 .,:;_/=+@%()-]{0,200}$")


def _check_name(_: object, __: object, value: str) -> None:
    if not _ENV_NAME.fullmatch(value):
        raise ValueError(f"not an environment variable name: {value!r}")


def _check_hint(_: object, __: object, value: str) -> None:
    if not _HINT.fullmatch(value):
        raise ValueError(f"unsafe characters in an environment hint: {value!r}")


@frozen
class EnvRef:
    """A value read from the environment where the artifact runs (its value is never written).

    Shell renders ``"${NAME:?hint}"`` (the script stops with the hint when it is unset),
    Compose ``${NAME:?hint}``, Kubernetes ``$(NAME)``.
    """

    name: str = field(validator=_check_name)
    hint: str = field(default="", validator=_check_hint)
    required: bool = True  # False: a variable the script itself sets (rendered without the :? check)


Word = str | EnvRef


def env_name(name: str) -> str:
    """Validate an environment variable name taken from a spec or plan."""
    _check_name(None, None, name)
    return name


class PlainDumper(yaml.SafeDumper):
    """PyYAML's safe dumper without anchors and aliases (shared sub-objects are written out each time)."""

    def ignore_aliases(self, data: Any) -> bool:  # noqa: ARG002  (PyYAML's signature)
        """Never emit ``&id001`` / ``*id001``."""
        return True


def comment_block(lines: Sequence[str], width: int = 100) -> str:
    """``# `` comment lines (wrapped) for the top of a YAML file."""
    out: list[str] = []
    for line in lines:
        out += textwrap.wrap(line, width - 2, break_long_words=False, break_on_hyphens=False) or [""]
    return "".join(f"# {text}\n" if text else "#\n" for text in out)


__all__ = ["EnvRef", "PlainDumper", "Word", "comment_block", "env_name"]
