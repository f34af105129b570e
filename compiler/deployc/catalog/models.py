"""The model catalog and model resolution: a spec's ``model.id`` / ``model.config`` to a ModelArch.

Catalog models live one per file in ``data/models/*.json`` with the Hugging Face config verbatim
(keys as HF writes them), its source and the official parameter count. Resolution tries, in
order: catalog name or alias; a local ``config.json`` (file or directory); the local Hugging Face
cache; a download with huggingface_hub when allowed. Re-exports the architecture types, the
config parser and the parameter counts so callers import one module.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from attrs import field, frozen

from deployc.catalog import hf
from deployc.catalog.arch import CheckpointQuant, ModelArch, strings
from deployc.catalog.hf_config import UnsupportedArchitecture, model_from_hf_config, supported_model_types
from deployc.catalog.lookup import CatalogLookupError, NameIndex, data_files, load_data, suggest
from deployc.catalog.params import ParamCounts, param_counts

__all__ = [
    "CatalogModel", "CheckpointQuant", "ModelArch", "ModelResolutionError", "ParamCounts",
    "UnsupportedArchitecture", "load_models", "model_from_hf_config", "param_counts", "resolve_model",
    "supported_model_types",
]


@frozen(kw_only=True)
class CatalogModel:
    """A model shipped in the catalog: its architecture and the official parameter figures to check it by."""

    name: str
    aliases: tuple[str, ...] = field(converter=strings)
    arch: ModelArch
    official_params_b: float
    official_active_b: float | None = None
    official_note: str = ""
    active_excludes_input_embedding: bool = False  # gpt-oss counts the unembedding only
    sources: tuple[str, ...] = field(default=(), converter=strings)
    notes: str = ""

    @property
    def names(self) -> tuple[str, ...]:
        """The catalog name and every alias (HF repo ids and common spellings)."""
        return (self.name, *self.aliases)


class ModelResolutionError(CatalogLookupError):
    """A model reference that is neither in the catalog nor a readable config; says what was tried."""

    def __init__(self, name: str, tried: tuple[str, ...], suggestions: tuple[str, ...] = ()) -> None:
        self.tried = tried
        super().__init__("model", name, suggestions, detail="; ".join(tried))


def catalog_model_from_entry(entry: Mapping[str, Any]) -> CatalogModel:
    """Build a :class:`CatalogModel` from one ``data/models/*.json`` document."""
    official = entry["official_params"]
    sources = tuple(entry["config_source"]) + tuple(f"official params: {s}" for s in official["source"])
    arch = model_from_hf_config(entry["config"], name=entry["name"], source="; ".join(entry["config_source"]))
    return CatalogModel(
        name=entry["name"], aliases=tuple(entry.get("aliases", ())), arch=arch,
        official_params_b=float(official["total_b"]), official_active_b=official.get("active_b"),
        official_note=official.get("note", ""),
        active_excludes_input_embedding=official.get("active_convention") == "excludes_input_embedding",
        sources=sources, notes=entry.get("notes", ""),
    )


@cache
def load_models() -> tuple[CatalogModel, ...]:
    """Every model in the built-in catalog, sorted by file name."""
    return tuple(catalog_model_from_entry(load_data(path)) for path in data_files("models"))


def _index(extra: tuple[CatalogModel, ...]) -> NameIndex[CatalogModel]:
    return NameIndex("model", (*load_models(), *extra), lambda m: m.names)


def _read_config(path: Path, *, name: str, description: str) -> ModelArch:
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelResolutionError(name, (f"{description}: cannot read it as JSON ({exc})",)) from exc
    if not isinstance(config, Mapping):
        raise ModelResolutionError(name, (f"{description}: not a JSON object",))
    return model_from_hf_config(config, name=name, source=description)


def _local_config(ref: str, base_dir: Path) -> Path | None:
    path = Path(ref).expanduser()
    path = path if path.is_absolute() else base_dir / path
    if path.is_file():
        return path
    if path.is_dir() and (path / "config.json").is_file():
        return path / "config.json"
    return None


def resolve_model(ref: str, *, base_dir: Path, extra: Iterable[CatalogModel] = (),
                  allow_download: bool = True) -> ModelArch:
    """The architecture ``ref`` names: a catalog name/alias, a local config, or a Hugging Face repo id.

    Order: catalog (case-, dash- and space-insensitive) → a local path (a ``config.json`` file or a
    directory holding one; relative to ``base_dir``) → ``org/name`` in the local Hugging Face cache →
    a download with huggingface_hub when ``allow_download``, the package is installed and
    ``HF_HUB_OFFLINE`` is unset. Raises :class:`ModelResolutionError` (a CatalogLookupError) saying
    what was tried, with did-you-mean over catalog names, or :class:`UnsupportedArchitecture`.
    """
    extra = tuple(extra)
    index = _index(extra)
    found = index.find(ref)
    if found is not None:
        return found.arch
    local = _local_config(ref, base_dir)
    if local is not None:
        name = local.parent.name if local.name == "config.json" else local.stem
        # Named as the spec names it (relative to the spec), so plans do not depend on where the tree lives.
        shown = ref if not Path(ref).is_absolute() else str(local)
        return _read_config(local, name=name or ref, description=f"config.json at {shown}")
    tried = [f"not a catalog model or alias, and no file or directory {base_dir / ref}"]
    if hf.looks_like_repo_id(ref):
        cached = hf.cached_config(ref)
        if cached is not None:
            return _read_config(cached.path, name=ref, description=cached.description)
        tried.append(f"not in the Hugging Face cache {hf.hub_cache_dir()}")
        if not allow_download:
            tried.append("downloading is disabled")
        elif hf.offline():
            tried.append("HF_HUB_OFFLINE is set")
        else:
            downloaded = hf.download_config(ref)
            if isinstance(downloaded, hf.Found):
                return _read_config(downloaded.path, name=ref, description=downloaded.description)
            tried.append(downloaded)
    raise ModelResolutionError(ref, tuple(tried), suggest(ref, index.names))
