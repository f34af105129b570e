"""deployc: a declarative deployment compiler for LLM inference.

The public library API lives in :mod:`deployc.api`; plugin authors code against
:mod:`deployc.hookspecs` and mark implementations with :data:`deployc.hookimpl`.
"""

from __future__ import annotations

import pluggy

__version__ = "0.1.0"

#: Marker for hook implementations in backend plugins (public, like ``tox.plugin.impl``).
hookimpl = pluggy.HookimplMarker("deployc")

__all__ = ["__version__", "hookimpl"]
