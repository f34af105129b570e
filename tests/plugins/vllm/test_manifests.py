"""compose.yaml against the Compose Specification, Kubernetes manifests against their schemas."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from deployc.contract.backend import Emission
from deployc.planner.plan import Plan
from deployc_vllm.bench import BENCH_FLAGS, bench_words
from deployc_vllm.command import serve_command
from deployc_vllm.options import parse_options
from tests.conftest import REPO
from tests.contract_helpers import deploy
from tests.plugins.vllm.plans import HOSTILE
from tests.system_tools import tool_or_skip

SCHEMAS = REPO / "tests" / "fixtures" / "schemas"
K8S_VERSION = "1.32"


def _yaml(emission: Emission, path: str) -> list[dict[str, Any]]:
    return list(yaml.safe_load_all(next(a.content for a in emission.artifacts if a.path == path)))


def _compose_schema() -> dict[str, Any]:
    return json.loads((SCHEMAS / "compose-spec.json").read_text())


def _lws_schema() -> dict[str, Any]:
    return json.loads((SCHEMAS / "leaderworkerset-v1.schema.json").read_text())


def test_compose_files_follow_the_compose_spec(emissions: dict[str, Emission]) -> None:
    validator = jsonschema.Draft7Validator(_compose_schema())
    checked = 0
    for emission in emissions.values():
        if any(a.path == "compose.yaml" for a in emission.artifacts):
            (doc,) = _yaml(emission, "compose.yaml")
            assert list(validator.iter_errors(doc)) == []
            checked += 1
    assert checked == 8
    assert list(validator.iter_errors({"services": {"x": {"image": "i", "ipc_mode": "host"}}}))  # the schema bites


def test_compose_service(plans: dict[str, Plan], emissions: dict[str, Emission]) -> None:
    (doc,) = _yaml(emissions["a100-tp4"], "compose.yaml")
    service = doc["services"]["a100-tp4"]
    assert service["ipc"] == "host"
    assert service["deploy"]["resources"]["reservations"]["devices"] == [
        {"driver": "nvidia", "capabilities": ["gpu"], "device_ids": ["0", "1", "2", "3"]}]
    assert service["environment"] == ["HF_TOKEN"]
    assert service["healthcheck"]["test"][:3] == ["CMD", "python3", "-c"]
    plan = plans["a100-tp4"]
    assert service["command"] == list(serve_command(deploy(plan), deploy(plan).servers[0], parse_options(None)).argv)


def test_compose_escapes_dollars(plans: dict[str, Plan], emissions: dict[str, Emission]) -> None:
    (doc,) = _yaml(emissions["hostile"], "compose.yaml")
    command = doc["services"]["hostile"]["command"]
    plan = plans["hostile"]
    intended = serve_command(deploy(plan), deploy(plan).servers[0],
                             parse_options(plan.target.spec.backends["vllm"])).argv
    assert [w.replace("$$", "$") for w in command] == list(intended)
    assert command[0] == "org/" + HOSTILE.replace("$", "$$")


def test_docker_compose_reads_hostile_values_back(plans: dict[str, Plan], emissions: dict[str, Emission],
                                                  tmp_path: Path) -> None:
    docker_compose = tool_or_skip("docker-compose")
    compose = next(a.content for a in emissions["hostile"].artifacts if a.path == "compose.yaml")
    (tmp_path / "compose.yaml").write_text(compose)
    result = subprocess.run([docker_compose, "-f", str(tmp_path / "compose.yaml"), "config"], capture_output=True,
                            text=True, check=True, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    normalised = yaml.safe_load(result.stdout)["services"]["hostile"]
    plan = plans["hostile"]
    intended = serve_command(deploy(plan), deploy(plan).servers[0],
                             parse_options(plan.target.spec.backends["vllm"])).argv
    assert [w.replace("$$", "$") for w in normalised["command"]] == list(intended)
    assert normalised["volumes"][0]["source"].replace("$$", "$") == f"/data/{HOSTILE}"


def test_kubernetes_manifests_validate(emissions: dict[str, Emission]) -> None:
    lws = jsonschema.Draft7Validator(_lws_schema())
    kinds = []
    for emission in emissions.values():
        for artifact in emission.artifacts:
            if not artifact.path.startswith("k8s/"):
                continue
            for doc in yaml.safe_load_all(artifact.content):
                kinds.append(doc["kind"])
                if doc["kind"] == "LeaderWorkerSet":
                    assert list(lws.iter_errors(doc)) == []
                else:
                    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    assert sorted(set(kinds)) == ["Deployment", "LeaderWorkerSet", "Service"]


def test_kubernetes_validation_bites(emissions: dict[str, Emission]) -> None:
    deployment, _service = _yaml(emissions["h100-tp1"], "k8s/h100-tp1.yaml")
    deployment["spec"]["template"]["spec"]["containers"][0]["argz"] = ["x"]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)
    lws, _ = _yaml(emissions["two-nodes"], "k8s/llama405b-2node.yaml")
    lws["spec"]["leaderWorkerTemplate"]["restartPolicy"] = "Always"
    assert list(jsonschema.Draft7Validator(_lws_schema()).iter_errors(lws))


def test_deployment_settings(emissions: dict[str, Emission]) -> None:
    deployment, service = _yaml(emissions["pcie-dp2"], "k8s/pcie-dp2.yaml")
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["resources"] == {"limits": {"nvidia.com/gpu": 1}}
    assert {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "16Gi"}} in pod["volumes"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/health", "port": 8000}
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": 8000}
    assert container["args"][container["args"].index("--port") + 1] == "8000"
    assert service["spec"]["ports"][0]["port"] == 8000


def test_leader_worker_set(emissions: dict[str, Emission]) -> None:
    lws, service = _yaml(emissions["two-nodes"], "k8s/llama405b-2node.yaml")
    template = lws["spec"]["leaderWorkerTemplate"]
    assert template["size"] == 2
    worker_args = template["workerTemplate"]["spec"]["containers"][0]["args"]
    assert worker_args[worker_args.index("--node-rank") + 1] == "$(LWS_WORKER_INDEX)"
    assert worker_args[worker_args.index("--master-addr") + 1] == "$(LWS_LEADER_ADDRESS)"
    assert worker_args[-1] == "--headless"
    assert service["spec"]["selector"]["role"] == "leader"


def test_kubernetes_escapes_dollars(emissions: dict[str, Emission]) -> None:
    deployment, _ = _yaml(emissions["hostile"], "k8s/hostile.yaml")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[0] == "org/" + HOSTILE.replace("$", "$$")


def test_bench_flags_exist_in_vllm_bench_serve(plans: dict[str, Plan]) -> None:
    for plan in plans.values():
        servers = deploy(plan).servers
        for server in servers:
            flags = {w for line in bench_words(deploy(plan), server, 1) for w in line if isinstance(w, str)
                     and w.startswith("--")}
            assert flags <= BENCH_FLAGS


def test_prometheus_rules(emissions: dict[str, Emission]) -> None:
    (doc,) = _yaml(emissions["mixed-pools"], "prometheus-rules.yaml")
    alerts = {r["alert"]: r for r in doc["groups"][0]["rules"]}
    assert set(alerts) == {"VllmPreemptionsAtFullCache", "VllmRequestsQueued", "GpuThermalThrottle",
                           "VllmPrefixCacheHitRateLow", "VllmTtftP99AboveSlo", "VllmItlP99AboveSlo"}
    assert alerts["VllmTtftP99AboveSlo"]["expr"].endswith("> 2")
    text = next(a.content for a in emissions["t4-awq"].artifacts if a.path == "monitoring.md")
    assert "clocks_event_reasons.sw_thermal_slowdown" in text and "passive-cooled at 35 °C" in text
