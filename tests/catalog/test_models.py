"""The model catalog: every entry sourced, parameter counts from the config match the official ones."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from deployc.catalog import CatalogModel, load_models, param_counts, resolve_model
from deployc.catalog.lookup import normalise

MODELS = load_models()
BY_NAME = {m.name: m for m in MODELS}
MOE = [m for m in MODELS if m.arch.is_moe]
# Parameter counts the research reference computed from the same configs (catalog.json computed_params).
REFERENCE_PARAMS = {
    "Llama-2-7B": 6_738_415_616,
    "Llama-2-13B": 13_015_864_320,
    "Llama-2-70B": 68_976_648_192,
    "Llama-3.1-8B": 8_030_261_248,
    "Llama-3.1-70B": 70_553_706_496,
    "Llama-3.1-405B": 405_853_388_800,
    "Llama-3.3-70B": 70_553_706_496,
    "Qwen2.5-7B": 7_615_616_512,
    "Qwen2.5-14B": 14_770_033_664,
    "Qwen2.5-32B": 32_763_876_352,
    "Qwen2.5-72B": 72_706_203_648,
    "Qwen3-8B": 8_190_735_360,
    "Qwen3-32B": 32_762_123_264,
    "Qwen3-30B-A3B": 30_532_122_624,
    "Qwen3-235B-A22B": 235_093_634_560,
    "Mistral-7B-v0.3": 7_248_023_552,
    "Mixtral-8x7B": 46_702_792_704,
    "Mixtral-8x22B": 140_620_634_112,
    "DeepSeek-V3": 671_026_419_200,
    "DeepSeek-R1": 671_026_419_200,
    "gpt-oss-20b": 20_914_757_184,
    "gpt-oss-120b": 116_829_156_672,
    "Gemma-2-9B": 9_241_705_984,
    "Gemma-2-27B": 27_227_128_320,
    "Gemma-3-27B": 27_009_346_304,
    "Phi-3-mini": 3_821_079_552,
    "Phi-3-medium": 13_960_238_080,
}


def test_catalog_has_every_reference_model() -> None:
    assert set(REFERENCE_PARAMS) <= set(BY_NAME)
    assert len(MODELS) >= 27


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.name)
def test_total_params_match_the_official_count_within_2_percent(model: CatalogModel) -> None:
    computed_b = param_counts(model.arch).total / 1e9
    assert computed_b == pytest.approx(model.official_params_b, rel=0.02), model.official_note


@pytest.mark.parametrize("model", MOE, ids=lambda m: m.name)
def test_active_params_match_the_official_count_within_2_percent(model: CatalogModel) -> None:
    counts = param_counts(model.arch)
    # gpt-oss counts the unembedding but not the input embedding as active (reference pitfall 11)
    active = counts.active - (counts.embedding if model.active_excludes_input_embedding else 0)
    assert model.official_active_b is not None
    assert active / 1e9 == pytest.approx(model.official_active_b, rel=0.02)


@pytest.mark.parametrize(("name", "expected"), sorted(REFERENCE_PARAMS.items()))
def test_param_counts_reproduce_the_reference_exactly(name: str, expected: int) -> None:
    assert param_counts(BY_NAME[name].arch).total == expected


def test_llama_2_7b_is_checked_against_6_74b_not_its_7b_label() -> None:
    model = BY_NAME["Llama-2-7B"]
    assert model.official_params_b == 6.74
    assert "7B" in model.official_note and any("label rounding" in s for s in model.sources)
    total = param_counts(model.arch).total
    assert total == 6_738_415_616
    assert total / 7e9 - 1 == pytest.approx(-0.0374, abs=1e-4)  # the label itself would fail the 2% check


def test_param_breakdown_adds_up() -> None:
    for model in MODELS:
        c = param_counts(model.arch)
        assert c.total == c.embedding + c.lm_head + c.attention_total + c.dense_mlp_total + c.moe_total + c.norms_total
        assert c.non_embedding == c.total - c.embedding - c.lm_head
        assert c.active <= c.total
        assert (c.active < c.total) == model.arch.is_moe


def test_moe_breakdowns_match_the_reference() -> None:
    v3 = param_counts(BY_NAME["DeepSeek-V3"].arch)
    assert (v3.per_layer_attention, v3.per_layer_mlp, v3.per_layer_moe) == (187_107_328, 396_361_728, 11_320_164_608)
    assert v3.active == 37_552_297_472
    oss = param_counts(BY_NAME["gpt-oss-120b"].arch)
    assert (oss.per_layer_attention, oss.per_expert) == (26_550_144, 24_891_840)
    assert oss.active == 5_711_982_912  # both embeddings; OpenAI's 5.1B leaves the input embedding out
    assert BY_NAME["DeepSeek-V3"].arch.mtp_layers == 1  # the 14B MTP module is not counted


def test_gemma_3_vision_tower_is_sized_from_its_config() -> None:
    counts = param_counts(BY_NAME["Gemma-3-27B"].arch)
    assert counts.vision == 423_060_336  # SigLIP 0.417B (reference) + the 5376-wide projector
    assert (counts.total + counts.vision) / 1e9 == pytest.approx(27.43, abs=0.01)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.name)
def test_every_model_is_sourced(model: CatalogModel) -> None:
    assert model.sources
    assert model.arch.source
    assert any(s.startswith("official params:") for s in model.sources)


def test_no_alias_names_two_models() -> None:
    owner: dict[str, str] = {}
    for model in MODELS:
        for name in model.names:
            assert owner.setdefault(normalise(name), model.name) == model.name, name


@pytest.mark.parametrize(("ref", "name"), [
    ("meta-llama/Llama-3.1-8B-Instruct", "Llama-3.1-8B"),
    ("meta-llama/Llama-3.1-70B-Instruct", "Llama-3.1-70B"),
    ("meta-llama/Llama-3.1-405B-Instruct", "Llama-3.1-405B"),
    ("Qwen/Qwen3-32B", "Qwen3-32B"),
    ("Qwen/Qwen2.5-32B-Instruct", "Qwen2.5-32B-Instruct"),
    ("openai/gpt-oss-120b", "gpt-oss-120b"),
    ("deepseek-ai/DeepSeek-R1", "DeepSeek-R1"),
    ("google/gemma-3-27b-it", "Gemma-3-27B"),
    ("llama-3.1-8b", "Llama-3.1-8B"),
    ("QWEN3-30B-A3B", "Qwen3-30B-A3B"),
])
def test_hf_repo_ids_and_spellings_resolve_to_catalog_models(ref: str, name: str) -> None:
    assert resolve_model(ref, base_dir=Path(), allow_download=False) is BY_NAME[name].arch


def test_qwen2_5_instruct_configs_keep_32k_positions() -> None:
    base, instruct = BY_NAME["Qwen2.5-32B"].arch, BY_NAME["Qwen2.5-32B-Instruct"].arch
    assert (base.max_position_embeddings, instruct.max_position_embeddings) == (131_072, 32_768)
    assert param_counts(base) == param_counts(instruct)


def test_plugin_models_resolve_after_the_builtins() -> None:
    extra = attrs.evolve(BY_NAME["Qwen3-8B"], name="Acme-8B", aliases=("acme/acme-8b",))
    assert resolve_model("acme/acme-8b", base_dir=Path(), extra=[extra], allow_download=False) is extra.arch


def test_model_data_files_keep_hf_keys_and_sources() -> None:
    from deployc.catalog.lookup import data_files, load_data

    files = data_files("models")
    assert len(files) == len(MODELS)
    for path in files:
        entry = load_data(path)
        assert {"name", "aliases", "config", "config_source", "official_params"} <= set(entry), path
        assert entry["config_source"] and entry["official_params"]["source"], path
        config = entry["config"]
        assert "architectures" in config and "model_type" in config, path
        assert not isinstance(config.get("layer_types"), str), path  # a list, as HF writes it
