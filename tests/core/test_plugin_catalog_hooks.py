"""Plugins add GPUs and models to the catalog through hooks, and specs resolve them."""

from __future__ import annotations

import types
from pathlib import Path

from attrs import evolve

from deployc.api import resolve_spec
from deployc.catalog import CatalogModel, load_models, resolve_gpu
from deployc.contract.backend import BackendInfo
from deployc.plugins import PluginRegistry, module_source
from tests.conftest import MINIMAL_SPEC


def _vendor_plugin() -> types.ModuleType:
    module = types.ModuleType("acme_plugin")
    acme_gpu = evolve(resolve_gpu("H100 SXM"), name="Acme X1", aliases=("acme-x1",), nvidia_smi_names=())
    base = next(m for m in load_models() if m.name == "Llama-3.1-8B")
    acme_model = evolve(base, name="acme/tiny-llama", aliases=(), arch=evolve(base.arch, name="acme/tiny-llama"))

    def deployc_backend_info() -> BackendInfo:
        return BackendInfo(name="acme", engine="Acme", engine_version="1", image="acme/engine", image_tag="1",
                           summary="test")

    def deployc_catalog_gpus() -> list[object]:
        return [acme_gpu]

    def deployc_catalog_models() -> list[CatalogModel]:
        return [acme_model]

    module.deployc_backend_info = deployc_backend_info  # type: ignore[attr-defined]
    module.deployc_catalog_gpus = deployc_catalog_gpus  # type: ignore[attr-defined]
    module.deployc_catalog_models = deployc_catalog_models  # type: ignore[attr-defined]
    return module


def test_spec_resolves_plugin_gpu_and_model(write_spec):  # type: ignore[no-untyped-def]
    plugin = _vendor_plugin()
    registry = PluginRegistry([(module_source(plugin, "acme"), plugin)])
    path: Path = write_spec(MINIMAL_SPEC.replace('gpu = "H100 SXM"', 'gpu = "acme-x1"')
                            .replace("meta-llama/Llama-3.1-8B-Instruct", "acme/tiny-llama"))
    _, target, _ = resolve_spec(path, registry)
    assert target.gpu.name == "Acme X1"
    assert target.model.name == "acme/tiny-llama"
