"""Reading Hugging Face config.json files: every planned family, quantization_config variants, and refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from deployc.catalog import CheckpointQuant, ModelArch, UnsupportedArchitecture, model_from_hf_config
from deployc.catalog.hf_quant import UnsupportedQuantization, parse_quantization_config
from tests.conftest import REPO

CONFIGS = REPO / "tests" / "fixtures" / "hf_configs"


def raw(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((CONFIGS / f"{name}.json").read_text())
    return data


def parse(name: str) -> ModelArch:
    return model_from_hf_config(raw(name), name=name, source=f"fixture {name}.json")


# fixture, family, layers, kv heads, head_dim, MoE experts, MLA, sliding layers, window, dtype
FAMILIES = [
    ("llama", "llama", 32, 8, 128, 0, False, 0, None, "bfloat16"),
    ("mistral", "mistral", 32, 8, 128, 0, False, 32, 4096, "bfloat16"),
    ("qwen2", "qwen2", 28, 4, 128, 0, False, 0, None, "bfloat16"),
    ("qwen3", "qwen3", 64, 8, 128, 0, False, 0, None, "bfloat16"),
    ("mixtral", "mixtral", 32, 8, 128, 8, False, 0, None, "bfloat16"),
    ("qwen3_moe", "qwen3_moe", 48, 4, 128, 128, False, 0, None, "bfloat16"),
    ("deepseek_v2", "deepseek_v2", 27, 16, 192, 64, True, 0, None, "bfloat16"),
    ("deepseek_v3", "deepseek_v3", 61, 128, 192, 256, True, 0, None, "bfloat16"),
    ("gpt_oss", "gpt_oss", 24, 8, 64, 32, False, 12, 128, "bfloat16"),
    ("gemma2", "gemma2", 42, 8, 256, 0, False, 21, 4096, "bfloat16"),
    ("gemma3", "gemma3", 62, 16, 128, 0, False, 52, 1024, "bfloat16"),
    ("phi3", "phi3", 32, 32, 96, 0, False, 0, None, "bfloat16"),
]


@pytest.mark.parametrize(("fixture", "family", "layers", "kv", "head_dim", "experts", "mla", "sliding", "window",
                          "dtype"), FAMILIES, ids=[f[0] for f in FAMILIES])
def test_each_family_parses(fixture: str, family: str, layers: int, kv: int, head_dim: int, experts: int, mla: bool,
                            sliding: int, window: int | None, dtype: str) -> None:
    arch = parse(fixture)
    assert (arch.family, arch.num_layers, arch.num_kv_heads, arch.head_dim) == (family, layers, kv, head_dim)
    assert (arch.num_experts, arch.uses_mla, arch.is_moe) == (experts, mla, experts > 0)
    assert (arch.num_sliding_layers, arch.sliding_window, arch.has_sliding_window) == (sliding, window, sliding > 0)
    assert arch.checkpoint_dtype == dtype
    assert arch.source == f"fixture {fixture}.json"


def test_head_dim_is_read_not_derived_when_the_config_gives_it() -> None:
    qwen3 = parse("qwen3")  # Qwen3-32B: 64 heads × 128 = 8192 ≠ hidden 5120
    assert qwen3.head_dim == 128 and qwen3.hidden_size // qwen3.num_attention_heads == 80
    assert parse("llama").head_dim == 128
    assert parse("phi3").head_dim == 3072 // 32  # no head_dim key: hidden / heads


def test_num_key_value_heads_defaults_to_num_attention_heads() -> None:
    arch = parse("llama_no_kv_heads")
    assert arch.num_kv_heads == arch.num_attention_heads == 32


def test_gemma_3_nested_text_config_takes_transformers_defaults() -> None:
    arch = parse("gemma3")
    assert (arch.vocab_size, arch.max_position_embeddings, arch.tie_word_embeddings) == (262_208, 131_072, True)
    assert [i for i, kind in enumerate(arch.layer_kinds) if kind == "full"] == list(range(5, 62, 6))
    assert arch.qk_norm and arch.norms_per_layer == 4
    assert arch.rope_scaling_factor == 8.0
    assert arch.vision_params == 423_060_336


def test_gemma_2_alternates_sliding_and_global_layers() -> None:
    arch = parse("gemma2")
    assert arch.layer_kinds[:4] == ("sliding", "full", "sliding", "full")
    assert arch.tie_word_embeddings and arch.norms_per_layer == 4


def test_gemma_2_keeps_its_logit_soft_capping() -> None:
    # The attention backend must apply attn_logit_softcapping (USER-PAINS #8): the reader dropped both keys.
    arch = parse("gemma2")
    assert (arch.attn_logit_softcap, arch.final_logit_softcap) == (50.0, 30.0)
    # transformers' Gemma2Config defaults when the keys are absent; an explicit null turns the cap off
    bare = {k: v for k, v in raw("gemma2").items() if not k.endswith("_softcapping")}
    arch = model_from_hf_config(bare, name="g", source="s")
    assert (arch.attn_logit_softcap, arch.final_logit_softcap) == (50.0, 30.0)
    arch = model_from_hf_config(bare | {"attn_logit_softcapping": None}, name="g", source="s")
    assert (arch.attn_logit_softcap, arch.final_logit_softcap) == (None, 30.0)
    assert parse("llama").attn_logit_softcap is None
    with pytest.raises(UnsupportedArchitecture) as exc:
        model_from_hf_config(raw("gemma2") | {"attn_logit_softcapping": "fifty"}, name="g", source="s")
    assert str(exc.value) == ("cannot plan g (Gemma2ForCausalLM): attn_logit_softcapping (not a positive number: "
                              "'fifty')")


def test_gpt_oss_reads_layer_types_sinks_biases_and_mxfp4() -> None:
    arch = parse("gpt_oss")
    assert arch.layer_kinds[:2] == ("sliding", "full") and arch.num_full_layers == 12
    assert arch.attention_sinks and arch.attention_bias and arch.attention_out_bias
    assert arch.expert_bias and arch.router_bias and arch.experts_per_token == 4
    assert arch.checkpoint_quant == CheckpointQuant(
        method="mxfp4", bits=4, weight_type="float", group_size=32, strategy="group",
        scheme="mxfp4 (e2m1, e8m0 scale per 32)",
        not_converted=("model.layers.*.self_attn", "model.layers.*.mlp.router", "model.embed_tokens", "lm_head"))
    assert arch.notes == ("config has no torch_dtype; bfloat16 assumed for the checkpoint",)


def test_deepseek_mla_moe_and_fp8_blocks() -> None:
    v3 = parse("deepseek_v3")
    assert (v3.q_lora_rank, v3.kv_lora_rank, v3.qk_nope_head_dim, v3.qk_rope_head_dim, v3.v_head_dim) == (
        1536, 512, 128, 64, 128)
    assert v3.mlp_kinds[:4] == ("dense", "dense", "dense", "moe") and v3.first_dense_layers == 3
    assert (v3.num_shared_experts, v3.shared_expert_intermediate_size, v3.router_bias) == (1, 2048, True)
    assert v3.checkpoint_quant is not None and v3.checkpoint_quant.block_size == (128, 128)
    lite = parse("deepseek_v2")
    assert lite.q_lora_rank == 0  # "q_lora_rank": null means a plain q_proj
    assert (lite.num_shared_experts, lite.first_dense_layers, lite.router_bias) == (2, 1, False)


def test_qwen2_sliding_window_only_when_enabled() -> None:
    assert not parse("qwen2").has_sliding_window  # sliding_window 131072 but use_sliding_window false
    config = raw("qwen2") | {"use_sliding_window": True, "max_window_layers": 20, "sliding_window": 4096}
    arch = model_from_hf_config(config, name="q", source="s")
    assert arch.layer_kinds.index("sliding") == 20 and arch.num_sliding_layers == 8


def test_phi3_sliding_window_is_planned_as_full_attention_and_says_so() -> None:
    arch = parse("phi3")
    assert not arch.has_sliding_window and arch.sliding_window is None
    assert "sliding_window=2047" in arch.notes[0]


def test_family_found_from_architectures_when_model_type_is_missing() -> None:
    config = {k: v for k, v in raw("llama").items() if k != "model_type"}
    assert model_from_hf_config(config, name="x", source="s").family == "llama"


QUANT = [
    ("qwen2_5_7b_instruct_awq", "awq", 4, 128, True, None),
    ("deepseek_v2_lite_chat_awq", "awq", 4, 64, True, None),
    ("llama_gptq", "gptq", 4, 128, False, None),
    ("llama_fp8_tensor", "fp8", 8, None, False, None),
    ("llama_fp8_block", "fp8", 8, None, False, (128, 128)),
    ("deepseek_v3", "fp8", 8, None, False, (128, 128)),
    ("llama_compressed_tensors_fp8", "compressed-tensors", 8, None, False, None),
    ("llama_compressed_tensors_w4a16", "compressed-tensors", 4, 128, False, None),
    ("llama_nvfp4_modelopt", "nvfp4", 4, 16, False, None),
    ("llama_bnb_nf4", "bitsandbytes", 4, 64, False, None),
    ("gpt_oss", "mxfp4", 4, 32, False, None),
]


@pytest.mark.parametrize(("fixture", "method", "bits", "group", "zero", "block"), QUANT, ids=[q[0] for q in QUANT])
def test_quantization_config_variants(fixture: str, method: str, bits: int, group: int | None, zero: bool,
                                      block: tuple[int, int] | None) -> None:
    quant = parse(fixture).checkpoint_quant
    assert quant is not None
    assert (quant.method, quant.bits, quant.group_size, quant.zero_point, quant.block_size) == (
        method, bits, group, zero, block)


def test_compressed_tensors_details() -> None:
    fp8 = parse("llama_compressed_tensors_fp8").checkpoint_quant
    assert fp8 is not None and (fp8.weight_type, fp8.strategy, fp8.not_converted) == ("float", "channel", ("lm_head",))
    w4 = parse("llama_compressed_tensors_w4a16").checkpoint_quant
    assert w4 is not None and (w4.weight_type, w4.strategy, w4.scheme) == ("int", "group", "pack-quantized")


def test_unquantized_checkpoint_has_no_quant() -> None:
    assert parse("llama").checkpoint_quant is None
    assert parse_quantization_config(None) is None


@pytest.mark.parametrize(("fixture", "arch_name", "model_type"), [
    ("mamba", "MambaForCausalLM", "mamba"),
    ("rwkv", "RwkvForCausalLM", "rwkv"),
])
def test_architectures_without_attention_are_refused_by_name(fixture: str, arch_name: str, model_type: str) -> None:
    with pytest.raises(UnsupportedArchitecture) as exc:
        parse(fixture)
    assert exc.value.architectures == (arch_name,)
    assert exc.value.model == fixture
    assert exc.value.missing[0].startswith(f"model_type '{model_type}' is not supported (supported: deepseek_v2, ")


def test_missing_keys_are_named_exactly() -> None:
    with pytest.raises(UnsupportedArchitecture) as exc:
        parse("llama_missing_fields")
    assert exc.value.missing == ("num_hidden_layers", "hidden_size")
    assert str(exc.value) == ("cannot plan llama_missing_fields (LlamaForCausalLM): num_hidden_layers; hidden_size")


def test_unplanned_quantization_and_layer_types_are_named() -> None:
    with pytest.raises(UnsupportedArchitecture) as exc:
        parse("unsupported_quant")
    assert exc.value.missing == ("quantization_config.quant_method 'hqq' (planned: awq, bitsandbytes, "
                                 "compressed-tensors, fp8, gptq, modelopt, mxfp4)",)
    with pytest.raises(UnsupportedArchitecture) as exc:
        parse("gpt_oss_bad_layer_types")
    assert exc.value.missing == ("layer_types entries ['linear_attention'] (only full_attention and "
                                 "sliding_attention are planned)",)


def test_malformed_values_are_named() -> None:
    config = raw("llama") | {"hidden_size": "4096", "num_key_value_heads": -1}
    with pytest.raises(UnsupportedArchitecture) as exc:
        model_from_hf_config(config, name="bad", source="s")
    assert exc.value.missing == ("hidden_size (not a non-negative integer: '4096')",
                                 "num_key_value_heads (not a non-negative integer: -1)")


def test_moe_config_without_expert_count_is_refused() -> None:
    config = {k: v for k, v in raw("mixtral").items() if k != "num_local_experts"}
    with pytest.raises(UnsupportedArchitecture) as exc:
        model_from_hf_config(config, name="m", source="s")
    assert exc.value.missing == ("num_local_experts",)


def test_malformed_quantization_config_is_named() -> None:
    with pytest.raises(UnsupportedQuantization, match="not an object"):
        parse_quantization_config("awq")
    with pytest.raises(UnsupportedQuantization, match="no weights scheme"):
        parse_quantization_config({"quant_method": "compressed-tensors", "config_groups": {}})
    with pytest.raises(UnsupportedQuantization, match="quant_algo 'INT4_AWQ'"):
        parse_quantization_config({"quant_method": "modelopt", "quant_algo": "INT4_AWQ"})
    with pytest.raises(UnsupportedQuantization, match="malformed"):
        parse_quantization_config({"quant_method": "awq", "bits": "four"})


def test_fixtures_dir_exists() -> None:
    assert isinstance(CONFIGS, Path) and len(list(CONFIGS.glob("*.json"))) >= 20


def test_an_explicit_layer_types_list_wins_for_every_family() -> None:
    config = raw("gemma2") | {"layer_types": ["full_attention"] * 41 + ["sliding_attention"]}
    arch = model_from_hf_config(config, name="g", source="s")
    assert arch.num_sliding_layers == 1 and arch.layer_kinds[-1] == "sliding"
    qwen3 = raw("qwen3") | {"layer_types": ["full_attention"] * 64}
    assert not model_from_hf_config(qwen3, name="q", source="s").has_sliding_window
