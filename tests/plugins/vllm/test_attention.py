"""The attention backend the vLLM plan names is the one vLLM 0.33.0 selects (sources in deployc_vllm/attention.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import tomli_w

from deployc.api import plan
from deployc.catalog import resolve_gpu
from deployc.contract import AttentionFacts
from deployc.planner.plan import Plan
from deployc_vllm.attention import forced_problems, rocm_softcap_backend, select
from deployc_vllm.capability import kv_capability
from deployc_vllm.checks import check_plan
from deployc_vllm.command import serve_command
from deployc_vllm.options import parse_options
from tests.contract_helpers import deploy
from tests.plugins.vllm.plans import spec_dict

LLAMA = AttentionFacts(head_dim=128)
GEMMA2 = AttentionFacts(head_dim=256, sliding_window=True, logit_softcap=50.0, final_logit_softcap=30.0)
DEEPSEEK = AttentionFacts(head_dim=192, mla=True)
GPT_OSS = AttentionFacts(head_dim=64, sinks=True, sliding_window=True)


def _cc(gpu: str) -> tuple[int, int]:
    cc = resolve_gpu(gpu).compute_capability
    assert cc is not None
    return (cc[0], cc[1])


@pytest.mark.parametrize(("gpu", "kv", "model", "kernel"), [
    # FP8 KV on Ada: FLASH_ATTN refuses it (FA3 is Hopper-only; fa_utils.flash_attn_supports_kv_cache_dtype), so
    # vLLM falls through to FlashInfer; the plan said "FlashAttention 3" here
    ("L40S", "fp8", LLAMA, "FLASHINFER, FP8 KV cache"),
    ("NVIDIA L4", "fp8", LLAMA, "FLASHINFER, FP8 KV cache"),
    ("RTX 4090", "fp8", LLAMA, "FLASHINFER, FP8 KV cache"),
    ("L40S", "bfloat16", LLAMA, "FLASH_ATTN (FlashAttention 2)"),
    # Turing: no FlashAttention (8.0), FlashInfer's floor raised to 8.0: Triton attention; the plan said FA2
    ("Tesla T4", "float16", LLAMA, "TRITON_ATTN"),
    ("Tesla T4", "float16", GEMMA2, "TRITON_ATTN, attention logits soft-capped at 50 inside the kernel"),
    ("A100 80GB SXM", "bfloat16", LLAMA, "FLASH_ATTN (FlashAttention 2)"),
    ("A100 80GB SXM", "fp8", LLAMA, "FLASHINFER, FP8 KV cache"),
    ("H100 SXM", "bfloat16", LLAMA, "FLASH_ATTN (FlashAttention 3)"),
    ("H100 SXM", "fp8", LLAMA, "FLASH_ATTN (FlashAttention 3), FP8 KV cache"),
    ("H100 SXM", "bfloat16", GEMMA2,
     "FLASH_ATTN (FlashAttention 3), attention logits soft-capped at 50 inside the kernel"),
    ("H100 SXM", "fp8", DEEPSEEK, "FLASHMLA, FP8 KV cache"),
    ("H100 SXM", "bfloat16", DEEPSEEK, "FLASH_ATTN_MLA"),
    ("A100 80GB SXM", "bfloat16", DEEPSEEK, "TRITON_MLA"),
    ("A100 80GB SXM", "bfloat16", GPT_OSS, "TRITON_ATTN"),
    ("B200", "bfloat16", LLAMA, "FLASHINFER"),
    ("B200", "bfloat16", DEEPSEEK, "FLASHINFER_MLA"),
    ("RTX PRO 6000 Blackwell", "bfloat16", LLAMA, "FLASH_ATTN (FlashAttention 2)"),
    ("RTX PRO 6000 Blackwell", "bfloat16", GPT_OSS, "FLASHINFER"),
])
def test_the_named_backend_is_the_one_vllm_selects(gpu: str, kv: str, model: AttentionFacts, kernel: str) -> None:
    verdict = kv_capability(_cc(gpu), kv, model)
    assert verdict.supported
    assert verdict.kernel == kernel


def test_an_fp8_kv_cache_on_turing_is_refused_with_every_backends_reason() -> None:
    verdict = kv_capability(_cc("Tesla T4"), "fp8", LLAMA)
    assert not verdict.supported and verdict.alternative == "float16"
    assert verdict.reason == (
        "on compute capability 7.5 no attention backend of vLLM 0.33.0 runs an FP8 KV cache: FLASH_ATTN: "
        "FlashAttention needs compute capability 8.0 (flash_attn.py supports_compute_capability); FLASHINFER: "
        "FlashInfer is selected from compute capability 8.0 to 12.1 (flashinfer.py: broken on Turing); TRITON_ATTN: "
        "Triton attention has no e4m3 FP8 before compute capability 8.9 (triton_attn.py); FLEX_ATTENTION: "
        "FlexAttention has no FP8 KV cache")


def test_a_forced_backend_that_cannot_run_is_refused_with_the_selected_one_as_the_fix() -> None:
    assert forced_problems(_cc("Tesla T4"), "float16", LLAMA, ["FLASH_ATTN"]) == [(
        "--attention-backend FLASH_ATTN cannot run on compute capability 7.5 with a float16 KV cache for this model "
        "(FlashAttention needs compute capability 8.0 (flash_attn.py supports_compute_capability)): vLLM 0.33.0 "
        "stops at start-up", "drop it: vLLM 0.33.0 selects TRITON_ATTN for this GPU, KV cache and model")]
    assert forced_problems(_cc("L40S"), "bfloat16", GEMMA2, ["FLEX_ATTENTION"]) == [(
        "--attention-backend FLEX_ATTENTION cannot run on compute capability 8.9 with a bfloat16 KV cache for this "
        "model (FlexAttention does not support logits soft cap (flex_attention.py)): vLLM 0.33.0 stops at start-up",
        "drop it: vLLM 0.33.0 selects FLASH_ATTN (FlashAttention 2) for this GPU, KV cache and model")]
    assert forced_problems(_cc("L40S"), "bfloat16", GEMMA2, ["TRITON_ATTN", "CPU_ATTN"]) == []


def test_select_walks_vllms_priority_order() -> None:
    # head size 96 is not one of FlashInfer's (64, 128, 256, 512): on Blackwell FLASH_ATTN comes next, with FA4
    # (head sizes up to 128 there); 160 is beyond FA4's Blackwell limit and not its head-256 kernel: FA2
    choice = select((10, 0), "bfloat16", AttentionFacts(head_dim=96))
    assert choice is not None and choice.label == "FLASH_ATTN (FlashAttention 4)"
    choice = select((10, 0), "bfloat16", AttentionFacts(head_dim=160))
    assert choice is not None and choice.label == "FLASH_ATTN (FlashAttention 2)"
    # Gemma 2's head-256 soft-capped attention on Hopper with an FP8 KV cache stays on FA3 (FA3 takes softcap)
    choice = select((9, 0), "fp8", GEMMA2)
    assert choice is not None and choice.label == "FLASH_ATTN (FlashAttention 3)"


def _plan(tmp_path: Path, gpu: str, model: str = "google/gemma-2-9b-it", **changes: Any) -> Plan:
    path = tmp_path / "s.toml"
    path.write_text(tomli_w.dumps(spec_dict(model={"id": model}, hardware={"gpu": gpu, "gpus_per_node": 1},
                                            **changes)))
    planned, _ = plan(path, "vllm", display_name="s.toml")
    return planned


def test_gemma_2_on_a_t4_names_triton_attention_with_the_soft_cap(tmp_path: Path) -> None:
    p = _plan(tmp_path, "Tesla T4")
    decision = deploy(p).primary.decision("quantization")
    assert decision is not None
    assert "; attention: TRITON_ATTN, attention logits soft-capped at 50 inside the kernel)" in decision.reason


def test_an_extra_args_backend_that_cannot_run_gemma_2_is_refused(tmp_path: Path) -> None:
    p = _plan(tmp_path, "L40S", backends={"vllm": {"extra_args": ["--attention-backend", "FLEX_ATTENTION"]}})
    (diag,) = [d for d in check_plan(deploy(p)) if "--attention-backend" in d.message]
    assert diag.message == ("--attention-backend FLEX_ATTENTION cannot run on compute capability 8.9 with a "
                            f"{p.pools[0].knobs.kv_cache_dtype} KV cache for this model (FlexAttention does not "
                            "support logits soft cap (flex_attention.py)): vLLM 0.33.0 stops at start-up")
    assert diag.key_path == "backends.vllm.extra_args"


def _argv(p: Plan) -> list[str]:
    d = deploy(p)
    return [str(w) for w in serve_command(d, d.servers[0], parse_options(p.target.spec.backends.get("vllm"))).argv]


def test_gemma_2_on_rocm_is_steered_off_rocm_attn_which_drops_the_soft_cap(tmp_path: Path) -> None:
    # platforms/rocm.py tries ROCM_ATTN first, and rocm_attn.py never hands logits_soft_cap to its kernel
    p = _plan(tmp_path, "MI300X")
    argv = _argv(p)
    assert argv[argv.index("--attention-backend") + 1] == "ROCM_AITER_FA"
    d = deploy(p)
    reasons = {f.flag: f.reason for f in serve_command(d, d.servers[0], parse_options(None)).flags}
    assert reasons["--attention-backend"] == (
        "the model soft-caps its attention logits at 50 (attn_logit_softcapping); vLLM 0.33.0's first choice on "
        "ROCm, ROCM_ATTN, never applies the cap (rocm_attn.py), ROCM_AITER_FA does")
    assert [x for x in check_plan(d) if "attention" in x.message] == []
    assert rocm_softcap_backend(AttentionFacts(head_dim=96, logit_softcap=50.0)) == "TRITON_ATTN"
    assert rocm_softcap_backend(LLAMA) is None
    assert "--attention-backend" not in _argv(_plan(tmp_path, "MI300X", "Qwen/Qwen3-8B"))


def test_rocm_attn_forced_for_gemma_2_is_refused(tmp_path: Path) -> None:
    p = _plan(tmp_path, "MI300X", backends={"vllm": {"extra_args": ["--attention-backend=ROCM_ATTN"]}})
    assert [w for w in _argv(p) if w.startswith("--attention-backend")] == ["--attention-backend=ROCM_ATTN"]
    (diag,) = [d for d in check_plan(deploy(p)) if "soft-capping" in d.message]
    assert diag.message == ("--attention-backend ROCM_ATTN does not apply the model's attention logit soft-capping "
                            "(50): rocm_attn.py never passes it to its kernel, so vLLM 0.33.0 serves wrong logits and "
                            "no error")
    assert diag.hint == "drop it (deployc then passes --attention-backend ROCM_AITER_FA) or name ROCM_AITER_FA"
