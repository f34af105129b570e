"""Reading a spec file: size limits, TOML parsing with positions, schema validation.

The result is a :class:`SpecDocument` (the text, the raw table and a key locator, so
later stages can point at lines) and, when the schema accepts it, a structured
:class:`~deployc.spec.model.Spec`.
"""

from __future__ import annotations

import codecs
import math
import re
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from attrs import frozen

from deployc.diagnostics import Diagnostic, SpecError
from deployc.spec.locate import KeyLocator, KeyPath, format_path, locate_keys

MAX_SPEC_BYTES = 1 << 20  # 1 MiB: real specs are a few KiB
MAX_NESTING_DEPTH = 32

_TOML_POSITION = re.compile(r"\(at line (\d+), column (\d+)\)")


@frozen
class SpecDocument:
    """A spec file as read: where it came from, its text, its table, and key positions."""

    path: Path
    display_name: str
    text: str
    raw: dict[str, Any]
    locator: KeyLocator

    def diagnostic(self, rule: str, message: str, path: KeyPath = (), **kwargs: Any) -> Diagnostic:
        """A diagnostic located at ``path`` in this document."""
        return Diagnostic(
            rule=rule, message=message, file=self.display_name,
            key_path=format_path(path) or None, line=self.locator.line_of(path) if path else None,
            **kwargs,
        )

    def value_at(self, path: KeyPath) -> Any:
        """The raw value at ``path`` (None when absent)."""
        node: Any = self.raw
        for part in path:
            try:
                node = node[part]
            except (KeyError, IndexError, TypeError):
                return None
        return node


def _read_text(path: Path, display_name: str) -> str:
    def fail(message: str, hint: str | None = None, rule: str = "DPC001") -> SpecError:
        return SpecError([Diagnostic(rule=rule, message=message, file=display_name, hint=hint)])

    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise fail("no such file", "check the path") from None
    except OSError as exc:
        raise fail(f"cannot read: {exc.strerror}") from None
    if not path.is_file():
        raise fail("not a file")
    if size > MAX_SPEC_BYTES:
        raise fail(f"spec is {size:,} bytes; the limit is {MAX_SPEC_BYTES:,}",
                   "a spec is a few KiB; split generated data out of it", rule="DPC003")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise fail(f"cannot read: {exc.strerror}") from None
    if data.startswith(codecs.BOM_UTF8):  # tomllib's "Invalid statement (at line 1, column 1)" hides it
        raise fail("the file starts with a UTF-8 byte-order mark (EF BB BF), which TOML does not allow",
                   "save it as UTF-8 without a BOM", rule="DPC002")
    for bom, name in ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
                      (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16")):
        if data.startswith(bom):
            raise fail(f"the file is {name} (it starts with the byte-order mark {bom.hex(' ').upper()})",
                       "TOML files must be UTF-8: save it as UTF-8 without a BOM")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise fail(f"not UTF-8 (byte {exc.start})", "TOML files must be UTF-8") from None


def _depth(node: Any, level: int = 0) -> int:
    if level > MAX_NESTING_DEPTH:
        return level
    if isinstance(node, Mapping):
        return max((_depth(v, level + 1) for v in node.values()), default=level + 1)
    if isinstance(node, list):
        return max((_depth(v, level + 1) for v in node), default=level + 1)
    return level


def _non_finite(node: Any, path: KeyPath = ()) -> Iterator[KeyPath]:
    if isinstance(node, float) and not math.isfinite(node):
        yield path
    elif isinstance(node, Mapping):
        for key, value in node.items():
            yield from _non_finite(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _non_finite(value, (*path, index))


_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"|\'[^\']*\'')


def _longest_dotted_key(text: str) -> int:
    """The most dot-separated parts of a key or table header, found in linear time.

    tomllib's dotted-key handling is quadratic in the number of parts, so a 1 MiB key of dots must
    be refused before it is parsed. Only the key side of a line counts (before ``=``, or a
    ``[header]``), with quoted key parts removed first.
    """
    longest = 1
    for line in text.splitlines():
        if line.count(".") < MAX_NESTING_DEPTH:
            continue
        stripped = line.lstrip()
        key = stripped if stripped.startswith("[") else _QUOTED.sub("", stripped).split("=", 1)[0]
        longest = max(longest, _QUOTED.sub("", key).count(".") + 1)
    return longest


def read_document(path: Path, display_name: str | None = None) -> SpecDocument:
    """Read and parse a spec file; raise :class:`SpecError` on unreadable or non-TOML input."""
    name = display_name or str(path)
    text = _read_text(path, name)
    longest = _longest_dotted_key(text)
    if longest > MAX_NESTING_DEPTH:
        raise SpecError([Diagnostic(rule="DPC003", file=name, message=f"nested deeper than {MAX_NESTING_DEPTH} levels",
                                    hint=f"a key or table header has {longest} dotted parts")])
    try:
        raw = tomllib.loads(text)
    except ValueError as exc:  # TOMLDecodeError, and int() beyond Python's digit limit
        if not isinstance(exc, tomllib.TOMLDecodeError):
            raise SpecError([Diagnostic(rule="DPC002", file=name, message=f"TOML value rejected: {exc}",
                                        hint="numbers have at most 4,300 digits")]) from None
        match = _TOML_POSITION.search(str(exc))
        message = _TOML_POSITION.sub("", str(exc)).strip()
        line, column = (int(match.group(1)), int(match.group(2))) if match else (None, None)
        raise SpecError([Diagnostic(rule="DPC002", message=f"TOML syntax error: {message}", file=name,
                                    line=line, column=column)]) from None
    except RecursionError:
        raise SpecError([Diagnostic(rule="DPC003", message="nesting too deep to parse", file=name,
                                    hint=f"at most {MAX_NESTING_DEPTH} levels")]) from None
    document = SpecDocument(path=path, display_name=name, text=text, raw=raw, locator=locate_keys(text))
    if _depth(raw) > MAX_NESTING_DEPTH:
        raise SpecError([document.diagnostic("DPC003", f"nested deeper than {MAX_NESTING_DEPTH} levels")])
    bad = [document.diagnostic("DPC013", "not a finite number", p, value=Diagnostic.value_repr(
        document.value_at(p)), hint="use a finite number") for p in _non_finite(raw)]
    if bad:
        raise SpecError(bad)
    return document
