"""Multi-node vLLM: VLLM_HOST_IP from hardware.network_interface, and what the Kubernetes pods need for RDMA."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import attrs
import kubernetes_validate
import pytest
import yaml

from deployc.planner.plan import Plan
from deployc.planner.types import Layout
from deployc.plugins import default_registry
from deployc_sglang.checks import check_plan as sglang_checks
from deployc_sglang.emission import emit as sglang_emit
from deployc_vllm.checks import check_plan as vllm_checks
from deployc_vllm.emission import emit
from deployc_vllm.scripts import single_interface
from tests.contract_helpers import deploy
from tests.plugins.vllm.plans import build_plan, pool, spec_dict

GIB = 1 << 30


def _two_nodes(tmp_path: Path, network: str = "roce-200g", interface: str = "ens5",
               vllm: dict[str, Any] | None = None) -> Plan:
    spec = spec_dict(name="two", model={"id": "meta-llama/Llama-3.1-405B-Instruct"},
                     hardware={"gpu": "H100 SXM", "gpus_per_node": 8, "nodes": 2, "network": network,
                               "network_interface": interface},
                     backends={"vllm": vllm or {}})
    return build_plan(tmp_path, spec, [pool("main", Layout(tp=8, pp=2, dp=1), max_model_len=16384)])


def _artifact(plan: Plan, path: str) -> str:
    return next(a.content for a in emit(deploy(plan)).artifacts if a.path == path)


@pytest.mark.parametrize(("pattern", "expected"), [
    ("eth0", "eth0"), ("=ens5", "ens5"), ("ib0,ib1", "ib0"), ("^docker,lo", None), (None, None)])
def test_single_interface(pattern: str | None, expected: str | None) -> None:
    assert single_interface(pattern) == expected


def test_node_scripts_set_vllm_host_ip_to_the_address_on_the_interface(tmp_path: Path) -> None:
    text = _artifact(_two_nodes(tmp_path), "node-1.sh")
    assert "    --env VLLM_HOST_IP \\" in text
    start = text.index("VLLM_HOST_IP=")
    snippet = text[start:text.index("export VLLM_HOST_IP", start)] + "export VLLM_HOST_IP\necho \"$VLLM_HOST_IP\"\n"
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "ip").write_text('#!/bin/sh\n[ "$6" = ens5 ] && echo "3: ens5    inet 10.1.2.3/16 brd 10.1.255.255 '
                             'scope global ens5"\n')
    (fake / "ip").chmod(0o755)
    run = subprocess.run(["bash", "-c", snippet], env={"PATH": f"{fake}:/usr/bin:/bin"}, capture_output=True,
                         text=True, check=True)
    assert run.stdout == "10.1.2.3\n"


def test_an_exclusion_pattern_asks_for_vllm_host_ip(tmp_path: Path) -> None:
    text = _artifact(_two_nodes(tmp_path, interface="^docker,lo"), "node-0.sh")
    assert ': "${VLLM_HOST_IP:?set VLLM_HOST_IP to this node address on the network the nodes share}"' in text


def _pods(plan: Plan) -> list[dict[str, Any]]:
    docs = list(yaml.safe_load_all(_artifact(plan, "k8s/two.yaml")))
    for doc in docs[1:]:
        kubernetes_validate.validate(doc, "1.32", strict=True)
    template = docs[0]["spec"]["leaderWorkerTemplate"]
    return [template[t]["spec"]["containers"][0] for t in ("leaderTemplate", "workerTemplate")]


def test_kubernetes_pods_without_an_rdma_resource_run_nccl_over_tcp_and_say_so(tmp_path: Path) -> None:
    plan = _two_nodes(tmp_path)
    for pod in _pods(plan):
        env = {e["name"]: e.get("value", e.get("valueFrom")) for e in pod["env"]}
        assert env["NCCL_IB_DISABLE"] == "1" and "NCCL_IB_GID_INDEX" not in env
        assert env["NCCL_SOCKET_IFNAME"] == "eth0"  # the pod's interface, not the host's ens5
        assert env["VLLM_HOST_IP"] == {"fieldRef": {"fieldPath": "status.podIP"}}
        assert "securityContext" not in pod
    assert "# NCCL runs over TCP sockets on the pod network in these manifests, not over roce-200g" \
        in _artifact(plan, "k8s/two.yaml")
    (transport,) = [d for d in emit(deploy(plan)).decisions if d.id == "vllm.kubernetes_transport"]
    assert transport.value == "TCP sockets (no RDMA device in the pods)"


def test_kubernetes_pods_with_an_rdma_resource_get_the_device_and_ipc_lock(tmp_path: Path) -> None:
    plan = _two_nodes(tmp_path, vllm={"k8s_rdma_resource": "rdma/rdma_shared_device_a"})
    for pod in _pods(plan):
        env = {e["name"]: e.get("value") for e in pod["env"]}
        assert env["NCCL_IB_DISABLE"] == "0" and env["NCCL_IB_GID_INDEX"] == "3"
        assert pod["resources"]["limits"] == {"nvidia.com/gpu": 8, "rdma/rdma_shared_device_a": 1}
        assert pod["securityContext"] == {"capabilities": {"add": ["IPC_LOCK"]}}


def test_a_server_on_later_nodes_names_its_own_head(tmp_path: Path) -> None:
    """Two servers of 2 nodes each on 4 nodes: node-2 and node-3 rendezvous with node-2, not node-0."""
    spec = spec_dict(name="four", model={"id": "meta-llama/Llama-3.1-405B-Instruct"},
                     hardware={"gpu": "H100 SXM", "gpus_per_node": 8, "nodes": 4, "network": "ib-ndr",
                               "network_interface": "eth0"})
    plan = build_plan(tmp_path, spec, [pool("main", Layout(tp=8, pp=2, dp=2), max_model_len=16384)])
    vllm = {a.path: a.content for a in emit(deploy(plan)).artifacts}
    for node in (2, 3):
        text = vllm[f"node-{node}.sh"]
        assert ("# VLLM_HEAD_ADDR must hold node-2's address on the network the nodes share (ib-ndr).\n"
                ': "${VLLM_HEAD_ADDR:?set VLLM_HEAD_ADDR to the address of the head node (node-2)}"\n') in text
        assert "node-0" not in text.split("set -euo pipefail", 1)[1]
    sglang_pool = attrs.evolve(plan.pools[0], decode_graph_max_batch=64)  # SGLang's overhead answer, stated
    sglang_plan = attrs.evolve(plan, backend=default_registry().info("sglang"), pools=(sglang_pool,))
    sglang = {a.path: a.content for a in sglang_emit(deploy(sglang_plan)).artifacts}
    text = sglang["node-3.sh"]
    header = text.split("\n# Generated by", 1)[0].removeprefix("#!/usr/bin/env bash\n").replace("\n# ", " ")
    assert header == ("# node-3.sh: node 3 of 4 of deployment 'four'. Run preflight-nccl.sh "
                      "first, then the scripts of every node of server 'four-1' (node-2 serves its API).")
    assert ': "${SGLANG_HEAD_ADDR:?set SGLANG_HEAD_ADDR to the address of node-2}"\n' in text


def _nic_warnings(plan: Plan) -> dict[str, list[str]]:
    """The missing-interface warning of each engine's checks, for the same placement."""
    sglang_plan = attrs.evolve(plan, backend=default_registry().info("sglang"),
                               pools=tuple(attrs.evolve(p, decode_graph_max_batch=64) for p in plan.pools))
    out = {}
    for name, checked in (("vllm", vllm_checks(deploy(plan))), ("sglang", sglang_checks(deploy(sglang_plan)))):
        out[name] = [d.format_text() for d in checked if d.key_path == "hardware.network_interface"]
    return out


