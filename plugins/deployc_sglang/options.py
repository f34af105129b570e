"""The ``[backends.sglang]`` table: its JSON Schema (merged into the spec schema) and its typed form."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attrs import frozen

PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
SCHEDULE_POLICIES = ("lpm", "random", "fcfs", "dfs-weight", "lof", "priority", "routing-key", "hrrn",
                     "shortest-prefill-first")  # --schedule-policy choices, SGLang 0.5.23 manifest

OPTIONS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "description": "Options of the SGLang backend.",
    "properties": {
        "extra_args": {
            "type": "array", "maxItems": 64,
            "items": {"type": "string", "minLength": 1, "maxLength": 4096, "pattern": PRINTABLE},
            "description": "Extra `python3 -m sglang.launch_server` arguments appended after deployc's, one flag or "
                           "value per item (`[\"--log-level\", \"debug\"]`; `--flag=value` is split in two). Each "
                           "is checked against SGLang's pinned flag set; flags deployc sets from the plan are refused "
                           "(change the spec instead).",
        },
        "shm_size_gib": {
            "type": "number", "exclusiveMinimum": 0, "maximum": 4096,
            "description": "Give containers a /dev/shm of this size instead of sharing the host's IPC namespace "
                           "(--ipc=host).",
        },
        "schedule_policy": {
            "enum": list(SCHEDULE_POLICIES),
            "description": "Override the scheduling policy deployc derives from the workload (lpm when prefixes "
                           "are shared, fcfs otherwise).",
        },
    },
}


@frozen(kw_only=True)
class SglangOptions:
    """The validated ``[backends.sglang]`` table with its defaults."""

    extra_args: tuple[str, ...] = ()
    shm_size_gib: float | None = None
    schedule_policy: str | None = None


def parse_options(raw: Mapping[str, Any] | None) -> SglangOptions:
    """Structure the (already schema-validated) table."""
    raw = raw or {}
    return SglangOptions(extra_args=tuple(raw.get("extra_args", ())), shm_size_gib=raw.get("shm_size_gib"),
                         schedule_policy=raw.get("schedule_policy"))
