"""The SGLang backend's hook implementations (the ``deployc.backends`` entry point ``sglang``)."""

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
from deployc_sglang import BACKEND_NAME, ENGINE, ENGINE_VERSION, IMAGE, IMAGE_TAG
from deployc_sglang.options import OPTIONS_SCHEMA

if TYPE_CHECKING:
    from deployc.contract import GPU, Deployment, Layout, TargetFacts
    from deployc.contract.enginelog import EngineLog


@hookimpl
def deployc_backend_info() -> BackendInfo:
    """SGLang, pinned to 0.5.23 and its ``lmsysorg/sglang`` image (its ROCm build per Instinct family on AMD)."""
    from deployc_sglang.rocm import FAMILY_TAG, ROCM_IMAGE, rocm_image_tag  # noqa: PLC0415  (light start-up)

    return BackendInfo(
        name=BACKEND_NAME, engine=ENGINE, engine_version=ENGINE_VERSION, image=IMAGE, image_tag=IMAGE_TAG,
        summary="python -m sglang.launch_server in Docker plus the same settings as a --config YAML; radix cache "
                f"for shared prefixes; checked against SGLang {ENGINE_VERSION}'s real parser",
        gpu_vendors=("nvidia", "amd"), options_schema=OPTIONS_SCHEMA,
        vendor_images={"amd": VendorImage(image=ROCM_IMAGE, tag=rocm_image_tag(None),
                                          tag_by_gfx={gfx: rocm_image_tag(gfx) for gfx in FAMILY_TAG})},
        # SGLang keeps a node's data-parallel replicas of a pool inside one server (--dp-size: one router, one
        # port); 0.5.23 refuses --dp-size with --nnodes > 1 (validation_hook.check_server_args), so replicas on
        # other nodes are other servers. MoE with EP stays one server across nodes (--attn-dp-size).
        placement=PlacementPolicy(data_parallel="one_server_per_node", expert_parallel_one_server=True),
        # sglang/srt/distributed/utils.py get_pp_indices (0.5.23): "the last N partitions will have one extra
        # layer, where N = remainder", so the last stage holds the LM head and one more layer
        pp_layer_split="extra_last",
        strengths=(Strength(when="shared_prefixes", reason="SGLang's radix cache reuses partial prefixes across "
                            "branches and turns"),),
        scheduler=SchedulerPolicy(
            batching="prefill_first", kv_admission="prompt_and_decaying_output",
            preemption="fewest_output_recompute", max_prefill_tokens=16384,
            source=("SGLang 0.5.23 managers/scheduler.py get_next_batch_to_run (a prefill batch runs alone, "
                    "enable_mixed_chunk=False), mem_cache/prefill_budget.py (new_token_ratio reservation), "
                    "schedule_batch.py retract_decode (fewest output tokens first)")))


@hookimpl
def deployc_capability(backend: str, target: TargetFacts, weights_format: str, kv_cache_dtype: str) -> Capability:  # noqa: ARG001  (hook signature)
    """The kernel SGLang 0.5.23 uses for a precision on the target GPU, or why it cannot."""
    from deployc_sglang.capability import capability  # noqa: PLC0415  (keep `deployc backends` start-up light)

    return capability(target, weights_format, kv_cache_dtype)


@hookimpl
def deployc_runtime_overheads(backend: str, query: OverheadQuery) -> RuntimeOverheads:  # noqa: ARG001  (hook signature)
    """Activations, CUDA graphs (outside mem_fraction_static), NCCL slack, SGLang's own default fraction."""
    from deployc_sglang.overheads import runtime_overheads  # noqa: PLC0415

    return runtime_overheads(query)


@hookimpl
def deployc_layout_support(backend: str, target: TargetFacts, layout: Layout, gpus_per_node: int,  # noqa: ARG001  (hook signature)
                           nodes: int) -> Capability | None:
    """Layouts SGLang's one-server-per-pool placement can put on the nodes."""
    from deployc_sglang.layouts import layout_support  # noqa: PLC0415

    return layout_support(target, layout, gpus_per_node, nodes)


@hookimpl
def deployc_check_plan(backend: str, deployment: Deployment) -> Sequence[Diagnostic]:  # noqa: ARG001  (hook signature)
    """Memory-fraction sanity, placement, and every emitted argv / YAML against the pinned flag set."""
    from deployc_sglang.checks import check_plan  # noqa: PLC0415

    return check_plan(deployment)


@hookimpl
def deployc_emit(backend: str, deployment: Deployment) -> Emission:  # noqa: ARG001  (hook signature)
    """run.sh or node scripts + preflight, and sglang-<server>.yaml."""
    from deployc_sglang.emission import emit  # noqa: PLC0415

    return emit(deployment)


@hookimpl
def deployc_parse_engine_log(backend: str, text: str, gpu: GPU) -> EngineLog | None:  # noqa: ARG001  (hook signature)
    """The figures and settings an SGLang start-up log states (None when it is not one)."""
    from deployc_sglang.enginelog import parse_log  # noqa: PLC0415  (check-log only)

    return parse_log(text.splitlines(), gpu)
