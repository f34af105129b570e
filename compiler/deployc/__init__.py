"""deployc: a declarative deployment compiler for LLM inference.

The public library API lives in :mod:`deployc.api`; plugin authors code against
:mod:`deployc.contract` and mark implementations with :data:`deployc.contract.hookimpl`
(also :data:`deployc.hookimpl`, the same marker).
"""

from __future__ import annotations

import pluggy

__version__ = "0.1.0"

#: Marker for hook implementations in backend plugins (the same as :data:`deployc.contract.hookimpl`).
hookimpl = pluggy.HookimplMarker("deployc")

__all__ = ["__version__", "hookimpl"]
