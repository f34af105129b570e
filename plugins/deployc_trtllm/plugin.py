"""The TensorRT-LLM backend's hook implementations (the ``deployc.backends`` entry point ``trtllm``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from deployc.contract import (
    BackendInfo,
    Capability,
    Diagnostic,
    Emission,
    EngineBuild,
    OverheadQuery,
    PlacementPolicy,
    RuntimeOverheads,
    SchedulerPolicy,
    Strength,
    hookimpl,
)
from deployc_trtllm import BACKEND_NAME, ENGINE, ENGINE_VERSION, IMAGE, IMAGE_TAG
from deployc_trtllm.options import OPTIONS_SCHEMA

if TYPE_CHECKING:
    from deployc.contract import Deployment, Layout, TargetFacts


@hookimpl
def deployc_backend_info() -> BackendInfo:
    """TensorRT-LLM, pinned to 1.2.1 and its NGC release image."""
    return BackendInfo(
        name=BACKEND_NAME, engine=ENGINE, engine_version=ENGINE_VERSION, image=IMAGE, image_tag=IMAGE_TAG,
        summary="trtllm-serve --backend pytorch with an LLM-API options YAML (no build step; multi-node through "
                "Slurm/MPI), or the legacy quantize.py + trtllm-build engine flow; NVIDIA Ampere+ only",
        gpu_vendors=("nvidia",), options_schema=OPTIONS_SCHEMA,
        # A pool's replicas are separate servers (own GPUs, own port), except with attention data parallelism
        # (MoE with EP), where the DP groups are one trtllm-serve over TP × DP GPUs.
        placement=PlacementPolicy(data_parallel="servers", expert_parallel_one_server=True),
        # tensorrt_llm/mapping.py Mapping.pp_layers (1.2): torch.tensor_split(torch.arange(num_layers), pp_size),
        # "if num_layers % pp_size = n != 0, first n ranks get one extra layer"
        pp_layer_split="extra_first",
        vendor_lock_in=True,
        # "The finishing move" of the articles' framework (seed 003): the highest throughput once the model is stable.
        strengths=(Strength(when="stable_high_volume", reason="TensorRT-LLM's kernels give the highest throughput, "
                            "and its warm-up (or engine build) is paid rarely"),),
        engine_build=EngineBuild(option="flow", value="engine", change_cost="each TensorRT-LLM engine build takes "
                                 "10-30 minutes per configuration and is tied to one GPU architecture",
                                 per_model="TensorRT-LLM needs an engine per model"),
        model_change_cost=("the PyTorch flow needs no engine build, but each change still costs its warm-up "
                           "(autotuning, CUDA graph capture)"),
        scheduler=SchedulerPolicy(
            batching="mixed", kv_admission="prompt_and_max_output", preemption="never",
            source=("TensorRT-LLM 1.2 capacity scheduler GUARANTEED_NO_EVICT (the default): admits a request only "
                    "when its blocks to completion (prompt + max_tokens) fit, never evicts; in-flight batching mixes "
                    "context and generation")))


@hookimpl
def deployc_capability(backend: str, target: TargetFacts, weights_format: str, kv_cache_dtype: str) -> Capability:  # noqa: ARG001  (hook signature)
    """What TensorRT-LLM 1.2 builds engines for for a precision on the target GPU, or why it cannot."""
    from deployc_trtllm.capability import capability  # noqa: PLC0415  (keep `deployc backends` start-up light)

    return capability(target, weights_format, kv_cache_dtype)


@hookimpl
def deployc_runtime_overheads(backend: str, query: OverheadQuery) -> RuntimeOverheads:  # noqa: ARG001  (hook signature)
    """Runtime buffers sized by the build limits; KV as a fraction of free memory after load."""
    from deployc_trtllm.overheads import runtime_overheads  # noqa: PLC0415

    return runtime_overheads(query)


@hookimpl
def deployc_layout_support(backend: str, target: TargetFacts, layout: Layout, gpus_per_node: int,  # noqa: ARG001  (hook signature)
                           nodes: int) -> Capability | None:
    """Layouts the TensorRT-LLM placement can put on the nodes (the engine flow: one node only)."""
    from deployc_trtllm.layouts import layout_support  # noqa: PLC0415

    return layout_support(target, layout, gpus_per_node, nodes)


@hookimpl
def deployc_check_plan(backend: str, deployment: Deployment) -> Sequence[Diagnostic]:  # noqa: ARG001  (hook signature)
    """Placement, limits, every flag and YAML key against the manifests."""
    from deployc_trtllm.checks import check_plan  # noqa: PLC0415

    return check_plan(deployment)


@hookimpl
def deployc_emit(backend: str, deployment: Deployment) -> Emission:  # noqa: ARG001  (hook signature)
    """run.sh or Slurm scripts, options YAML, compose.yaml, k8s/, bench.sh, monitoring (or the engine flow)."""
    from deployc_trtllm.emission import emit  # noqa: PLC0415

    return emit(deployment)
