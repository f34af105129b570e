"""deployc's TensorRT-LLM backend: a quantize/build script for the engine, and ``trtllm-serve`` to serve it.

Registered under the ``deployc.backends`` entry-point group as ``trtllm = deployc_trtllm.plugin``.
Everything version-specific (flags, YAML keys, the kernel matrix) is pinned to
:data:`ENGINE_VERSION` and checked against the manifests in ``data/``.
"""

from __future__ import annotations

BACKEND_NAME = "trtllm"
ENGINE = "TensorRT-LLM"
ENGINE_VERSION = "1.2.1"
IMAGE = "nvcr.io/nvidia/tensorrt-llm/release"
IMAGE_TAG = ENGINE_VERSION
