"""Pipeline stages hold the layers each backend's engine gives them (BackendInfo.pp_layer_split)."""

from __future__ import annotations

import ast
import logging
import os
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from deployc.api import plan
from deployc.catalog.models import load_models
from deployc.planner.formats import weight_format
from deployc.planner.kv import kv_bytes_per_token_per_gpu
from deployc.planner.parallel import pp_layer_split
from deployc.planner.plan import Plan
from deployc.planner.weights import pp_stage_layers, weights_per_gpu
from tests.conftest import REPO
from tests.engine_parsers import require_or_skip

CATALOG = {m.name: m.arch for m in load_models()}
SHAPES = [(layers, pp) for layers in range(1, 131) for pp in range(1, 9) if pp <= layers]


def _engine_function(engine: str, relative: str, name: str, namespace: dict[str, Any]) -> Callable[..., Any]:
    """``name`` as defined in the pinned engine's installed source (its body run here, with stubs for globals)."""
    venv = require_or_skip(engine).parent.parent
    source = next(venv.glob(f"lib/python*/site-packages/{relative}"))
    tree = ast.parse(source.read_text())
    node = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)
    node.returns = None  # annotations name the module's imports
    for arg in node.args.args:
        arg.annotation = None
    code = compile(ast.Module(body=[node], type_ignores=[]), str(source), "exec")
    exec(code, namespace)  # noqa: S102  (the pinned engine's own function, from its installed wheel)
    return namespace[name]  # type: ignore[no-any-return]


def _from_indices(get_pp_indices: Callable[[int, int, int], tuple[int, int]], layers: int, pp: int) -> tuple[int, ...]:
    return tuple(end - start for start, end in (get_pp_indices(layers, rank, pp) for rank in range(pp)))


def test_extra_before_last_is_vllms_get_pp_indices() -> None:
    stubs = {"envs": types.SimpleNamespace(VLLM_PP_LAYER_PARTITION=None), "logger": logging.getLogger("vllm-stub")}
    vllm = _engine_function("vllm", "vllm/distributed/utils.py", "get_pp_indices", stubs)
    for layers, pp in SHAPES:
        assert pp_stage_layers(layers, pp, "extra_before_last") == _from_indices(vllm, layers, pp), (layers, pp)


def test_extra_last_is_sglangs_get_pp_indices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SGLANG_PP_LAYER_PARTITION", raising=False)
    sglang = _engine_function("sglang", "sglang/srt/distributed/utils.py", "get_pp_indices", {"os": os})
    for layers, pp in SHAPES:
        assert pp_stage_layers(layers, pp, "extra_last") == _from_indices(sglang, layers, pp), (layers, pp)


def _tensor_split_sizes(layers: int, parts: int) -> tuple[int, ...]:
    """``torch.tensor_split(torch.arange(layers), parts)`` section sizes, from torch's documentation: "the first
    int(input.size(dim) % n) sections will have size int(input.size(dim) / n) + 1, and the rest ... int(... / n)"."""
    return tuple(layers // parts + (1 if i < layers % parts else 0) for i in range(parts))


def test_extra_first_is_tensorrt_llms_tensor_split() -> None:
    # tensorrt_llm/mapping.py Mapping.pp_layers (1.2): torch.tensor_split(torch.arange(num_layers), pp_size)
    for layers, pp in SHAPES:
        assert pp_stage_layers(layers, pp, "extra_first") == _tensor_split_sizes(layers, pp), (layers, pp)
    assert pp_layer_split(61, 4, "extra_first")[0] == 16 and pp_layer_split(61, 4, "extra_first")[-1] == 15


def test_sglang_rule_puts_the_extra_layer_beside_the_lm_head() -> None:
    r1, fp8 = CATALOG["DeepSeek-R1"], weight_format("fp8")
    assert r1.num_layers % 2 == 1
    sglang = weights_per_gpu(r1, fp8, tp=4, pp=2, split="extra_last")
    vllm = weights_per_gpu(r1, fp8, tp=4, pp=2, split="extra_before_last")
    assert (sglang.stage, sglang.stage_layers) == (1, (r1.num_layers // 2, r1.num_layers))
    assert sglang.lm_head_bytes > 0 and sglang.embedding_bytes == 0
    # vLLM's heaviest stage is the last too (the first holds R1's three dense layers), one layer lighter
    assert (vllm.stage, vllm.stage_layers) == (1, (r1.num_layers // 2 + 1, r1.num_layers))
    assert sglang.total_bytes > vllm.total_bytes
    # the layer counts alone set the KV per GPU: the largest stage is ceil(L / pp) under every rule
    assert {kv_bytes_per_token_per_gpu(r1, 1, tp=4, pp=2, split=rule)
            for rule in ("extra_before_last", "extra_first", "extra_last")} == {
        kv_bytes_per_token_per_gpu(r1, 1, tp=4, pp=1) * (r1.num_layers // 2 + 1) // r1.num_layers}


@pytest.fixture(scope="module")
def pinned_pp2(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Plan]:
    """DeepSeek-R1 (61 layers) pinned to TP4×PP2 on 8 × H200, planned by each backend."""
    spec = tmp_path_factory.mktemp("pp2") / "deepseek-r1-pp2.toml"
    text = (REPO / "samples" / "deepseek-r1-h200x8.toml").read_text().replace("#:schema ../schemas/deployc.schema.json",
                                                                            "")
    spec.write_text(text + "\n[plan]\ntp = 4\npp = 2\ndp = 1\n")
    return {backend: plan(Path(spec), backend, display_name=spec.name)[0] for backend in ("vllm", "sglang", "trtllm")}


def _reason(p: Plan) -> str:
    decision = p.decision("pp_layer_split")
    assert decision is not None
    return decision.reason


def test_sglang_plans_the_last_stage_with_ceil_layers_and_the_lm_head(pinned_pp2: dict[str, Plan]) -> None:
    sglang, vllm = pinned_pp2["sglang"].primary, pinned_pp2["vllm"].primary
    layers = pinned_pp2["sglang"].target.model.num_layers
    assert sglang.layout.pp == vllm.layout.pp == 2
    assert sglang.pp_layer_split == (layers // 2, layers - layers // 2)
    assert vllm.pp_layer_split == (layers - layers // 2, layers // 2)
    expected = weights_per_gpu(pinned_pp2["sglang"].target.model, weight_format(sglang.knobs.weights_format),
                               tp=4, pp=2, split="extra_last").total_bytes
    assert sglang.memory.per_gpu.weights_bytes == expected > vllm.memory.per_gpu.weights_bytes
    assert _reason(pinned_pp2["sglang"]) == ("layers per pipeline stage as the engine splits them: 30 layers each, "
                                             "the extra layers one each to the last stages")


def test_tensorrt_llm_reports_the_extra_layer_on_the_first_stage(pinned_pp2: dict[str, Plan]) -> None:
    trt = pinned_pp2["trtllm"]
    layers = trt.target.model.num_layers
    assert trt.primary.pp_layer_split == (layers - layers // 2, layers // 2)
    assert _reason(trt) == ("layers per pipeline stage as the engine splits them: 30 layers each, the extra layers "
                            "one each to the first stages")
    assert _reason(pinned_pp2["vllm"]) == ("layers per pipeline stage as the engine splits them: 30 layers each, the "
                                           "extra layers one each to the stages before the last, from the "
                                           "second-to-last back")
