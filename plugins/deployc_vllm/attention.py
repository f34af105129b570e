"""The attention backend vLLM 0.33.0 selects on an NVIDIA GPU for a KV-cache dtype and a model, and why.

vLLM picks it at start-up; deployc names it (and refuses an ``--attention-backend`` that cannot run) by
repeating the selection.  Read from the vLLM 0.33.0 wheel (paths relative to ``vllm/``):

- ``platforms/cuda.py`` ``_get_backend_priorities`` (line 84): the candidates in order.  Without MLA:
  FLASHINFER, FLASH_ATTN, TRITON_ATTN, FLEX_ATTENTION on compute capability 10.x; FLASH_ATTN, FLASHINFER,
  TRITON_ATTN, FLEX_ATTENTION elsewhere.  With MLA: FLASHINFER_MLA, ..., TRITON_MLA on 10.x; TRITON_MLA on
  12.x; FLASH_ATTN_MLA, FLASHMLA, FLASHINFER_MLA, TRITON_MLA elsewhere.  ``get_valid_backends`` (line 377)
  takes the first one whose ``validate_configuration`` (``v1/attention/backend.py`` line 279) finds no reason
  against it; an explicitly selected backend that has one stops start-up ("Selected backend ... is not valid
  for this configuration").
- ``v1/attention/backends/flash_attn.py``: compute capability ≥ 8.0 (line 458); head size a multiple of 8 up
  to 256, 512 with FlashAttention 4 (line 425); sinks need 9.0 (line 474) and FA3/FA4
  (``fa_utils.flash_attn_supports_sinks``, line 319); an FP8 KV cache needs FA3 on 9.x or
  FA4 on 10.x (``fa_utils.flash_attn_supports_kv_cache_dtype``, line 282).  The version
  (``fa_utils.get_flash_attn_version``, line 74): FA3 on 9.x, FA4 on 10.x, FA2 elsewhere; on Blackwell FA4
  falls back to FA2 above head size 128 except its head-256 kernel, which itself falls back with soft-capping
  or a quantized KV cache (``_fa4_hd256_fallback_reason``).  FA2 needs 8.0
  (``vllm_flash_attn/flash_attn_interface.py`` ``_is_fa2_supported``): there is no FlashAttention on Turing.
- ``v1/attention/backends/flashinfer.py``: compute capability 8.0 to 12.1 (line 696: "broken on SM75
  (Turing)", so the floor was raised from 7.5); head sizes 64, 128, 256, 512 (line 691); sinks only through
  its TRT-LLM kernels on 9.0, 10.x and 12.x (``supports_sink``).
- ``v1/attention/backends/triton_attn.py``: any compute capability (line 405), head size ≥ 32 (line 379); an
  FP8 KV cache needs 8.9 (line 515, "native FP8 (fp8e4nv) requires SM89+").
- Logit soft-capping (Gemma 2's ``attn_logit_softcapping``) is not a selection criterion: FLASH_ATTN,
  FLASHINFER and TRITON_ATTN take it as a kernel argument (``softcap=self.logits_soft_cap``), while
  ``flex_attention.py`` (line 1188) raises "FlexAttention does not support logits soft cap yet" at start-up.
- ROCm (``platforms/rocm.py`` ``_get_backend_priorities``, line 531): ROCM_ATTN comes first, then ROCM_AITER_FA
  (AITER on, as deployc sets it), AITER unified attention, TRITON_ATTN.  ``rocm_attn.py`` keeps
  ``logits_soft_cap`` (line 291) but never passes it to ``chunked_prefill_paged_decode`` (line 444), which has
  no soft-cap argument: a soft-capped model would be served with wrong logits and no error.  ``rocm_aiter_fa.py``
  passes ``softcap=self.logits_soft_cap`` (line 1456) for head sizes 64, 128, 256 (line 917); TRITON_ATTN
  applies it for any head size of 32 or more.
- MLA: FLASH_ATTN_MLA needs 9.x and a 16-bit KV cache (``mla/flashattn_mla.py``), FLASHMLA 9.x or 10.x
  (``mla/flashmla.py``), FLASHINFER_MLA 10.x (``mla/flashinfer_mla.py``), TRITON_MLA any GPU, with an FP8 KV
  cache from 8.9 (``mla/triton_mla.py`` line 203).
"""

