"""[plan] pins checked against the model, the GPUs and the backends: each error at its key and line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from deployc.api import validate
from deployc.plugins import default_registry
from tests.conftest import MINIMAL_SPEC

SPEC_4_GPUS = MINIMAL_SPEC.replace('gpu = "H100 SXM"', 'gpu = "H100 SXM"\ngpus_per_node = 4')
PLAN_LINE = len(SPEC_4_GPUS.splitlines()) + 3  # after a blank line and the [plan] header
INSTALLED = default_registry().names()


def _errors(write_spec: Callable[[str], Path], pins: str, base: str = SPEC_4_GPUS) -> list[str]:
    return [d.format_text() for d in validate(write_spec(f"{base}\n[plan]\n{pins}\n"), display_name="spec.toml")]


def test_valid_pins_pass(write_spec):  # type: ignore[no-untyped-def]
    pins = ('tp = 2\npp = 1\ndp = 2\nquantization = "fp8"\nkv_cache_dtype = "fp8"\nmax_num_seqs = 32\n'
            'max_num_batched_tokens = 4096\nmemory_fraction = 0.85\nmax_model_len = 8192')
    assert _errors(write_spec, pins) == []


def test_tp_must_divide_the_heads(write_spec):  # type: ignore[no-untyped-def]
    assert _errors(write_spec, "tp = 3") == [
        f"spec.toml:{PLAN_LINE}: error: plan.tp: 32 attention heads are not divisible by TP3 [DPC212]\n"
        "  hint: TP sizes this model takes on 4 GPUs: 1, 2, 4",
        f"spec.toml:{PLAN_LINE}: error: plan.tp: 8 KV heads are not divisible by TP3 [DPC212]\n"
        "  hint: TP sizes this model takes on 4 GPUs: 1, 2, 4",
    ]


def test_layout_above_the_gpus(write_spec):  # type: ignore[no-untyped-def]
    assert _errors(write_spec, "tp = 2\ndp = 4") == [
        f"spec.toml:{PLAN_LINE + 1}: error: plan.dp: tp 2 × dp 4 needs 8 GPUs, but the spec gives 4 (4 per node × "
        "1 node) [DPC213]\n  hint: lower the pins, or give more GPUs (hardware.gpus_per_node, hardware.nodes)",
    ]


def test_tp_across_nodes(write_spec):  # type: ignore[no-untyped-def]
    base = SPEC_4_GPUS.replace("gpus_per_node = 4", 'gpus_per_node = 4\nnodes = 2\nnetwork = "ib-ndr"')
    line = len(base.splitlines()) + 3
    assert _errors(write_spec, "tp = 8", base) == [
        f"spec.toml:{line}: error: plan.tp: TP8 would span 2 nodes: its 2 all-reduces per layer would cross the "
        "network; keep TP within the 4 GPUs of a node [DPC213]\n"
        "  hint: use pipeline parallelism (pp) across nodes, TP inside each",
    ]


def test_pipeline_and_experts(write_spec):  # type: ignore[no-untyped-def]
    assert _errors(write_spec, "ep = 2") == [
        f"spec.toml:{PLAN_LINE}: error: plan.ep: EP2 needs a mixture-of-experts model; Llama-3.1-8B is dense "
        "[DPC212]\n  hint: drop ep (or pin ep = 1)",
    ]
    base = SPEC_4_GPUS.replace("gpus_per_node = 4", "gpus_per_node = 64")
    assert _errors(write_spec, "pp = 40", base) == [
        f"spec.toml:{PLAN_LINE}: error: plan.pp: 32 layers are fewer than the 40 pipeline stages [DPC212]\n"
        "  hint: pp ≤ 32",
    ]


def test_quantization_the_checkpoint_or_gpu_cannot_serve(write_spec):  # type: ignore[no-untyped-def]
    assert _errors(write_spec, 'quantization = "nvfp4"') == [
        f"spec.toml:{PLAN_LINE}: error: plan.quantization: nvfp4 weights need a checkpoint quantized as nvfp4; "
        "Llama-3.1-8B is unquantized [DPC214]\n  hint: point model.id (or model.config) at a checkpoint quantized "
        "as nvfp4, or pin fp8 (quantized at load)",
        f"spec.toml:{PLAN_LINE}: error: plan.quantization: NVFP4 needs Blackwell; H100 SXM is hopper [DPC214]\n"
        '  hint: pin "fp8" or a 4-bit AWQ checkpoint',
    ]


@pytest.mark.skipif("sglang" not in INSTALLED, reason="needs the SGLang backend")
def test_precision_the_backend_cannot_run(write_spec):  # type: ignore[no-untyped-def]
    base = MINIMAL_SPEC.replace('gpu = "H100 SXM"', 'gpu = "T4"\ngpus_per_node = 2')
    line = len(base.splitlines()) + 3
    assert _errors(write_spec, 'quantization = "fp8"\nbackend = "sglang"', base) == [
        f"spec.toml:{line}: error: plan.quantization: the sglang backend cannot run fp8 weights on T4 [DPC214]\n"
        "  hint: sglang: SGLang 0.5.23's prebuilt kernels (sgl-kernel) have no sm_75 images for some ops every model "
        "runs (sgl-project/sglang#38515, #24224); T4 has compute capability 7.5; use vllm (runs AWQ and GPTQ on "
        "Turing through Marlin)",
    ]
    # vLLM runs FP8 weights on Turing (weight-only Marlin), so with every backend allowed the pin is valid.
    assert _errors(write_spec, 'quantization = "fp8"', base) == []


def test_context_and_token_budget(write_spec):  # type: ignore[no-untyped-def]
    assert _errors(write_spec, "max_model_len = 200000") == [
        f"spec.toml:{PLAN_LINE}: error: plan.max_model_len: 200,000 tokens exceed the model's limit of 131,072 "
        "[DPC215]\n  hint: max_model_len ≤ 131072 (RoPE scaling beyond the config is not planned)",
    ]
    assert _errors(write_spec, "max_model_len = 2048") == [  # a warning: the longest requests will be refused
        f"spec.toml:{PLAN_LINE}: warning: plan.max_model_len: the longest request needs 4,800 tokens (prompt + "
        "output) but max_model_len is 2,048: the engine refuses longer requests [DPC215]\n"
        "  hint: max_model_len ≥ 4800, or accept that the longest requests fail",
    ]
    assert _errors(write_spec, "max_num_seqs = 64\nmax_num_batched_tokens = 32") == [
        f"spec.toml:{PLAN_LINE + 1}: error: plan.max_num_batched_tokens: max_num_batched_tokens 32 is below "
        "max_num_seqs 64: each step needs a token per running sequence [DPC215]\n"
        "  hint: max_num_batched_tokens ≥ 64",
    ]


@pytest.mark.parametrize("value", ["0", "1.0", "1.5", "-0.2"])
def test_memory_fraction_inside_zero_one(write_spec, value):  # type: ignore[no-untyped-def]
    (error,) = _errors(write_spec, f"memory_fraction = {value}")
    bound = "greater than 0" if float(value) <= 0 else "less than 1"
    assert error.startswith(f"spec.toml:{PLAN_LINE}: error: plan.memory_fraction: {value} is out of range: must be "
                            f"{bound} [DPC013]")


def test_backend_not_installed(write_spec):  # type: ignore[no-untyped-def]
    assert _errors(write_spec, 'backend = "tgi"') == [
        f"spec.toml:{PLAN_LINE}: error: plan.backend: no installed backend named 'tgi' [DPC105]\n"
        f"  hint: installed: {', '.join(INSTALLED)} (see `deployc backends`)",
    ]


def test_a_pin_contradicting_the_same_setting_elsewhere(write_spec):  # type: ignore[no-untyped-def]
    base = SPEC_4_GPUS.replace("[model]\n", '[model]\nquantization = "none"\nmax_context_tokens = 8192\n')
    line = len(base.splitlines()) + 3
    assert _errors(write_spec, 'quantization = "fp8"\nmax_model_len = 4096', base) == [
        f"spec.toml:{line}: error: plan.quantization: [plan].quantization = 'fp8' but model.quantization = 'none' "
        "[DPC216]\n  hint: give the weights format once: drop one of the two",
        f"spec.toml:{line + 1}: error: plan.max_model_len: [plan].max_model_len = 4096 but "
        "model.max_context_tokens = 8192 [DPC216]\n  hint: give the context length once: drop one of the two",
    ]
    # The same value twice is not a contradiction ("none" is served as the activation dtype, bf16 here).
    assert _errors(write_spec, 'quantization = "bf16"\nmax_model_len = 8192', base) == []
