"""The plugin API: the hooks a backend plugin implements.

These hooks, with the types of :mod:`deployc.contract`, are the contract third parties code
against (``CONTRACT_VERSION``).  A backend is a module registered under the ``deployc.backends``
entry-point group; it implements some of these hooks with the public marker
:data:`deployc.contract.hookimpl`.  Built-in backends use
exactly the same mechanism.

Every hook except :func:`deployc_backend_info` receives ``backend``, the backend name
being asked about; deployc routes each call to the plugin that registered that name,
so a plugin only sees its own names.  Hooks must be pure functions of their
arguments: no I/O, no global state (deployc builds must be deterministic).

Each hook is documented in ``docs/plugins.md`` (a test fails when one is not).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from deployc.catalog import GPU, CatalogModel
    from deployc.contract.backend import BackendInfo, Capability, Emission, OverheadQuery, RuntimeOverheads
    from deployc.contract.deployment import Deployment, Layout, TargetFacts
    from deployc.contract.enginelog import EngineLog
    from deployc.diagnostics import Diagnostic

hookspec = pluggy.HookspecMarker("deployc")


@hookspec
def deployc_backend_info() -> BackendInfo:
    """Describe the backend this plugin provides.

    :return: name (unique across installed plugins), engine and pinned version, container
        image and tag, supported GPU vendors, and the JSON Schema of its ``[backends.NAME]``
        options table.

    .. versionadded:: 0.1
    """
    raise NotImplementedError


@hookspec
def deployc_capability(
    backend: str, target: TargetFacts, weights_format: str, kv_cache_dtype: str
) -> Capability | None:
    """Say whether the pinned engine runs ``weights_format`` and ``kv_cache_dtype`` on the target's GPU.

    :param backend: the backend name being asked about.
    :param target: what the spec resolves to that a capability depends on (GPU, model architecture,
        nodes, the backend's ``[backends.NAME]`` options).
    :param weights_format: ``bf16``, ``fp16``, ``fp8``, ``int8``, ``awq``, ``gptq``, ``mxfp4`` or ``nvfp4``.
    :param kv_cache_dtype: ``bfloat16``, ``float16`` or ``fp8``.
    :return: a :class:`~deployc.contract.backend.Capability` (with the kernel used, or why not and the
        alternative); None when the plugin has no opinion (treated as supported).

    .. versionadded:: 0.1
    """
    raise NotImplementedError


@hookspec
def deployc_runtime_overheads(backend: str, query: OverheadQuery) -> RuntimeOverheads | None:
    """State the engine's memory use beside weights and KV cache for one candidate layout.

    Activation peak for the token budget, CUDA-graph memory and whether it is inside the
    engine's memory budget, non-torch memory (NCCL buffers, larger under TP > 1), KV block
    size, and what the engine's memory fraction is a fraction of.  Called many times during
    the parallelism search: keep it cheap.

    :param backend: the backend name being asked about.
    :param query: model dimensions, GPU, TP/PP, token budget, max sequences, graphs on/off, and the
        engine version to answer for (None: the pinned one; ``deployc check-log`` passes the version a
        log names, and a backend that knows that version's accounting uses it).

    .. versionadded:: 0.1
    """
    raise NotImplementedError


@hookspec
def deployc_layout_support(
    backend: str, target: TargetFacts, layout: Layout, gpus_per_node: int, nodes: int
) -> Capability | None:
    """Say whether the backend's emitter can deploy one candidate parallel layout.

    Asked for every layout the planner considers, before it chooses one, so a plan the
    backend would refuse to emit is never offered: the planner skips a refused layout (the
    reason is shown among the rejected layouts) and, when the backend refuses every layout,
    ``backend = "auto"`` moves to the next backend with the reason in the backend decision
    and a forced backend is refused with exit code 1.  Called many times: keep it cheap.

    :param backend: the backend name being asked about.
    :param target: GPU, model architecture, nodes and the backend's ``[backends.NAME]`` options.
    :param layout: TP, PP, DP and EP of one pool.
    :param gpus_per_node: GPUs the pool has on each node.
    :param nodes: nodes the pool spans.
    :return: a :class:`~deployc.contract.backend.Capability` whose ``reason`` says why not (and
        ``alternative`` what would work); None when the plugin has no opinion (supported).

    .. versionadded:: 0.1
    """
    raise NotImplementedError


@hookspec
def deployc_check_plan(backend: str, deployment: Deployment) -> Sequence[Diagnostic]:
    """Check a finished plan against the pinned engine's constraints (cross-flag invariants...).

    :param backend: the backend name being asked about.
    :param deployment: the deployment the backend would emit (pools, servers placed, knobs, decisions).
    :return: diagnostics; errors stop the build with exit code 1.

    .. versionadded:: 0.1
    """
    raise NotImplementedError


@hookspec
def deployc_emit(backend: str, deployment: Deployment) -> Emission:
    """Translate the deployment into the engine's artifacts.

    Each emitted flag comes with its reason (:class:`~deployc.contract.backend.FlagReason`) and the
    plan Decision behind it; backend-specific choices are returned as Decisions of their own.
    Artifact paths are relative to the output directory (``run.sh``, ``k8s/deployment.yaml``);
    an absolute path or one with ``..`` is a plugin error.

    :param backend: the backend name being asked about.
    :param deployment: the deployment to emit: pools with typed knobs and their Decisions, servers placed
        on nodes with GPU ids, ports and load, the image, the backend's options.

    .. versionadded:: 0.1
    """
    raise NotImplementedError


@hookspec
def deployc_parse_engine_log(backend: str, text: str, gpu: GPU) -> EngineLog | None:
    """Read a start-up log of the backend's engine, for ``deployc check-log``.

    Every backend that implements this hook is offered the log; the reading that states the
    most facts names the engine that wrote it.  A backend reads only its own engine's format.

    :param backend: the backend name being asked about.
    :param text: the whole log, as written by the engine (lines in order; later lines win).
    :param gpu: the spec's GPU, for the engine's defaults there (settings a log leaves out).
    :return: an :class:`~deployc.contract.enginelog.EngineLog` with the figures and settings the log states
        (and ``default_max_num_seqs`` / ``default_max_num_batched_tokens``, the engine's own defaults on
        ``gpu``, where known); None when no line is this engine's.

    .. versionadded:: 0.2
    """
    raise NotImplementedError


@hookspec
def deployc_catalog_gpus() -> Sequence[GPU]:
    """Contribute GPUs to the catalog (e.g. a vendor's accelerator); names must not clash.

    .. versionadded:: 0.1
    """
    raise NotImplementedError


@hookspec
def deployc_catalog_models() -> Sequence[CatalogModel]:
    """Contribute models to the catalog; names and aliases must not clash.

    .. versionadded:: 0.1
    """
    raise NotImplementedError
