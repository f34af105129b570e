"""deployc's SGLang backend: ``python -m sglang.launch_server`` in Docker, and the same settings as a YAML file.

Registered under the ``deployc.backends`` entry-point group as ``sglang = deployc_sglang.plugin``,
exactly as a third-party backend would be.  Everything version-specific (the flag set, the
memory rule, the kernel matrix) is pinned to :data:`ENGINE_VERSION`.
"""

from __future__ import annotations

BACKEND_NAME = "sglang"
ENGINE = "SGLang"
ENGINE_VERSION = "0.5.23"
IMAGE = "lmsysorg/sglang"
IMAGE_TAG = f"v{ENGINE_VERSION}"
