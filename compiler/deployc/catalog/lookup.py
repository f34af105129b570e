"""Name resolution shared by the GPU, interconnect and model catalogs: normalised keys and did-you-mean.

Users type names the way their tools print them (``NVIDIA H100 80GB HBM3``, ``h100-sxm``,
``meta-llama/Llama-3.1-8B-Instruct``); every catalog compares names by one normalised key, so
case, spaces, dashes and underscores never matter.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from functools import cache
from importlib import resources
from typing import Any, Generic, TypeVar

T = TypeVar("T")

_SEPARATORS = re.compile(r"[\s\-_]+")
# Vendor words tools prefix to product names ("NVIDIA GeForce RTX 4090", "Tesla T4", "AMD Instinct MI300X").
_VENDOR_WORDS = ("nvidia", "geforce", "tesla", "amd", "instinct")
SUGGESTION_COUNT = 3
SUGGESTION_CUTOFF = 0.6


class CatalogLookupError(Exception):
    """A name that is not in the catalog, with the closest names that are."""

    def __init__(self, kind: str, name: str, suggestions: tuple[str, ...] = (), detail: str = "") -> None:
        self.kind = kind
        self.name = name
        self.suggestions = suggestions
        self.detail = detail
        hint = f"; did you mean {', '.join(repr(s) for s in suggestions)}?" if suggestions else ""
        extra = f" ({detail})" if detail else ""
        super().__init__(f"unknown {kind} {name!r}{extra}{hint}")


def normalise(name: str) -> str:
    """The comparison key of a name: lower case, without spaces, dashes or underscores."""
    return _SEPARATORS.sub("", name.strip().lower())


def without_vendor(name: str) -> str:
    """The normalised key with leading vendor words removed (``NVIDIA GeForce RTX 4090`` → ``rtx4090``)."""
    words = _SEPARATORS.split(name.strip().lower())
    while words and words[0] in _VENDOR_WORDS:
        words = words[1:]
    return "".join(words)


def suggest(name: str, candidates: Iterable[str]) -> tuple[str, ...]:
    """Up to three candidates closest to ``name`` (difflib on normalised keys), best first.

    Candidates whose key starts with the typed key come first ("A100" → every A100 variant),
    then difflib's close matches. The candidates are returned as spelled in the catalog.
    """
    by_key: dict[str, str] = {}
    for candidate in candidates:
        by_key.setdefault(normalise(candidate), candidate)
    key = normalise(name)
    if not key:
        return ()
    prefixed = sorted(k for k in by_key if k.startswith(key) and k != key)
    close = difflib.get_close_matches(key, list(by_key), n=SUGGESTION_COUNT, cutoff=SUGGESTION_CUTOFF)
    ordered: list[str] = []
    for k in [*prefixed, *close]:
        if by_key[k] not in ordered:
            ordered.append(by_key[k])
    return tuple(ordered[:SUGGESTION_COUNT])


class NameIndex(Generic[T]):
    """Items reachable by any of their names through the normalised key; first name registered wins."""

    def __init__(self, kind: str, items: Iterable[T], names_of: Callable[[T], Iterable[str]]) -> None:
        self.kind = kind
        self._by_key: dict[str, T] = {}
        self._display: list[str] = []
        for item in items:
            for name in names_of(item):
                self._by_key.setdefault(normalise(name), item)
                self._display.append(name)

    def find(self, name: str) -> T | None:
        """The item named ``name`` (also tried without a leading vendor word), or None."""
        found = self._by_key.get(normalise(name))
        if found is None:
            found = self._by_key.get(without_vendor(name))
        return found

    def get(self, name: str) -> T:
        """The item named ``name``; :class:`CatalogLookupError` with suggestions when there is none."""
        found = self.find(name)
        if found is None:
            raise CatalogLookupError(self.kind, name, suggest(name, self._display))
        return found

    @property
    def names(self) -> tuple[str, ...]:
        """Every registered name, as spelled in the catalog."""
        return tuple(self._display)


@cache
def load_data(relative_path: str) -> Any:
    """Parse one JSON file shipped under ``deployc/catalog/data`` (cached: read once per process)."""
    resource = resources.files("deployc.catalog").joinpath("data", *relative_path.split("/"))
    return json.loads(resource.read_text(encoding="utf-8"))


def data_files(directory: str) -> tuple[str, ...]:
    """Relative paths of the JSON files in one data sub-directory, sorted."""
    folder = resources.files("deployc.catalog").joinpath("data", directory)
    names = (entry.name for entry in folder.iterdir() if entry.name.endswith(".json"))
    return tuple(sorted(f"{directory}/{name}" for name in names))


def sources_of(entry: Mapping[str, Any]) -> tuple[str, ...]:
    """An entry's ``source`` as a tuple of strings (a string, a list, or a mapping of topic → list)."""
    raw = entry.get("source", ())
    if isinstance(raw, str):
        return (raw,)
    if isinstance(raw, Mapping):
        return tuple(f"{topic}: {item}" for topic, items in raw.items()
                     for item in ([items] if isinstance(items, str) else items))
    return tuple(str(item) for item in raw)
