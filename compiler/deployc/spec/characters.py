"""One rule for every string in a spec: no control, line-breaking or bidirectional-override characters.

Spec values reach shell scripts, YAML manifests, engine command lines and terminals.  A schema
``pattern`` per field cannot be trusted to exclude them all (C1 controls and Unicode line breaks
pass a ``[^\\x00-\\x1f\\x7f]`` class; a new field may forget the pattern), so this scan runs over every
key and value of the raw table, whatever its schema, before the schema itself (DPC020).

Refused: C0 controls (newline and tab included), DEL, C1 controls (NEL, U+0085, becomes a line
break in YAML), the Unicode line and paragraph separators, the bidirectional-text controls
(U+202E reorders what an editor or terminal shows of ``run.sh``) and invisible characters that make
two different values look the same (zero-width space, word joiner, byte-order mark).
"""

from __future__ import annotations

import unicodedata

from deployc.diagnostics import Diagnostic
from deployc.spec.loader import SpecDocument
from deployc.spec.locate import walk_strings

# Unicode's bidirectional formatting characters (UAX #9, "Explicit Directional" and marks).
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Invisible characters with no business in a name, path or flag (ZWJ/ZWNJ are left alone: scripts need them).
_INVISIBLE = frozenset("\u200b\u2060\ufeff")
_NAMES = {"\n": "a newline", "\r": "a carriage return", "\t": "a tab", "\x1b": "an escape character",
          "\x85": "NEL, a C1 line break", "\u2028": "a Unicode line separator",
          "\u2029": "a Unicode paragraph separator", "\ufeff": "a byte-order mark"}


def unsafe_character(text: str) -> str | None:
    """The first character of ``text`` a spec value may not hold (None when there is none)."""
    for ch in text:
        if ch in _BIDI or ch in _INVISIBLE or unicodedata.category(ch) in ("Cc", "Zl", "Zp"):
            return ch
    return None


def describe(ch: str) -> str:
    """``a newline (U+000A)``: what the character is, in words and code point."""
    code = ord(ch)
    if ch in _NAMES:
        what = _NAMES[ch]
    elif ch in _BIDI:
        what = "a bidirectional-text control"
    elif ch in _INVISIBLE:
        what = "an invisible character"
    elif 0x80 <= code <= 0x9F:
        what = "a C1 control character"
    else:
        what = "a control character"
    return f"{what} (U+{code:04X})"



def character_diagnostics(document: SpecDocument) -> list[Diagnostic]:
    """A DPC020 for every key or value holding a character :func:`unsafe_character` refuses."""
    out = []
    for path, text, is_key in walk_strings(document.raw):
        ch = unsafe_character(text)
        if ch is None:
            continue
        shown = Diagnostic.value_repr(text)
        where = "key" if is_key else "value"
        out.append(document.diagnostic(
            "DPC020", f"{where} {shown} contains {describe(ch)}", path, value=shown,
            hint="spec text must be printable on one line: remove the character (it could end a shell command, "
                 "break a YAML manifest or disguise what a script shows)"))
    return out
