"""Hardware and model facts, each with its source, and the name resolution the spec needs.

GPUs (:func:`resolve_gpu`), links and measured collectives (:func:`resolve_link`), and models
(:func:`resolve_model`: catalog, local config.json, Hugging Face cache or Hub), plus the
architecture type every planner function takes (:class:`ModelArch`) and its parameter counts.
"""

from deployc.catalog.arch import CheckpointQuant, ModelArch
from deployc.catalog.gpus import GPU, NVLinkSpec, TFlops, custom_gpu, load_gpus, resolve_gpu
from deployc.catalog.hf_config import UnsupportedArchitecture, model_from_hf_config, supported_model_types
from deployc.catalog.hf_quant import UnsupportedQuantization, parse_quantization_config
from deployc.catalog.interconnects import (
    AllReduceMeasurement,
    LatencyMeasurement,
    Link,
    allreduce_measurements,
    latency_measurements,
    load_links,
    resolve_link,
)
from deployc.catalog.lookup import CatalogLookupError, suggest
from deployc.catalog.models import CatalogModel, ModelResolutionError, load_models, resolve_model
from deployc.catalog.params import ParamCounts, param_counts

__all__ = [
    "GPU",
    "AllReduceMeasurement",
    "CatalogLookupError",
    "CatalogModel",
    "CheckpointQuant",
    "LatencyMeasurement",
    "Link",
    "ModelArch",
    "ModelResolutionError",
    "NVLinkSpec",
    "ParamCounts",
    "TFlops",
    "UnsupportedArchitecture",
    "UnsupportedQuantization",
    "allreduce_measurements",
    "custom_gpu",
    "latency_measurements",
    "load_gpus",
    "load_links",
    "load_models",
    "model_from_hf_config",
    "param_counts",
    "parse_quantization_config",
    "resolve_gpu",
    "resolve_link",
    "resolve_model",
    "suggest",
    "supported_model_types",
]
