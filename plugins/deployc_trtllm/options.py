"""The ``[backends.trtllm]`` table: no options yet (the JSON Schema refuses any key)."""

from __future__ import annotations

from typing import Any

OPTIONS_SCHEMA: dict[str, Any] = {"type": "object", "additionalProperties": False,
                                  "description": "Options of the TensorRT-LLM backend (none yet)."}