from __future__ import annotations

from attrs import frozen

from deployc.contract import AttentionFacts
from deployc_vllm import ENGINE_VERSION

Cc = tuple[int, int]
_V = f"vLLM {ENGINE_VERSION}"
FLASHINFER_HEAD_SIZES = (64, 128, 256, 512)  # flashinfer.py get_supported_head_sizes


@frozen
class AttentionChoice:
    """The backend vLLM selects (its ``--attention-backend`` name) and how deployc says it."""

    backend: str  # AttentionBackendEnum name, as --attention-backend takes it
    label: str  # the name plus the kernel version where the backend has several (FlashAttention 2/3/4)


def flash_attn_version(cc: Cc, head_dim: int, kv_fp8: bool, softcap: bool) -> int:
    """``fa_utils.get_flash_attn_version``: FA3 on 9.x, FA4 on 10.x with its Blackwell head-size limits, else FA2."""
    if cc[0] == 9:
        return 4 if head_dim > 256 else 3  # "FA3 does not support head_size > 256 on SM90: upgrading 3 -> 4"
    if cc[0] == 10:
        if head_dim == 256:  # FA4's head-256 kernel falls back for soft-capping and a quantized KV cache
            return 2 if softcap or kv_fp8 else 4
        return 4 if head_dim <= 128 else 2  # "FA4 on Blackwell does not support head_size=... (TMEM)"
    return 2


def _flash_attn_reasons(cc: Cc, kv_fp8: bool, model: AttentionFacts) -> list[str]:
    if cc < (8, 0):
        return ["FlashAttention needs compute capability 8.0 (flash_attn.py supports_compute_capability)"]
    out = []
    fa4 = cc[0] in (9, 10, 11)
    if model.head_dim and (model.head_dim % 8 or model.head_dim > (512 if fa4 else 256)):
        out.append(f"FlashAttention does not run head size {model.head_dim} here")
    version = flash_attn_version(cc, model.head_dim, kv_fp8, model.logit_softcap is not None)
    if model.sinks and (cc < (9, 0) or version == 2):  # flash_attn_supports_sinks: FA3 or FA4 (fa_utils.py:319)
        out.append(f"FlashAttention runs attention sinks with FA3/FA4 only; this GPU runs FlashAttention {version}")
    if kv_fp8 and not ((cc[0] == 9 and version == 3) or (cc[0] == 10 and version == 4)):
        out.append("an FP8 KV cache needs FlashAttention 3 on Hopper (9.x) or FlashAttention 4 on Blackwell "
                   f"(10.x); this GPU runs FlashAttention {version}")
    return out


def _flashinfer_reasons(cc: Cc, _kv_fp8: bool, model: AttentionFacts) -> list[str]:
    if not (8, 0) <= cc <= (12, 1):
        return ["FlashInfer is selected from compute capability 8.0 to 12.1 (flashinfer.py: broken on Turing)"]
    out = []
    if model.head_dim and model.head_dim not in FLASHINFER_HEAD_SIZES:
        out.append(f"FlashInfer runs head sizes {', '.join(map(str, FLASHINFER_HEAD_SIZES))}, not {model.head_dim}")
    if model.sinks and not (cc == (9, 0) or cc[0] in (10, 12)):
        out.append("FlashInfer runs attention sinks only through its TRT-LLM kernels on 9.0, 10.x and 12.x")
    return out


