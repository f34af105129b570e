"""Refusing ``[backends.NAME] extra_args`` that would override the plan or smuggle flags past the checks."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

# A flag inside a value ("--foo --bar"): the engine's parser would read it as a flag of its own.
_HIDDEN_FLAG = re.compile(r"\s(--[a-z0-9][a-z0-9-]*)")
DERIVED_HINT = "change the spec (or the option this backend offers) instead"


def extra_args_problems(extra_args: Sequence[str], *, owned: Callable[[str], bool], known_flag: Callable[[str], bool],
                        example: str, owned_hint: Callable[[str], str] | None = None) -> list[tuple[str, str]]:
    """(message, hint) for each item that sets a flag deployc derives (``owned``), hides a flag the engine knows
    (``known_flag``) inside a value, or holds several words; ``example`` is a two-item list shown in that hint."""
    out: list[tuple[str, str]] = []
    for arg in extra_args:
        flag = arg.partition("=")[0]
        if owned(flag):
            hint = owned_hint(flag) if owned_hint else DERIVED_HINT
            out.append((f"extra_args sets {flag}, which deployc derives from the plan", hint))
        hidden = [m for m in _HIDDEN_FLAG.findall(arg) if known_flag(m)]
        if hidden and not arg.startswith("-"):
            out.append((f"extra_args value {arg!r} hides the flag {hidden[0]}",
                        "give each flag as its own item of extra_args"))
        elif arg.startswith("-") and (" " in arg or "\t" in arg) and "=" not in arg:
            out.append((f"extra_args item {arg!r} holds several words", f"one flag or value per item: {example}"))
    return out
