"""The ``[backends.trtllm]`` table: its JSON Schema (merged into the spec schema) and its typed form."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from attrs import frozen

DNS_LABEL = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
Flow = Literal["auto", "pytorch", "engine"]

OPTIONS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "description": "Options of the TensorRT-LLM backend.",
    "properties": {
        "flow": {
            "enum": ["auto", "pytorch", "engine"],
            "description": "`pytorch`: `trtllm-serve MODEL --backend pytorch` with an LLM-API options YAML, "
                           "TensorRT-LLM 1.x's serving path, no compile step. `engine`: the legacy quantize.py + "
                           "trtllm-build + `trtllm-serve --backend tensorrt` flow (an engine per model, configuration "
                           "and GPU architecture; single node). `auto` (default): the PyTorch flow, and the engine "
                           "flow only where deployc must quantize a 16-bit checkpoint (quantize.py does that; the "
                           "PyTorch flow loads pre-quantized checkpoints).",
        },
        "shm_size_gib": {
            "type": "number", "exclusiveMinimum": 0, "maximum": 4096,
            "description": "Give containers a /dev/shm of this size instead of sharing the host's IPC namespace "
                           "(--ipc=host).",
        },
        "k8s_namespace": {"type": "string", "pattern": DNS_LABEL,
                          "description": "Namespace of the Kubernetes manifests (default: none, the current one)."},
        "hf_token_secret": {
            "type": "string", "pattern": DNS_LABEL,
            "description": "Kubernetes Secret holding the Hugging Face token under the key `token` "
                           "(default `hf-token`; optional, so public models need none).",
        },
    },
}


@frozen(kw_only=True)
class TrtllmOptions:
    """The validated ``[backends.trtllm]`` table with its defaults."""

    flow: Flow = "auto"
    shm_size_gib: float | None = None
    k8s_namespace: str | None = None
    hf_token_secret: str = "hf-token"  # noqa: S105  (a Secret's name, not a token)


def parse_options(raw: Mapping[str, Any] | None) -> TrtllmOptions:
    """Structure the (already schema-validated) table."""
    raw = raw or {}
    return TrtllmOptions(flow=raw.get("flow", "auto"), shm_size_gib=raw.get("shm_size_gib"),
                         k8s_namespace=raw.get("k8s_namespace"), hf_token_secret=raw.get("hf_token_secret", "hf-token"))
