"""The ``[backends.vllm]`` table: its JSON Schema (merged into the spec schema) and its typed form."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attrs import frozen

DNS_LABEL = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"

OPTIONS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "description": "Options of the vLLM backend.",
    "properties": {
        "extra_args": {
            "type": "array", "maxItems": 64,
            "items": {"type": "string", "minLength": 1, "maxLength": 4096, "pattern": PRINTABLE},
            "description": "Extra `vllm serve` arguments appended after deployc's, one flag or value per item "
                           "(`[\"--max-logprobs\", \"5\"]`). Each is checked against vLLM's pinned flag set; flags "
                           "deployc sets from the plan are refused (change the spec instead).",
        },
        "enforce_eager": {
            "type": "boolean",
            "description": "Override the plan's CUDA-graph decision: true runs eager (--enforce-eager).",
        },
        "distributed_executor_backend": {
            "enum": ["mp", "ray"],
            "description": "How vLLM starts its workers. `mp` (default): multiprocessing, and vLLM's native "
                           "multi-node launcher (--nnodes/--node-rank/--master-addr, --headless workers). `ray`: "
                           "a Ray cluster (head and worker scripts start it).",
        },
        "shm_size_gib": {
            "type": "number", "exclusiveMinimum": 0, "maximum": 4096,
            "description": "Give containers a /dev/shm of this size instead of sharing the host's IPC namespace "
                           "(--ipc=host), e.g. where the host's IPC namespace must stay private.",
        },
        "k8s_namespace": {"type": "string", "pattern": DNS_LABEL,
                          "description": "Namespace of the Kubernetes manifests (default: none, the current one)."},
        "k8s_rdma_resource": {
            "type": "string", "pattern": r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?/[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}"
                                         r"[A-Za-z0-9])?$",
            "description": "The RDMA device plugin's resource (e.g. `rdma/rdma_shared_device_a` or "
                           "`nvidia.com/hostdev`): each multi-node pod requests one, with the IPC_LOCK capability, "
                           "so NCCL runs over InfiniBand/RoCE. Without it the Kubernetes manifests run NCCL over "
                           "TCP sockets on the pod network (NCCL_IB_DISABLE=1).",
        },
        "hf_token_secret": {
            "type": "string", "pattern": DNS_LABEL,
            "description": "Kubernetes Secret holding the Hugging Face token under the key `token` "
                           "(default `hf-token`; optional, so public models need none).",
        },
    },
}


@frozen(kw_only=True)
class VllmOptions:
    """The validated ``[backends.vllm]`` table with its defaults."""

    extra_args: tuple[str, ...] = ()
    enforce_eager: bool | None = None
    distributed_executor_backend: str = "mp"
    shm_size_gib: float | None = None
    k8s_namespace: str | None = None
    k8s_rdma_resource: str | None = None
    hf_token_secret: str = "hf-token"  # noqa: S105  (a Secret's name, not a token)


def parse_options(raw: Mapping[str, Any] | None) -> VllmOptions:
    """Structure the (already schema-validated) table."""
    raw = raw or {}
    return VllmOptions(
        extra_args=tuple(raw.get("extra_args", ())),
        enforce_eager=raw.get("enforce_eager"),
        distributed_executor_backend=raw.get("distributed_executor_backend", "mp"),
        shm_size_gib=raw.get("shm_size_gib"),
        k8s_namespace=raw.get("k8s_namespace"),
        k8s_rdma_resource=raw.get("k8s_rdma_resource"),
        hf_token_secret=raw.get("hf_token_secret", "hf-token"),
    )
