"""The Target: a valid spec with every name resolved to facts (model architecture, GPU, links, load).

How a spec becomes a Target (name lookups, catalog-dependent rules) is :mod:`deployc.resolution`;
this module holds only the value, so the planner and the backends depend on it without the registry.
"""

from __future__ import annotations

from attrs import frozen

from deployc.catalog import GPU, Link, ModelArch
from deployc.spec.model import Spec


@frozen(kw_only=True)
class Target:
    """A spec with every name resolved to facts."""

    spec: Spec
    spec_file: str
    model: ModelArch
    gpu: GPU
    intra_node_link: Link
    network: Link | None
    reserved_memory_bytes: int

    @property
    def gpus_total(self) -> int:
        """All GPUs the spec gives."""
        return self.spec.hardware.gpus_per_node * self.spec.hardware.nodes
