"""Parameter counts computed from a :class:`~deployc.catalog.arch.ModelArch` (unsharded, whole model).

Counted: token embedding; LM head unless tied; per layer the attention projections with their
biases, q/k norms and sinks (MLA: q_a/q_b or q, kv_a with its norm, kv_b, o), the layer norms,
and a dense MLP (gate, up, down) or an MoE block (all experts, shared experts, router and its
bias); the final norm. Not counted: DeepSeek's multi-token-prediction layers (engines skip them
unless speculative decoding is on) and a vision tower (``vision``, reported separately).
"""

from __future__ import annotations

from functools import cache

from attrs import frozen

from deployc.catalog.arch import ModelArch


@frozen(kw_only=True)
class ParamCounts:
    """Parameter counts of one model. ``active`` is what one token touches, embeddings included."""

    total: int
    active: int
    embedding: int
    lm_head: int
    per_layer_attention: int  # one layer's attention, its norms excluded
    per_layer_mlp: int  # one dense layer's MLP (0 when every layer is MoE)
    per_layer_moe: int  # one MoE layer's block: experts + shared experts + router (0 when dense)
    per_expert: int
    attention_total: int
    dense_mlp_total: int
    moe_total: int
    norms_total: int
    vision: int = 0

    @property
    def non_embedding(self) -> int:
        """Everything except the embedding and the LM head."""
        return self.total - self.embedding - self.lm_head


def attention_params(arch: ModelArch) -> int:
    """One layer's attention parameters (projections, biases, q/k norms, sinks; MLA latent norms)."""
    d, heads = arch.hidden_size, arch.num_attention_heads
    if arch.uses_mla:
        q_dim = heads * arch.q_head_dim
        lora = arch.q_lora_rank  # q_a_proj, its norm and q_b_proj; else one q_proj
        q = d * lora + lora + lora * q_dim if lora else d * q_dim
        kv_a = d * (arch.kv_lora_rank + arch.qk_rope_head_dim) + arch.kv_lora_rank
        kv_b = arch.kv_lora_rank * heads * (arch.qk_nope_head_dim + arch.v_head_dim)
        return q + kv_a + kv_b + heads * arch.v_head_dim * d
    q_out, kv_out = heads * arch.head_dim, arch.num_kv_heads * arch.head_dim
    weights = d * q_out + 2 * d * kv_out + q_out * d
    biases = (q_out + 2 * kv_out if arch.attention_bias else 0) + (d if arch.attention_out_bias else 0)
    norms = 2 * arch.head_dim if arch.qk_norm else 0
    sinks = heads if arch.attention_sinks else 0
    return weights + biases + norms + sinks


def dense_mlp_params(arch: ModelArch) -> int:
    """One dense gated MLP (gate, up, down)."""
    return 3 * arch.hidden_size * arch.intermediate_size


def expert_params(arch: ModelArch) -> int:
    """One routed expert (gate, up, down; gpt-oss adds gate_up and down biases)."""
    inter, d = arch.moe_intermediate_size, arch.hidden_size
    return 3 * d * inter + ((2 * inter + d) if arch.expert_bias else 0)


def router_params(arch: ModelArch) -> int:
    """One MoE router: a hidden × experts matrix, plus a per-expert bias when present."""
    return arch.hidden_size * arch.num_experts + (arch.num_experts if arch.router_bias else 0)


def shared_expert_params(arch: ModelArch) -> int:
    """The shared experts of one MoE layer, as one gated MLP of the combined width."""
    return 3 * arch.hidden_size * arch.shared_expert_intermediate_size


def moe_block_params(arch: ModelArch) -> int:
    """One MoE layer's block: every routed expert, the shared experts and the router."""
    return arch.num_experts * expert_params(arch) + shared_expert_params(arch) + router_params(arch)


@cache  # the performance model asks for every engine step the serving simulation prices
def param_counts(arch: ModelArch) -> ParamCounts:
    """Total and active parameters with their breakdown (see the module docstring for what counts)."""
    embedding = arch.vocab_size * arch.hidden_size
    lm_head = 0 if arch.tie_word_embeddings else embedding
    attention, dense, moe = attention_params(arch), dense_mlp_params(arch), moe_block_params(arch)
    moe_layers = arch.num_moe_layers
    dense_layers = arch.num_layers - moe_layers
    norms = arch.num_layers * arch.norms_per_layer * arch.hidden_size + arch.hidden_size
    layers = arch.num_layers * attention + dense_layers * dense + moe_layers * moe
    total = embedding + lm_head + layers + norms
    idle_experts = max(arch.num_experts - arch.experts_per_token, 0)
    return ParamCounts(
        total=total, active=total - moe_layers * idle_experts * expert_params(arch), embedding=embedding,
        lm_head=lm_head, per_layer_attention=attention, per_layer_mlp=dense if dense_layers else 0,
        per_layer_moe=moe if moe_layers else 0, per_expert=expert_params(arch) if moe_layers else 0,
        attention_total=arch.num_layers * attention, dense_mlp_total=dense_layers * dense,
        moe_total=moe_layers * moe, norms_total=norms, vision=arch.vision_params,
    )
