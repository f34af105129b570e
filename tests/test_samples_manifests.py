"""Every sample's Compose and Kubernetes files, for every built-in backend, pass the same schema checks.

The checks are the vLLM plugin's (tests/plugins/vllm/test_manifests.py): the Compose
specification's JSON Schema, ``kubernetes_validate`` (strict, Kubernetes 1.32) for core kinds,
the LeaderWorkerSet CRD schema for LWS, and ``docker-compose config`` where it is installed.
A sample a backend cannot serve (the hardware or the checkpoint format) is listed with why.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from deployc.api import build
from deployc.diagnostics import DeploycError
from tests.conftest import REPO, SAMPLES
from tests.system_tools import tool_or_skip

SCHEMAS = REPO / "tests" / "fixtures" / "schemas"
K8S_VERSION = "1.32"
BACKENDS = ("vllm", "sglang", "trtllm")
CANNOT_SERVE = {  # (sample, backend) → words of the refusal
    ("qwen7b-awq-t4-edge", "trtllm"): "supports Ampere, Ada, Hopper and Blackwell",
    ("llama70b-awq-rtx-pro-6000", "trtllm"): "awq checkpoints are not among them",
    ("llama70b-fp8-mi300x-chat", "trtllm"): "runs only on NVIDIA GPUs; MI300X is not one",
    ("deepseek-r1-mi300x8", "trtllm"): "runs only on NVIDIA GPUs; MI300X is not one",
    ("qwen7b-awq-t4-edge", "sglang"): "have no sm_75 images for some ops every model runs",
}
COMPOSE = jsonschema.Draft7Validator(json.loads((SCHEMAS / "compose-spec.json").read_text()))
LWS = jsonschema.Draft7Validator(json.loads((SCHEMAS / "leaderworkerset-v1.schema.json").read_text()))


_BUILT: dict[tuple[str, str], tuple[Path, dict[str, str]] | DeploycError] = {}


def _files(sample: Path, backend: str, root: Path) -> tuple[Path, dict[str, str]]:
    """The build of a sample with a backend (built once per test session), or raise its error."""
    key = (sample.stem, backend)
    if key not in _BUILT:
        out = root / f"{sample.stem}-{backend}"
        try:
            # The manifests are checked whatever the simulated verdict of a forced backend.
            build(sample, out, backend=backend, display_name=sample.name, accept_slo_miss=True)
            _BUILT[key] = (out, {str(p.relative_to(out)): p.read_text() for p in sorted(out.rglob("*"))
                                 if p.is_file()})
        except DeploycError as exc:
            _BUILT[key] = exc
    result = _BUILT[key]
    if isinstance(result, DeploycError):
        raise result
    return result


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("builds")


def _check_kubernetes(docs: list[dict[str, Any]]) -> list[str]:
    kinds = []
    for doc in docs:
        kinds.append(doc["kind"])
        if doc["kind"] == "LeaderWorkerSet":
            assert list(LWS.iter_errors(doc)) == []
        else:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    return kinds


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("sample", SAMPLES, ids=[p.stem for p in SAMPLES])
def test_compose_and_kubernetes_pass_the_schema_checks(sample: Path, backend: str, root: Path) -> None:
    try:
        _out, files = _files(sample, backend, root)
    except DeploycError as exc:
        text = " ".join(f"{d.message} {d.hint or ''}" for d in exc.diagnostics)
        assert (sample.stem, backend) in CANNOT_SERVE, text
        assert CANNOT_SERVE[sample.stem, backend] in text
        return
    assert (sample.stem, backend) not in CANNOT_SERVE
    plan = json.loads(files["plan.json"])
    multi_node = any(name.startswith(("node-", "serve-slurm-", "preflight")) for name in files)
    assert ("compose.yaml" in files) != multi_node, sorted(files)
    if "compose.yaml" in files:
        doc = yaml.safe_load(files["compose.yaml"])
        assert list(COMPOSE.iter_errors(doc)) == []
        assert set(doc["services"])
    k8s = [name for name in files if name.startswith("k8s/")]
    assert k8s, f"{backend} emitted no Kubernetes manifests"
    kinds = [kind for name in k8s for kind in _check_kubernetes(list(yaml.safe_load_all(files[name])))]
    assert "Service" in kinds and ({"Deployment", "LeaderWorkerSet"} & set(kinds))
    assert ("LeaderWorkerSet" in kinds) == multi_node
    for name in ("bench.sh", "monitoring.md", "prometheus-rules.yaml"):
        assert name in files, f"{backend}: no {name}"
    assert plan["backend"]["name"] == backend


@pytest.mark.parametrize("backend", ("sglang", "trtllm"))
def test_docker_compose_reads_every_compose_file(backend: str, root: Path, tmp_path: Path) -> None:
    compose = tool_or_skip("docker-compose")
    checked = 0
    for sample in SAMPLES:
        try:
            out, files = _files(sample, backend, root)
        except DeploycError:
            continue
        if "compose.yaml" not in files:
            continue
        result = subprocess.run([compose, "-f", str(out / "compose.yaml"), "config", "-q"],
                                capture_output=True, text=True, check=False,
                                env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "HF_TOKEN": ""})
        assert result.returncode == 0, f"{sample.stem}: {result.stderr}"
        checked += 1
    assert checked >= 8


def test_the_schema_checks_bite() -> None:
    assert list(COMPOSE.iter_errors({"services": {"x": {"image": "i", "ulimit": {"memlock": -1}}}}))
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"},
                                      "data": {"a": 1}}, K8S_VERSION, strict=True)
