"""The attention backend SGLang 0.5.23 selects on an NVIDIA GPU, and the one deployc asks for when that one
cannot run the model.

Read from the SGLang 0.5.23 wheel (paths relative to ``sglang/srt/``):

- ``arg_groups/model_override_base.py`` ``get_default_attn_backend`` (line 277), without speculative decoding:
  multi-head/grouped-query attention runs ``fa3`` on Hopper (``is_hopper_with_cuda_12_3``: compute capability
  9.x), ``trtllm_mha`` on datacenter Blackwell (``is_sm100``: 10.x), else ``flashinfer`` unless the model has
  attention sinks ("FlashInfer does not support attention sinks"), then ``triton``.  MLA runs ``fa3`` on 9.x,
  ``flashinfer`` on 10.x, ``triton`` elsewhere.
- Logit soft-capping (Gemma 2's ``attn_logit_softcapping``, ``models/gemma2.py`` line 161 passes it to
  ``RadixAttention(logit_cap=...)``) is applied by the backends that read ``layer.logit_cap``:
  ``flashinfer_backend.py`` (line 1370), ``flashattention_backend.py`` (fa3/fa4, ``softcap=layer.logit_cap``),
  ``triton_backend.py`` (line 1745), ``aiter_backend.py``, ``wave_backend.py``.  ``trtllm_mha_backend.py``
  (like the other modules listed at ``NO_SOFTCAP_BACKENDS``)
  never reads it: its TRT-LLM-gen kernels (``trtllm_batch_decode_with_kv_cache``,
  ``trtllm_batch_context_with_kv_cache``) take no soft cap, and nothing in the selection or the Gemma 2
  override (``arg_groups/model_overrides/gemma2_gemma3.py``, which only disables hybrid SWA memory) steers a
  soft-capped model away from it.  So on Blackwell SGLang's default would serve Gemma 2 without its
  soft-capping (wrong logits, no error); deployc passes ``--attention-backend flashinfer`` there, the backend
  SGLang itself uses for MLA on 10.x.
"""

from __future__ import annotations

from deployc.contract import AttentionFacts
from deployc_sglang import ENGINE_VERSION

Cc = tuple[int, int]
_V = f"SGLang {ENGINE_VERSION}"
# Backends whose forward passes layer.logit_cap to the kernel (see the module docstring)
SOFTCAP_BACKENDS = frozenset({"flashinfer", "fa3", "fa4", "triton", "aiter", "wave"})
# Backends whose module never reads layer.logit_cap (srt/layers/attention/: trtllm_mha_backend.py,
# trtllm_mla_backend.py, cutedsl_mla_backend.py, flashmla_backend.py, torch_native_backend.py,
# torch_flex_backend.py): they would serve a soft-capped model with wrong logits
NO_SOFTCAP_BACKENDS = frozenset({"trtllm_mha", "trtllm_mla", "cutedsl_mla", "flashmla", "torch_native",
                                 "flex_attention"})
SOFTCAP_FALLBACK = "flashinfer"
ATTENTION_FLAGS = ("--attention-backend", "--decode-attention-backend", "--prefill-attention-backend")


def default_backend(cc: Cc, model: AttentionFacts) -> str:
    """``get_default_attn_backend`` on CUDA, without speculative decoding."""
    if model.mla:
        return {9: "fa3", 10: "flashinfer"}.get(cc[0], "triton")
    if cc[0] == 9:
        return "fa3"
    if cc[0] == 10:
        return "trtllm_mha"
    return "triton" if model.sinks else "flashinfer"


def planned_backend(cc: Cc, model: AttentionFacts) -> tuple[str, bool]:
    """The backend the server runs and whether deployc must pass it (SGLang's default would drop the soft cap)."""
    default = default_backend(cc, model)
    if model.logit_softcap is not None and default in NO_SOFTCAP_BACKENDS:
        return SOFTCAP_FALLBACK, True
    return default, False


def label(cc: Cc, model: AttentionFacts) -> str:
    """The backend's name as ``--attention-backend`` takes it, with the soft-capping it applies."""
    backend, forced = planned_backend(cc, model)
    if model.logit_softcap is None:
        return backend
    how = (f" (passed as --attention-backend: SGLang's default here, {default_backend(cc, model)}, does not apply "
           "the cap)") if forced else ""
    return f"{backend}, attention logits soft-capped at {model.logit_softcap:g} inside the kernel{how}"


def softcap_flag(cc: Cc, model: AttentionFacts, extra_args: tuple[str, ...]) -> tuple[tuple[str, str], str] | None:
    """``--attention-backend`` and its reason when the default backend would ignore the model's soft cap.

    None when SGLang's own choice applies it, or when the extra arguments choose the backend themselves
    (``forced_problems`` checks that choice).
    """
    backend, forced = planned_backend(cc, model)
    if not forced or forced_values(extra_args):
        return None
    default = default_backend(cc, model)
    return (("--attention-backend", backend),
            f"the model soft-caps its attention logits at {model.logit_softcap:g} (attn_logit_softcapping); "
            f"{_V}'s default on this GPU, {default}, never applies the cap (trtllm_mha_backend.py ignores "
            f"logit_cap), {backend} does")


def forced_values(extra_args: tuple[str, ...]) -> list[tuple[str, str]]:
    """(flag, backend) for each attention-backend flag in the extra arguments."""
    out = []
    for i, arg in enumerate(extra_args):
        flag, eq, value = arg.partition("=")
        if flag in ATTENTION_FLAGS:
            value = value if eq else (extra_args[i + 1] if i + 1 < len(extra_args) else "")
            if value:
                out.append((flag, value))
    return out


def forced_problems(cc: Cc, model: AttentionFacts, extra_args: tuple[str, ...]) -> list[tuple[str, str]]:
    """(message, fix) for an extra-argument backend that would drop the model's soft-capping."""
    if model.logit_softcap is None:
        return []
    return [(f"{flag} {value} does not apply the model's attention logit soft-capping "
             f"({model.logit_softcap:g}, attn_logit_softcapping): {_V} serves it with wrong logits and no error",
             f"use a backend that applies it ({', '.join(sorted(SOFTCAP_BACKENDS))}), or drop the flag "
             f"(deployc then passes --attention-backend {planned_backend(cc, model)[0]})")
            for flag, value in forced_values(extra_args) if value in NO_SOFTCAP_BACKENDS]
