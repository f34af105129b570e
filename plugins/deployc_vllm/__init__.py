"""deployc's vLLM backend: serve commands, container scripts and manifests for a pinned vLLM.

Registered under the ``deployc.backends`` entry-point group as ``vllm = deployc_vllm.plugin``,
exactly as a third-party backend would be.  Everything version-specific (the flag set, the
memory overheads, the kernel matrix) is pinned to :data:`ENGINE_VERSION`.
"""

from __future__ import annotations

BACKEND_NAME = "vllm"
ENGINE = "vLLM"
ENGINE_VERSION = "0.33.0"
IMAGE = "vllm/vllm-openai"
IMAGE_TAG = f"v{ENGINE_VERSION}"
ROCM_IMAGE = "vllm/vllm-openai-rocm"  # the ROCm build of the same release, for AMD Instinct GPUs
ROCM_IMAGE_TAG = f"v{ENGINE_VERSION}"
