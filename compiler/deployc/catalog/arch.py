"""The architecture of a decoder-only model as the planner needs it: shapes, layer kinds, checkpoint format.

Built from a Hugging Face ``config.json`` by :func:`deployc.catalog.hf_config.model_from_hf_config`;
every field is a plain number, so the memory and performance models stay pure functions.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from attrs import field, frozen

LayerKind = Literal["full", "sliding"]
MlpKind = Literal["dense", "moe"]


def strings(values: Iterable[str]) -> tuple[str, ...]:
    """Any iterable of strings as a tuple (frozen classes keep tuples, callers may pass lists)."""
    return tuple(values)


def _layer_kinds(values: Iterable[LayerKind]) -> tuple[LayerKind, ...]:
    return tuple(values)


def _mlp_kinds(values: Iterable[MlpKind]) -> tuple[MlpKind, ...]:
    return tuple(values)


@frozen(kw_only=True)
class CheckpointQuant:
    """How a checkpoint's weights are already quantized (its ``quantization_config``).

    ``not_converted`` keeps the module patterns the checkpoint leaves in the activation dtype
    (``modules_to_not_convert`` / compressed-tensors ``ignore``).
    """

    method: str  # fp8 | awq | gptq | compressed-tensors | mxfp4 | nvfp4 | bitsandbytes | modelopt
    bits: int | None = None
    group_size: int | None = None  # elements along the input dimension sharing one scale
    block_size: tuple[int, ...] | None = None  # FP8 block quantization, e.g. (128, 128)
    zero_point: bool = False  # asymmetric: one packed zero per group (AWQ, GPTQ sym=false)
    weight_type: Literal["int", "float"] = "int"
    strategy: str = ""  # tensor | channel | block | group
    scheme: str = ""  # free text: "e4m3 dynamic", "awq gemm", compressed-tensors format...
    not_converted: tuple[str, ...] = ()
    lm_head_quantized: bool = False


@frozen(kw_only=True)
class ModelArch:
    """A model's architecture; counts are totals across the model (unsharded)."""

    name: str
    family: str
    source: str
    num_layers: int
    hidden_size: int
    intermediate_size: int  # dense MLP width (dense layers; 0 when every layer is MoE and the key is unused)
    num_attention_heads: int
    num_kv_heads: int
    head_dim: int  # K/V head size (MLA: qk_nope_head_dim + qk_rope_head_dim, informational)
    vocab_size: int
    max_position_embeddings: int
    tie_word_embeddings: bool
    attention_bias: bool = False  # biases on q/k/v projections
    attention_out_bias: bool = False  # bias on o_proj
    qk_norm: bool = False  # per-head RMSNorm on q and k (Qwen3, Gemma 3)
    attention_sinks: bool = False  # one learned sink logit per head (gpt-oss)
    norms_per_layer: int = 2
    # MoE (zeros when dense)
    num_experts: int = 0
    experts_per_token: int = 0
    num_shared_experts: int = 0
    moe_intermediate_size: int = 0
    shared_expert_intermediate_size: int = 0
    first_dense_layers: int = 0
    expert_bias: bool = False  # gate_up and down biases on every expert (gpt-oss)
    router_bias: bool = False  # router bias or DeepSeek-V3's e_score_correction_bias
    mlp_kinds: tuple[MlpKind, ...] = field(converter=_mlp_kinds)
    # MLA (zeros when absent)
    q_lora_rank: int = 0
    kv_lora_rank: int = 0
    qk_nope_head_dim: int = 0
    qk_rope_head_dim: int = 0
    v_head_dim: int = 0
    layer_kinds: tuple[LayerKind, ...] = field(converter=_layer_kinds)
    sliding_window: int | None = None
    checkpoint_dtype: str = "bfloat16"
    checkpoint_quant: CheckpointQuant | None = None
    rope_scaling_factor: float | None = None
    # tanh soft-capping (Gemma 2): attention scores become cap·tanh(score/cap) inside the attention kernel,
    # so the engine's attention backend must implement it; the final one caps the LM-head logits
    attn_logit_softcap: float | None = None
    final_logit_softcap: float | None = None
    mtp_layers: int = 0  # DeepSeek multi-token-prediction layers in the checkpoint (not loaded for serving)
    vision_params: int = 0  # vision tower + projector of a multimodal checkpoint, when known
    notes: tuple[str, ...] = field(default=(), converter=strings)

    @mlp_kinds.validator
    def _check_mlp_kinds(self, _attribute: object, value: tuple[str, ...]) -> None:
        if len(value) != self.num_layers or any(v not in ("dense", "moe") for v in value):
            raise ValueError(f"mlp_kinds must give 'dense' or 'moe' for each of {self.num_layers} layers")

    @layer_kinds.validator
    def _check_layer_kinds(self, _attribute: object, value: tuple[str, ...]) -> None:
        if len(value) != self.num_layers or any(v not in ("full", "sliding") for v in value):
            raise ValueError(f"layer_kinds must give 'full' or 'sliding' for each of the {self.num_layers} "
                             "layers")
        if "sliding" in value and not self.sliding_window:
            raise ValueError("sliding layers need a sliding_window")

    @property
    def is_moe(self) -> bool:
        """True when at least one layer routes tokens to experts."""
        return self.num_experts > 0 and "moe" in self.mlp_kinds

    @property
    def uses_mla(self) -> bool:
        """True for multi-head latent attention (DeepSeek-V2/V3): the KV cache holds one latent per layer."""
        return self.kv_lora_rank > 0

    @property
    def has_sliding_window(self) -> bool:
        """True when some layers attend only to the last ``sliding_window`` tokens."""
        return "sliding" in self.layer_kinds

    @property
    def num_full_layers(self) -> int:
        """Layers whose KV cache grows with the sequence."""
        return self.layer_kinds.count("full")

    @property
    def num_sliding_layers(self) -> int:
        """Layers whose KV cache stops growing at the window."""
        return self.layer_kinds.count("sliding")

    @property
    def num_moe_layers(self) -> int:
        """Layers with an MoE block instead of a dense MLP."""
        return self.mlp_kinds.count("moe")

    @property
    def q_head_dim(self) -> int:
        """Per-head query size (MLA: nope + rope parts)."""
        return self.qk_nope_head_dim + self.qk_rope_head_dim if self.uses_mla else self.head_dim
