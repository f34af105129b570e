"""The vLLM backend's hook implementations (the ``deployc.backends`` entry point ``vllm``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from deployc.contract import (
    BackendInfo,
    Capability,
    Diagnostic,
    Emission,
    OverheadQuery,
    PlacementPolicy,
    RuntimeOverheads,
    SchedulerPolicy,
    Strength,
    VendorImage,
    hookimpl,
)
from deployc_vllm import BACKEND_NAME, ENGINE, ENGINE_VERSION, IMAGE, IMAGE_TAG, ROCM_IMAGE, ROCM_IMAGE_TAG
from deployc_vllm.options import OPTIONS_SCHEMA

if TYPE_CHECKING:
    from deployc.contract import GPU, Deployment, Layout, TargetFacts
    from deployc.contract.enginelog import EngineLog


@hookimpl
def deployc_backend_info() -> BackendInfo:
    """vLLM, pinned to 0.33.0 and its ``vllm/vllm-openai`` image (``vllm/vllm-openai-rocm`` on AMD GPUs)."""
    return BackendInfo(
        name=BACKEND_NAME, engine=ENGINE, engine_version=ENGINE_VERSION, image=IMAGE, image_tag=IMAGE_TAG,
        summary="vllm serve in Docker, Compose or Kubernetes; native multi-node; flags checked against the real "
                f"vLLM {ENGINE_VERSION} parser",
        gpu_vendors=("nvidia", "amd"), options_schema=OPTIONS_SCHEMA,
        vendor_images={"amd": VendorImage(image=ROCM_IMAGE, tag=ROCM_IMAGE_TAG)},
        # A pool's replicas on one host are one engine with --data-parallel-size (its API server spreads the
        # requests behind one port); with expert parallelism all replicas are one engine, across nodes if need be.
        placement=PlacementPolicy(data_parallel="one_server_per_node", expert_parallel_one_server=True),
        # vllm/distributed/utils.py get_pp_indices (0.33.0): the remainder goes one layer each to partitions[-2],
        # partitions[-3]...; the last stage (LM head) never gets an extra layer
        pp_layer_split="extra_before_last",
        strengths=(Strength(when="general", reason="no compile step, fast model iteration, widest model and "
                            "hardware support"),),
        scheduler=SchedulerPolicy(
            batching="mixed", kv_admission="prompt", preemption="newest_recompute", resume_from_cache=True,
            source=("vLLM 0.33.0 v1/core/sched/scheduler.py Scheduler.schedule: running requests first, then FCFS "
                    "admissions while the whole prompt fits (scheduler_reserve_full_isl); preempts the newest "
                    "request and recomputes what of it the prefix cache no longer holds (v1/core/block_pool.py "
                    "free_blocks: freed full blocks are evicted last)")))


@hookimpl
def deployc_capability(backend: str, target: TargetFacts, weights_format: str, kv_cache_dtype: str) -> Capability:  # noqa: ARG001  (hook signature)
    """The kernel vLLM 0.33.0 uses for a precision on the target GPU, or why it cannot."""
    from deployc_vllm.capability import capability  # noqa: PLC0415  (keep `deployc backends` start-up light)

    return capability(target, weights_format, kv_cache_dtype)


@hookimpl
def deployc_runtime_overheads(backend: str, query: OverheadQuery) -> RuntimeOverheads:  # noqa: ARG001  (hook signature)
    """Activation peak, CUDA graphs (inside the budget at 0.33.0), non-torch memory, block size."""
    from deployc_vllm.overheads import profile_for, runtime_overheads  # noqa: PLC0415

    return runtime_overheads(query, profile_for(query.engine_version))


@hookimpl
def deployc_layout_support(backend: str, target: TargetFacts, layout: Layout, gpus_per_node: int,  # noqa: ARG001  (hook signature)
                           nodes: int) -> Capability | None:
    """Layouts the vLLM emitter can place on the nodes and launch (docker, node scripts and Kubernetes)."""
    from deployc_vllm.layouts import layout_support  # noqa: PLC0415

    return layout_support(target, layout, gpus_per_node, nodes)


@hookimpl
def deployc_check_plan(backend: str, deployment: Deployment) -> Sequence[Diagnostic]:  # noqa: ARG001  (hook signature)
    """Cross-flag invariants and every emitted argv against the pinned flag set."""
    from deployc_vllm.checks import check_plan  # noqa: PLC0415

    return check_plan(deployment)


@hookimpl
def deployc_emit(backend: str, deployment: Deployment) -> Emission:  # noqa: ARG001  (hook signature)
    """run.sh or node scripts + preflight, compose.yaml, k8s/, bench.sh, monitoring."""
    from deployc_vllm.emission import emit  # noqa: PLC0415

    return emit(deployment)


@hookimpl
def deployc_parse_engine_log(backend: str, text: str, gpu: GPU) -> EngineLog | None:  # noqa: ARG001  (hook signature)
    """The figures and settings a vLLM start-up log states (None when it is not one)."""
    from deployc_vllm.enginelog import parse_log  # noqa: PLC0415  (check-log only)

    return parse_log(text.splitlines(), gpu)
