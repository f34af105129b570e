"""Line numbers for key paths in a TOML document.

``tomllib`` returns plain dicts without positions, so this module scans the text
once (after ``tomllib`` has accepted it) and records the line where each key path is
defined: table headers, arrays of tables, dotted keys, inline tables and arrays,
skipping strings and comments.  Lookups fall back to the nearest enclosing path.
"""

from __future__ import annotations

import bisect
import contextlib
import json
from collections.abc import Iterator, Sequence
from typing import Any

from attrs import frozen

KeyPath = tuple[str | int, ...]

_BARE_KEY_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_SCALAR_END = frozenset(",]}\n#")


@frozen
class KeyLocator:
    """Maps key paths of one document to 1-based line numbers."""

    lines: dict[KeyPath, int]

    def line_of(self, path: Sequence[str | int]) -> int | None:
        """The line defining ``path``, else that of its nearest recorded ancestor."""
        key = tuple(path)
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key[:-1]
        return None


def _key_text(key: str) -> str:
    """A key as TOML writes it: bare when it can be, else a quoted string with escapes."""
    if key and all(ch in _BARE_KEY_CHARS for ch in key):
        return key
    return json.dumps(key)  # JSON string escapes are valid TOML basic-string escapes


def format_path(path: Sequence[str | int]) -> str:
    """``("workload", "classes", 1, "share")`` → ``workload.classes[1].share`` (odd keys quoted)."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{_key_text(part)}" if out else _key_text(part)
    return out


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line_starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]
        self.lines: dict[KeyPath, int] = {}
        self.array_tables: dict[KeyPath, int] = {}

    def line(self, pos: int | None = None) -> int:
        return bisect.bisect_right(self.line_starts, self.pos if pos is None else pos)

    def record(self, path: KeyPath, pos: int) -> None:
        # Every prefix too: a table that exists only through `[a.b]` or `a.b = 1` is located at its first use.
        line = self.line(pos)
        for end in range(1, len(path) + 1):
            self.lines.setdefault(path[:end], line)

    def peek(self, n: int = 1) -> str:
        return self.text[self.pos : self.pos + n]

    def skip_ws(self, newlines: bool = False) -> None:
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch in " \t\r" or (newlines and ch == "\n"):
                self.pos += 1
            elif ch == "#":
                end = self.text.find("\n", self.pos)
                self.pos = len(self.text) if end < 0 else end
            else:
                return

    def document(self) -> None:
        current: KeyPath = ()
        while True:
            self.skip_ws(newlines=True)
            if self.pos >= len(self.text):
                return
            start = self.pos
            if self.peek(2) == "[[":
                self.pos += 2
                keys = self.key()
                self.pos = self.text.index("]]", self.pos) + 2
                array_path = (*self.resolve(keys[:-1]), keys[-1])
                self.record(array_path, start)
                index = self.array_tables.get(array_path, 0)
                self.array_tables[array_path] = index + 1
                current = (*array_path, index)
                self.record(current, start)
            elif self.peek() == "[":
                self.pos += 1
                current = self.resolve(self.key())
                self.pos = self.text.index("]", self.pos) + 1
                self.record(current, start)
            else:
                self.keyval(current)

    def resolve(self, keys: Sequence[str]) -> KeyPath:
        out: KeyPath = ()
        for key in keys:
            out = (*out, key)
            if out in self.array_tables:
                out = (*out, self.array_tables[out] - 1)
        return out

    def key(self) -> list[str]:
        parts: list[str] = []
        while True:
            self.skip_ws()
            ch = self.peek()
            if ch in "\"'":
                parts.append(self.string_value())
            else:
                start = self.pos
                while self.pos < len(self.text) and self.text[self.pos] in _BARE_KEY_CHARS:
                    self.pos += 1
                parts.append(self.text[start : self.pos])
            self.skip_ws()
            if self.peek() != ".":
                return parts
            self.pos += 1

    def keyval(self, base: KeyPath) -> None:
        start = self.pos
        path = (*base, *self.key())
        self.record(path, start)
        self.skip_ws()
        self.pos += 1  # '='
        self.value(path)

    def value(self, path: KeyPath) -> None:
        self.skip_ws()
        ch = self.peek()
        if ch == "{":
            self.pos += 1
            while True:
                self.skip_ws(newlines=True)
                if self.peek() == "}":
                    self.pos += 1
                    return
                self.keyval(path)
                self.skip_ws(newlines=True)
                if self.peek() == ",":
                    self.pos += 1
        elif ch == "[":
            self.pos += 1
            index = 0
            while True:
                self.skip_ws(newlines=True)
                if self.pos >= len(self.text) or self.peek() == "]":
                    self.pos += 1
                    return
                self.record((*path, index), self.pos)
                self.value((*path, index))
                self.skip_ws(newlines=True)
                if self.peek() == ",":
                    self.pos += 1
                index += 1
        elif ch in "\"'":
            self.string_value()
        else:
            while self.pos < len(self.text) and self.text[self.pos] not in _SCALAR_END:
                self.pos += 1

    def string_value(self) -> str:
        quote = self.peek()
        triple = self.peek(3) == quote * 3
        delim = quote * 3 if triple else quote
        self.pos += len(delim)
        start = self.pos
        while self.pos < len(self.text):
            if quote == '"' and self.text[self.pos] == "\\":
                self.pos += 2
                continue
            if self.text.startswith(delim, self.pos):
                # A closing ''' or """ may be followed by up to two more quotes that belong to the string.
                while triple and self.text.startswith(delim + quote, self.pos):
                    self.pos += 1
                end = self.pos
                self.pos += len(delim)
                return self.text[start:end]
            self.pos += 1
        return self.text[start:]


def locate_keys(text: str) -> KeyLocator:
    """Scan a TOML document that ``tomllib`` accepted and record where each key is defined."""
    scanner = _Scanner(text)
    # Errors are only reached on text tomllib rejected; keep what was found so far.
    with contextlib.suppress(ValueError, IndexError):
        scanner.document()
    return KeyLocator(scanner.lines)


def walk_strings(node: Any, path: KeyPath = ()) -> Iterator[tuple[KeyPath, str, bool]]:
    """(path, text, is_key) for every string key and value of a parsed document."""
    if isinstance(node, str):
        yield path, node, False
    elif isinstance(node, dict):
        for key, value in node.items():
            yield (*path, key), str(key), True
            yield from walk_strings(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk_strings(value, (*path, index))