def _triton_reasons(cc: Cc, kv_fp8: bool, model: AttentionFacts) -> list[str]:
    out = []
    if model.head_dim and model.head_dim < 32:
        out.append(f"Triton attention needs head size 32 or more, not {model.head_dim}")
    if kv_fp8 and cc < (8, 9):
        out.append("Triton attention has no e4m3 FP8 before compute capability 8.9 (triton_attn.py)")
    return out


def _flex_reasons(_cc: Cc, kv_fp8: bool, model: AttentionFacts) -> list[str]:
    out = ["FlexAttention has no FP8 KV cache"] if kv_fp8 else []
    if model.logit_softcap is not None:
        out.append("FlexAttention does not support logits soft cap (flex_attention.py)")
    return out


_DENSE = {"FLASH_ATTN": _flash_attn_reasons, "FLASHINFER": _flashinfer_reasons, "TRITON_ATTN": _triton_reasons,
          "FLEX_ATTENTION": _flex_reasons}


def _mla_reasons(backend: str, cc: Cc, kv_fp8: bool) -> list[str]:
    if backend == "FLASH_ATTN_MLA":
        return [r for r, bad in (("FLASH_ATTN_MLA runs on compute capability 9.x only", cc[0] != 9),
                                 ("FLASH_ATTN_MLA has no FP8 KV cache", kv_fp8)) if bad]
    if backend == "FLASHMLA":
        return [] if cc[0] in (9, 10) else ["FlashMLA runs on compute capability 9.x and 10.x"]
    if backend in ("FLASHINFER_MLA", "CUTLASS_MLA"):
        return [] if cc[0] == 10 else [f"{backend} runs on compute capability 10.x only"]
    if kv_fp8 and cc < (8, 9):  # mla/triton_mla.py line 203: "native FP8 (fp8e4nv) requires SM89+"
        return ["Triton MLA has no e4m3 FP8 before compute capability 8.9 (mla/triton_mla.py)"]
    return []  # TRITON_MLA: any GPU


def priorities(cc: Cc, mla: bool) -> tuple[str, ...]:
    """``_get_backend_priorities`` for a causal decoder (no multimodal prefix, no sparse MLA)."""
    if mla:
        if cc[0] == 10:
            return ("FLASHINFER_MLA", "CUTLASS_MLA", "FLASH_ATTN_MLA", "FLASHMLA", "TRITON_MLA")
        if cc[0] == 12:
            return ("TRITON_MLA",)
        return ("FLASH_ATTN_MLA", "FLASHMLA", "FLASHINFER_MLA", "TRITON_MLA")
    if cc[0] == 10:
        return ("FLASHINFER", "FLASH_ATTN", "TRITON_ATTN", "FLEX_ATTENTION")
    return ("FLASH_ATTN", "FLASHINFER", "TRITON_ATTN", "FLEX_ATTENTION")


def invalid_reasons(backend: str, cc: Cc, kv_cache_dtype: str, model: AttentionFacts) -> list[str] | None:
    """Why ``backend`` cannot run here ([] when it can); None for a backend deployc does not model."""
    kv_fp8 = kv_cache_dtype == "fp8"
    if backend in _DENSE:
        if model.mla:
            return [f"{backend} is not an MLA backend; this model uses multi-head latent attention"]
        return _DENSE[backend](cc, kv_fp8, model)
    if backend in ("FLASH_ATTN_MLA", "FLASHMLA", "FLASHINFER_MLA", "CUTLASS_MLA", "TRITON_MLA"):
        if not model.mla:
            return [f"{backend} is an MLA backend; this model does not use multi-head latent attention"]
        return _mla_reasons(backend, cc, kv_fp8)
    return None


def label(backend: str, cc: Cc, kv_cache_dtype: str, model: AttentionFacts) -> str:
    """The backend's name, with the FlashAttention version it runs on this GPU."""
    if backend == "FLASH_ATTN":
        version = flash_attn_version(cc, model.head_dim, kv_cache_dtype == "fp8", model.logit_softcap is not None)
        return f"FLASH_ATTN (FlashAttention {version})"
    return backend


