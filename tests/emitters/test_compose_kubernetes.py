"""Compose and Kubernetes renderers: escaping, references, schemas."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

from deployc.contract.toolkit import EnvRef
from deployc.contract.toolkit.compose import compose_document, compose_service, compose_word
from deployc.contract.toolkit.docker import DockerRun, HealthCheck
from deployc.contract.toolkit.kubernetes import (
    ContainerInput,
    Probe,
    deployment,
    dns_label,
    dump_documents,
    kube_word,
    service,
)
from tests.conftest import REPO

RUN = DockerRun(name="srv", image="vllm/vllm-openai:v0.33.0", gpu_device_ids=(0,), ports=(8000,),
                volumes=(("/data/a:b $x", "/root/.cache/huggingface", "cache"),),
                env_passthrough=(("HF_TOKEN", "token"),), ulimits=(("memlock=-1", "rdma"),),
                cap_add=(("IPC_LOCK", "rdma"),), health=HealthCheck(port=8000))


def test_compose_words() -> None:
    assert compose_word("a$b$$c") == "a$$b$$$$c"
    assert compose_word(EnvRef("HEAD", "set HEAD")) == "${HEAD:?set HEAD}"


def test_compose_document_is_valid() -> None:
    service_doc = compose_service(RUN, ["model $x", EnvRef("HEAD", "set HEAD")])
    text = compose_document({"srv": service_doc}, ["a header line"])
    assert text.startswith("# a header line\nservices:\n")
    doc = yaml.safe_load(text)
    schema = json.loads((REPO / "tests" / "fixtures" / "schemas" / "compose-spec.json").read_text())
    jsonschema.Draft7Validator(schema).validate(doc)
    svc = doc["services"]["srv"]
    assert svc["command"] == ["model $$x", "${HEAD:?set HEAD}"]
    assert svc["volumes"] == [{"type": "bind", "source": "/data/a:b $$x", "target": "/root/.cache/huggingface"}]
    assert svc["ulimits"] == {"memlock": -1} and svc["cap_add"] == ["IPC_LOCK"]
    assert "&id" not in text


def test_kubernetes_words_and_names() -> None:
    assert kube_word("$(X) $Y") == "$$(X) $$Y"
    assert kube_word(EnvRef("LWS_WORKER_INDEX")) == "$(LWS_WORKER_INDEX)"
    assert dns_label("My_Spec", "pool") == "my-spec-pool"
    long = dns_label("a" * 60, "b" * 10)
    assert len(long) == 63 and long == dns_label("a" * 60, "b" * 10)


def test_kubernetes_documents_validate() -> None:
    labels = {"app": "x"}
    pod = ContainerInput(name="vllm", image="img", args=("m", "--port", "8000"), gpus=2, port=8000, shm_size="8Gi",
                         secret_env=(("HF_TOKEN", "hf-token", "token"),), cache_host_path="/data/hf",
                         probe=Probe(path="/health", port=8000))
    docs: list[dict[str, Any]] = [deployment("x", "ns", labels, 3, pod), service("x", "ns", labels, 8000)]
    for doc in yaml.safe_load_all(dump_documents(docs)):
        kubernetes_validate.validate(doc, "1.32", strict=True)
    spec = docs[0]["spec"]["template"]["spec"]
    assert spec["volumes"][0] == {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "8Gi"}}
    assert spec["containers"][0]["startupProbe"]["failureThreshold"] == 180


def test_every_probe_states_its_timeout() -> None:
    pod = ContainerInput(name="vllm", image="img", args=("m",), gpus=1, port=8000, shm_size="8Gi",
                         probe=Probe(path="/health", port=8000))
    body = deployment("x", None, {"app": "x"}, 1, pod)["spec"]["template"]["spec"]["containers"][0]
    assert {kind: body[kind].get("timeoutSeconds") for kind in ("startupProbe", "readinessProbe", "livenessProbe")} \
        == {"startupProbe": 10, "readinessProbe": 10, "livenessProbe": 10}
