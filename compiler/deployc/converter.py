"""deployc's cattrs converter class: cattrs' own, generating each attrs class's hooks once.

cattrs caches the hooks it generates for attrs classes in its dispatch cache only, and empties that whole
cache whenever a hook is registered, which cattrs itself does on the first use of each new list or tuple
type (``gen_unstructure_iterable`` registers the hook it makes). So the same classes' code was generated and
compiled again and again: in one ``plan.json``, ``Latency`` five times, ``Knobs`` three times, and every
later plan.json of the process regenerated ``ServingResult`` and its fields. Here the generated hook is kept
per class, in the same place of cattrs' dispatch order (the method cattrs registers is overridden, not
re-registered), so what the hook does is unchanged: only how often it is built.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import cattrs


class Converter(cattrs.Converter):
    """A :class:`cattrs.Converter` that builds each attrs class's (un)structure hook once.

    Register every hook before the first (un)structure: a kept hook is not rebuilt when one is added later.
    """

    def __init__(self, **kwargs: Any) -> None:
        self._unstructure_hooks: dict[Any, Callable[[Any], dict[str, Any]]] = {}
        self._structure_hooks: dict[Any, Callable[[Mapping[str, Any], Any], Any]] = {}
        super().__init__(**kwargs)

    def gen_unstructure_attrs_fromdict(self, cl: Any) -> Callable[[Any], dict[str, Any]]:
        """cattrs' generated unstructure hook for an attrs class, generated on the class's first use only."""
        hook = self._unstructure_hooks.get(cl)
        if hook is None:
            hook = self._unstructure_hooks[cl] = super().gen_unstructure_attrs_fromdict(cl)
        return hook

    def gen_structure_attrs_fromdict(self, cl: Any) -> Callable[[Mapping[str, Any], Any], Any]:
        """cattrs' generated structure hook for an attrs class, generated on the class's first use only."""
        hook = self._structure_hooks.get(cl)
        if hook is None:
            hook = self._structure_hooks[cl] = super().gen_structure_attrs_fromdict(cl)
        return hook
