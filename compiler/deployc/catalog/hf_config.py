"""Reading a Hugging Face ``config.json`` into a :class:`~deployc.catalog.arch.ModelArch`.

The rules per ``model_type`` (which biases exist, how many norms, which layers slide, which are
MoE, and the defaults transformers applies to absent keys) live in ``data/hf_families.json``.
Anything the planner cannot size exactly raises :class:`UnsupportedArchitecture` naming the
missing or unsupported keys: a wrong number is worse than no number.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from deployc.catalog.arch import CheckpointQuant, LayerKind, MlpKind, ModelArch
from deployc.catalog.hf_quant import UnsupportedQuantization, parse_quantization_config
from deployc.catalog.lookup import load_data

REQUIRED = ("num_hidden_layers", "hidden_size", "num_attention_heads", "vocab_size",
            "max_position_embeddings")
MLA_REQUIRED = ("kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim")
_DTYPES = {"bfloat16": "bfloat16", "bf16": "bfloat16", "float16": "float16", "fp16": "float16",
           "half": "float16", "float32": "float32", "fp32": "float32", "float": "float32"}


class UnsupportedArchitecture(Exception):
    """A config deployc cannot size: an unknown architecture, or keys it needs are missing or unsupported."""

    def __init__(self, model: str, architectures: tuple[str, ...], missing: tuple[str, ...]) -> None:
        self.model = model
        self.architectures = architectures
        self.missing = missing
        arch = ", ".join(architectures) or "no 'architectures'"
        super().__init__(f"cannot plan {model} ({arch}): {'; '.join(missing)}")


@cache
def _families() -> Mapping[str, Any]:
    data: Mapping[str, Any] = load_data("hf_families.json")
    return data


def supported_model_types() -> tuple[str, ...]:
    """The ``model_type`` values deployc can size."""
    return tuple(sorted(_families()["families"]))


def _family_for(cfg: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]] | None:
    data = _families()
    model_type = str(cfg.get("model_type", ""))
    model_type = data["model_type_aliases"].get(model_type, model_type)
    if model_type in data["families"]:
        return model_type, data["families"][model_type]
    for key, traits in data["families"].items():  # configs without model_type: match the class name
        if set(cfg.get("architectures") or ()) & set(traits["architectures"]):
            return key, traits
    return None


def _flatten(config: Mapping[str, Any]) -> dict[str, Any]:
    """Multimodal configs nest the language model under ``text_config``; its keys win."""
    text = config.get("text_config")
    merged = {k: v for k, v in config.items() if k not in ("text_config", "vision_config")}
    if isinstance(text, Mapping):
        merged.update(text)
    return merged


class _Reader:
    """Typed access to one flattened config that records every missing or malformed key."""

    def __init__(self, cfg: Mapping[str, Any], defaults: Mapping[str, Any]) -> None:
        self.cfg = cfg
        self.defaults = defaults
        self.missing: list[str] = []

    def raw(self, key: str) -> Any:
        value = self.cfg.get(key)
        return self.defaults.get(key) if value is None else value

    def int(self, key: str, *, required: bool = True, default: int = 0) -> int:
        value = self.raw(key)
        if value is None:
            if required:
                self.missing.append(key)
            return default
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            self.missing.append(f"{key} (not a non-negative integer: {value!r})")
            return default
        return value

    def flag(self, key: str) -> bool:
        return bool(self.raw(key))


def _layer_kinds(r: _Reader, rule: str, layers: int, notes: list[str]) -> tuple[list[LayerKind], int | None]:
    window = r.raw("sliding_window")
    full: list[LayerKind] = ["full"] * layers
    if rule != "ignored" and r.raw("layer_types") is not None:
        rule = "layer_types"  # newer transformers write the per-layer list for every family; it wins
    if rule == "layer_types":
        types = r.raw("layer_types")
        if not isinstance(types, list) or len(types) != layers:
            r.missing.append(f"layer_types (a list of {layers} entries)")
            return full, None
        unknown = sorted({t for t in types if t not in ("full_attention", "sliding_attention")})
        if unknown:
            r.missing.append(f"layer_types entries {unknown} (only full_attention and sliding_attention "
                             "are planned)")
            return full, None
        kinds: list[LayerKind] = ["sliding" if t == "sliding_attention" else "full" for t in types]
    elif rule == "alternate":
        kinds = ["sliding" if i % 2 == 0 else "full" for i in range(layers)]
    elif rule == "pattern":
        pattern = r.int("sliding_window_pattern")
        kinds = ["full" if pattern and (i + 1) % pattern == 0 else "sliding" for i in range(layers)]
    elif rule == "uniform" and window:
        kinds = ["sliding"] * layers
    elif rule == "qwen_max_window" and window and r.flag("use_sliding_window"):
        start = r.int("max_window_layers", required=False, default=layers)
        kinds = ["sliding" if i >= start else "full" for i in range(layers)]
    else:
        if rule == "ignored" and window:
            notes.append(f"config sets sliding_window={window}; engines differ on honouring it, so every "
                         "layer is planned as full attention (conservative: more KV cache, never less)")
        return full, None
    if "sliding" in kinds and not (isinstance(window, int) and window > 0):
        r.missing.append("sliding_window (a positive integer, needed by the sliding layers)")
        return full, None
    return kinds, (window if "sliding" in kinds else None)


def _mlp_kinds(r: _Reader, rule: str, layers: int, experts: int) -> list[MlpKind]:
    if rule == "none" or experts == 0:
        return ["dense"] * layers
    if rule == "deepseek":
        first, freq = r.int("first_k_dense_replace"), max(1, r.int("moe_layer_freq"))
        return ["moe" if i >= first and i % freq == 0 else "dense" for i in range(layers)]
    if rule == "qwen3_moe":
        step = max(1, r.int("decoder_sparse_step"))
        dense_only = set(r.raw("mlp_only_layers") or ())
        return ["moe" if i not in dense_only and (i + 1) % step == 0 else "dense" for i in range(layers)]
    return ["moe"] * layers  # mixtral, gpt_oss: every layer


def _moe_fields(r: _Reader, rule: str) -> dict[str, Any]:
    if rule == "none":
        return {}
    count_key = {"mixtral": "num_local_experts", "gpt_oss": "num_local_experts", "qwen3_moe": "num_experts",
                 "deepseek": "n_routed_experts"}[rule]
    experts = r.int(count_key)
    top_k = r.int("num_experts_per_tok", required=r.raw("experts_per_token") is None)
    top_k = top_k or r.int("experts_per_token", required=False)
    moe_key = "moe_intermediate_size" if rule in ("qwen3_moe", "deepseek") else "intermediate_size"
    moe_inter = r.int(moe_key)
    shared = r.int("n_shared_experts") if rule == "deepseek" else 0
    return {"num_experts": experts, "experts_per_token": top_k, "moe_intermediate_size": moe_inter,
            "num_shared_experts": shared, "shared_expert_intermediate_size": shared * moe_inter,
            "first_dense_layers": r.int("first_k_dense_replace") if rule == "deepseek" else 0,
            "expert_bias": rule == "gpt_oss",
            "router_bias": rule == "gpt_oss" or r.raw("topk_method") == "noaux_tc"}


def _mla_fields(r: _Reader) -> dict[str, Any]:
    fields = {key: r.int(key) for key in MLA_REQUIRED}
    q_lora = r.cfg.get("q_lora_rank", r.defaults.get("q_lora_rank"))  # explicit null: no q compression
    fields["q_lora_rank"] = 0 if q_lora is None else r.int("q_lora_rank")
    return fields


def _head_dim(r: _Reader, hidden: int, heads: int) -> int:
    explicit = r.raw("head_dim")
    if explicit is not None:
        return r.int("head_dim")
    if heads and hidden % heads == 0:
        return hidden // heads
    r.missing.append("head_dim (hidden_size is not a multiple of num_attention_heads)")
    return 0


def _checkpoint_dtype(cfg: Mapping[str, Any], notes: list[str]) -> str:
    raw = cfg.get("torch_dtype") or cfg.get("dtype")
    if raw is None:
        notes.append("config has no torch_dtype; bfloat16 assumed for the checkpoint")
        return "bfloat16"
    return _DTYPES.get(str(raw).removeprefix("torch."), str(raw))


def _siglip_params(vision: Mapping[str, Any], text_hidden: int) -> int:
    """SigLIP vision tower (encoder, patch and position embeddings, post-norm) + Gemma 3 projector."""
    d, inter, layers = vision["hidden_size"], vision["intermediate_size"], vision["num_hidden_layers"]
    patch, image, channels = vision["patch_size"], vision["image_size"], vision.get("num_channels", 3)
    per_layer = 4 * (d * d + d) + (d * inter + inter) + (inter * d + d) + 2 * 2 * d
    embeddings = channels * patch * patch * d + d + (image // patch) ** 2 * d
    return int(layers * per_layer + embeddings + 2 * d + d * text_hidden + d)


def _vision_params(config: Mapping[str, Any], hidden: int, notes: list[str]) -> int:
    vision = config.get("vision_config")
    if not isinstance(vision, Mapping):
        return 0
    needed = ("hidden_size", "intermediate_size", "num_hidden_layers", "patch_size", "image_size")
    if vision.get("model_type") == "siglip_vision_model" and all(k in vision for k in needed):
        return _siglip_params(vision, hidden)
    notes.append("vision tower present but not sized (only SigLIP is); its weights are not counted")
    return 0


def model_from_hf_config(config: Mapping[str, Any], *, name: str, source: str) -> ModelArch:
    """The :class:`ModelArch` a Hugging Face ``config.json`` describes.

    Handles nested ``text_config`` (Gemma 3), explicit ``head_dim`` versus hidden/heads,
    ``layer_types`` / ``sliding_window_pattern`` / Gemma 2 alternation, MoE and MLA keys and
    ``quantization_config``. HF's own defaults apply where a key is absent (for example
    ``num_key_value_heads`` = ``num_attention_heads``). Raises :class:`UnsupportedArchitecture`
    naming what is missing or unsupported.
    """
    architectures = tuple(str(a) for a in (config.get("architectures") or ()))
    cfg = _flatten(config)
    found = _family_for(cfg)
    if found is None:
        model_type = cfg.get("model_type")
        raise UnsupportedArchitecture(name, architectures, (
            f"model_type {model_type!r} is not supported (supported: {', '.join(supported_model_types())})",))
    _, traits = found
    r = _Reader(cfg, traits["defaults"])
    notes: list[str] = []
    values = _core_fields(r, traits, notes)
    try:
        quant: CheckpointQuant | None = parse_quantization_config(cfg.get("quantization_config"))
    except UnsupportedQuantization as exc:
        r.missing.append(str(exc))
        quant = None
    softcaps = _softcap(r, "attn_logit_softcapping"), _softcap(r, "final_logit_softcapping")
    if r.missing:
        raise UnsupportedArchitecture(name, architectures, tuple(r.missing))
    scaling = cfg.get("rope_scaling")
    factor = scaling.get("factor") if isinstance(scaling, Mapping) else None
    return ModelArch(
        name=name, family=traits["family"], source=source, **values,
        checkpoint_dtype=_checkpoint_dtype(cfg, notes), checkpoint_quant=quant,
        rope_scaling_factor=float(factor) if isinstance(factor, int | float) else None,
        attn_logit_softcap=softcaps[0], final_logit_softcap=softcaps[1],
        mtp_layers=r.int("num_nextn_predict_layers", required=False),
        vision_params=_vision_params(config, values["hidden_size"], notes), notes=tuple(notes),
    )


def _softcap(r: _Reader, key: str) -> float | None:
    """A soft-capping value: None when the config sets none (absent without a family default, null, or 0)."""
    value = r.cfg[key] if key in r.cfg else r.defaults.get(key)  # an explicit null turns a default off
    if value is None or value == 0:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        r.missing.append(f"{key} (not a positive number: {value!r})")
        return None
    return float(value)


def _core_fields(r: _Reader, traits: Mapping[str, Any], notes: list[str]) -> dict[str, Any]:
    layers, hidden, heads = (r.int(k) for k in REQUIRED[:3])
    vocab, max_pos = r.int("vocab_size"), r.int("max_position_embeddings")
    moe = _moe_fields(r, traits["moe"])
    mlp_kinds = tuple(_mlp_kinds(r, traits["moe"], layers, moe.get("num_experts", 0)))
    inter = r.int("intermediate_size", required="dense" in mlp_kinds)
    mla = _mla_fields(r) if traits["attention"] == "mla" else {}
    kv_heads = heads if mla else r.int("num_key_value_heads", required=False, default=heads)
    head_dim = mla["qk_nope_head_dim"] + mla["qk_rope_head_dim"] if mla else _head_dim(r, hidden, heads)
    layer_kinds, window = _layer_kinds(r, traits["sliding"], layers, notes)
    bias = r.flag("attention_bias")
    if r.flag("mlp_bias"):
        r.missing.append("mlp_bias (MLP biases are not planned)")
    return {
        "num_layers": layers, "hidden_size": hidden, "intermediate_size": inter,
        "num_attention_heads": heads, "num_kv_heads": kv_heads, "head_dim": head_dim, "vocab_size": vocab,
        "max_position_embeddings": max_pos, "tie_word_embeddings": r.flag("tie_word_embeddings"),
        "attention_bias": {"always": True, "never": False}.get(traits["qkv_bias"], bias),
        "attention_out_bias": {"always": True, "never": False}.get(traits["out_bias"], bias),
        "qk_norm": bool(traits["qk_norm"]), "attention_sinks": bool(traits.get("attention_sinks", False)),
        "norms_per_layer": int(traits["norms_per_layer"]), **moe, **mla,
        "mlp_kinds": mlp_kinds,
        "layer_kinds": tuple(layer_kinds), "sliding_window": window,
    }