def select(cc: Cc, kv_cache_dtype: str, model: AttentionFacts) -> AttentionChoice | None:
    """The backend vLLM selects: the first candidate with no reason against it (None: none can run)."""
    for backend in priorities(cc, model.mla):
        if not invalid_reasons(backend, cc, kv_cache_dtype, model):
            return AttentionChoice(backend, label(backend, cc, kv_cache_dtype, model))
    return None


def why_not(cc: Cc, kv_cache_dtype: str, model: AttentionFacts) -> list[str]:
    """Every candidate's reasons against it, in vLLM's order (for a verdict when none can run)."""
    return [f"{backend}: {', '.join(reasons)}" for backend in priorities(cc, model.mla)
            if (reasons := invalid_reasons(backend, cc, kv_cache_dtype, model))]


def softcap_note(model: AttentionFacts) -> str:
    """What a kernel label says about the model's attention soft-capping ("" without one)."""
    if model.logit_softcap is None:
        return ""
    return f", attention logits soft-capped at {model.logit_softcap:g} inside the kernel"


def forced_problems(cc: Cc, kv_cache_dtype: str, model: AttentionFacts, forced: list[str]) -> list[tuple[str, str]]:
    """(message, fix) for each ``--attention-backend`` the extra arguments force that cannot run this model here."""
    out = []
    where = f"compute capability {cc[0]}.{cc[1]}"
    for backend in forced:
        reasons = invalid_reasons(backend, cc, kv_cache_dtype, model)
        if not reasons:  # runs, or a backend deployc does not model (left to vLLM)
            continue
        choice = select(cc, kv_cache_dtype, model)
        fix = (f"drop it: {_V} selects {choice.label} for this GPU, KV cache and model" if choice is not None
               else "drop it")
        out.append((f"--attention-backend {backend} cannot run on {where} with a {kv_cache_dtype} KV cache for this "
                    f"model ({'; '.join(reasons)}): {_V} stops at start-up", fix))
    return out


ROCM_NO_SOFTCAP = frozenset({"ROCM_ATTN"})  # rocm_attn.py drops logits_soft_cap (see the module docstring)
AITER_FA_HEAD_SIZES = (64, 128, 256)  # rocm_aiter_fa.py get_supported_head_sizes


def rocm_softcap_backend(model: AttentionFacts) -> str | None:
    """The backend deployc passes on ROCm for a soft-capped model (vLLM's first choice, ROCM_ATTN, drops the cap)."""
    if model.logit_softcap is None or model.mla:
        return None
    return "ROCM_AITER_FA" if model.head_dim in AITER_FA_HEAD_SIZES else "TRITON_ATTN"


def rocm_forced_problems(model: AttentionFacts, forced: list[str]) -> list[tuple[str, str]]:
    """(message, fix) for an ``--attention-backend`` on ROCm that would drop the model's soft-capping."""
    fix = rocm_softcap_backend(model)
    return [(f"--attention-backend {backend} does not apply the model's attention logit soft-capping "
             f"({model.logit_softcap:g}): rocm_attn.py never passes it to its kernel, so {_V} serves wrong logits "
             "and no error", f"drop it (deployc then passes --attention-backend {fix}) or name {fix}")
            for backend in forced if backend in ROCM_NO_SOFTCAP and fix is not None]


def softcap_flag(model: AttentionFacts, amd: bool, forced: list[str]) -> tuple[tuple[str, str], str] | None:
    """``--attention-backend`` and its reason when vLLM's own choice would drop the model's soft cap (ROCm)."""
    backend = rocm_softcap_backend(model) if amd else None
    if backend is None or forced:  # extra_args choose the backend themselves (checked by rocm_forced_problems)
        return None
    return (("--attention-backend", backend),
            f"the model soft-caps its attention logits at {model.logit_softcap:g} (attn_logit_softcapping); "
            f"{_V}'s first choice on ROCm, ROCM_ATTN, never applies the cap (rocm_attn.py), {backend} does")