def test_only_a_server_that_spans_nodes_asks_for_the_network_interface(tmp_path: Path) -> None:
    # One independent server per node keeps NCCL on its node: nothing to pick the wrong NIC for.
    spec = spec_dict(name="apart", hardware={"gpu": "H100 SXM", "gpus_per_node": 2, "nodes": 2, "network": "ib-ndr"})
    apart = build_plan(tmp_path, spec, [pool("main", Layout(tp=2, pp=1, dp=2))])
    assert not any(s.spans_nodes for s in deploy(apart).servers)
    assert _nic_warnings(apart) == {"vllm": [], "sglang": []}
    # and each server's metrics are scraped at its own node
    assert ("exposes Prometheus metrics on each server's API port: `apart-0` node-0:8000/metrics, `apart-1` "
            "node-1:8000/metrics.") in _artifact(apart, "monitoring.md")
    spec = spec_dict(name="two", model={"id": "meta-llama/Llama-3.1-405B-Instruct"},
                     hardware={"gpu": "H100 SXM", "gpus_per_node": 8, "nodes": 2, "network": "ib-ndr"})
    spanning = build_plan(tmp_path, spec, [pool("main", Layout(tp=8, pp=2, dp=1), max_model_len=16384)])
    warning = ("two.toml: warning: hardware.network_interface: not set while a server spans nodes: NCCL may pick "
               "docker0 or a management NIC and hang (USER-PAINS #15) [DPC402]\n"
               '  hint: set it to the interface the nodes share, e.g. "eth0"')
    assert _nic_warnings(spanning) == {"vllm": [warning], "sglang": [warning]}
