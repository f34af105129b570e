"""The engine flow (``[backends.trtllm] flow = "engine"``): ``build.sh`` + ``build-engine.sh`` (quantize and build,
inside the container), ``run.sh`` (serve the engine), YAML, reasons.

One engine per pool (its limits differ); a pool's data-parallel replicas are separate
containers serving the same engine on their own GPUs and ports.  Single node only: the
multi-node launcher (MPI/Slurm) is refused by the plan check.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import yaml

from deployc.contract import Alternative, Artifact, Decision, Emission
from deployc.contract.toolkit import EnvRef, PlainDumper, comment_block
from deployc.contract.toolkit.compose import compose_document, compose_service
from deployc.contract.toolkit.docker import HF_CACHE_IN_CONTAINER, DockerRun, HealthCheck, docker_run_groups
from deployc.contract.toolkit.hftoken import HF_TOKEN, token_preamble, token_renamed, token_source
from deployc.contract.toolkit.kubernetes import (
    ContainerInput,
    Probe,
    Volume,
    dns_label,
    dump_documents,
    service,
)
from deployc.contract.toolkit.kubernetes import (
    deployment as k8s_deployment,
)
from deployc.contract.toolkit.shell import ScriptBuilder, group
from deployc_trtllm import ENGINE, ENGINE_VERSION
from deployc_trtllm.commands import (
    ENGINES_IN_CONTAINER,
    build_command,
    engine_extra_options,
    pool_dir,
    quantize_command,
    serve_command,
)
from deployc_trtllm.container import ULIMITS, exists_guard

if TYPE_CHECKING:
    from deployc.contract import Deployment, Pool
    from deployc_trtllm.options import TrtllmOptions

BUILD_TIME_NOTE = ("The engine is tied to this GPU architecture ({gpu}, {arch}) and to TensorRT-LLM {version}: "
                   "rebuild after changing either (TRT-LLM#222). Expect 10-30 minutes per configuration (seed 003).")


def engines_host_dir(deployment: Deployment) -> str:
    """Where engines live on the host: beside the Hugging Face cache, per deployment."""
    return f"{deployment.operations.model_cache.rstrip('/')}/deployc-trtllm/{deployment.name}"


def _builder(deployment: Deployment, purpose: str) -> ScriptBuilder:
    gpu = deployment.gpu
    return ScriptBuilder(purpose=purpose, generator=f"deployc {deployment.deployc_version}",
                         engine=f"{ENGINE} {ENGINE_VERSION} (image {deployment.image.reference})",
                         spec_name=deployment.name,
                         notes=[BUILD_TIME_NOTE.format(gpu=gpu.name, arch=gpu.arch, version=ENGINE_VERSION)])


def _gpu_ids(deployment: Deployment, first: int, count: int) -> tuple[int, ...]:
    hw = deployment.hardware
    ids = tuple(hw.gpu_ids) if hw.gpu_ids else tuple(range(hw.gpus_per_node))
    return ids[first:first + count]


def _container(deployment: Deployment, name: str, gpus: tuple[int, ...], port: int | None) -> DockerRun:
    ops = deployment.operations
    return DockerRun(
        name=name, image=deployment.image.reference, gpu_device_ids=gpus, ports=(port,) if port else (),
        volumes=((ops.model_cache, HF_CACHE_IN_CONTAINER, "the host's Hugging Face cache"),
                 (engines_host_dir(deployment), ENGINES_IN_CONTAINER, "checkpoints, engines and the serve options")),
        env_passthrough=((HF_TOKEN, "the Hugging Face token, passed by name; its value is never written"),),
        env_renamed=token_renamed(deployment), ulimits=ULIMITS, health=HealthCheck(port=port) if port else None,
        detach=port is not None,
        restart="unless-stopped" if port else "no")


def _preamble(script: ScriptBuilder, deployment: Deployment) -> None:
    script.raw('command -v docker >/dev/null || { echo "docker is not installed" >&2; exit 1; }')
    script.raw('cd "$(dirname "${BASH_SOURCE[0]}")"  # the files below sit beside this script')
    # The same token lines as the PyTorch flow's scripts: HF_TOKEN exported from the spec's variable when renamed
    # (docker run passes it by name), and a note when it is unset.  build-engine.sh runs inside the container,
    # where HF_TOKEN arrives through docker run, so it gets neither.
    token_preamble(script, deployment)
    script.command([group("mkdir", "-p", "--", deployment.operations.model_cache, engines_host_dir(deployment))],
                   explain=False)


def build_engine_script(deployment: Deployment) -> str:
    """``build-engine.sh``: runs INSIDE the container: download, quantize/convert, trtllm-build, per pool."""
    spec = deployment
    script = _builder(deployment, "build-engine.sh: runs inside the TensorRT-LLM container (build.sh starts it): "
                            "download the checkpoint, quantize/convert it for the TP × PP mapping, build the engine.")
    download = ["huggingface-cli", "download", spec.model.id]
    if spec.model.revision:
        download += ["--revision", spec.model.revision]
    script.command([group(*download, "--quiet")], explain=False, suffix=' > /tmp/model_dir')
    script.raw('model_dir="$(tail -n 1 /tmp/model_dir)"')
    for pool in deployment.pools:
        script.blank()
        script.comment(f"Pool {pool.name!r}: {pool.layout.label()}, {pool.knobs.weights_format} weights.")
        quantize = quantize_command(deployment, pool, "MODEL_DIR")
        groups = [group(*quantize.program)] + [
            group(g.words[0], EnvRef("model_dir", required=False), why=g.why) if g.words[1:] == ("MODEL_DIR",)
            else g for g in quantize.groups]
        script.command(groups)
        build = build_command(deployment, pool)
        script.command([group(*build.program), *build.groups])
        options = yaml.dump(engine_extra_options(pool), Dumper=PlainDumper, sort_keys=False, default_flow_style=False)
        script.raw(f"cat > {pool_dir(pool)}/extra-llm-api-options.yaml <<'YAML'")
        for line in options.splitlines():
            script.raw(line)
        script.raw("YAML")
    script.raw('echo "engines built under /engines; start them with run.sh"')
    return script.render()


def build_script(deployment: Deployment) -> str:
    """``build.sh``: starts the container once to run build-engine.sh."""
    script = _builder(deployment, "build.sh: build the TensorRT-LLM engine(s) of this deployment on THIS host's GPUs "
                            "(run it on a machine with the target GPU), then run.sh serves them.")
    _preamble(script, deployment)
    script.command([group("cp", "--", "build-engine.sh", engines_host_dir(deployment) + "/build-engine.sh")],
                   explain=False)
    gpus = max(p.layout.tp * p.layout.pp for p in deployment.pools)
    run = _container(deployment, f"{deployment.name}-build", _gpu_ids(deployment, 0, gpus), None)
    groups = docker_run_groups(run)
    groups.insert(1, group("--rm", why="a one-off build container"))
    script.command([*groups, group("bash", f"{ENGINES_IN_CONTAINER}/build-engine.sh")])
    return script.render()


def _servers(deployment: Deployment) -> list[tuple[Pool, int, str, tuple[int, ...], int]]:
    out = []
    first, port = 0, deployment.operations.port
    for pool in deployment.pools:
        per = pool.layout.tp * pool.layout.pp
        for replica in range(pool.layout.dp):
            parts = [deployment.name, pool.name if len(deployment.pools) > 1 else "",
                     str(replica) if pool.layout.dp > 1 else ""]
            out.append((pool, replica, "-".join(p for p in parts if p), _gpu_ids(deployment, first, per), port))
            first, port = first + per, port + 1
    return out


def run_script(deployment: Deployment) -> str:
    """``run.sh``: one trtllm-serve container per replica, serving the built engine."""
    script = _builder(deployment, "run.sh: serve the TensorRT-LLM engine(s) built by build.sh (trtllm-serve).")
    _preamble(script, deployment)
    for pool, _replica, name, gpus, port in _servers(deployment):
        serve = serve_command(deployment, pool, port)
        script.blank()
        script.comment(f"Server {name!r}: pool {pool.name!r}, {pool.layout.label()}, GPUs "
                       f"{','.join(map(str, gpus))}, port {port}.")
        exists_guard(script, name)
        script.command([*docker_run_groups(_container(deployment, name, gpus, port)), group(*serve.program),
                        *serve.groups])
    return script.render()


def _extra_yaml(deployment: Deployment, pool: Pool) -> str:
    header = [f"trtllm-serve --config for pool {pool.name!r} (TrtLlmArgs, --backend tensorrt); build-engine.sh "
              "writes the same file beside the engine.",
              f"Generated by deployc {deployment.deployc_version} for {ENGINE} {ENGINE_VERSION}."]
    return comment_block(header) + yaml.dump(engine_extra_options(pool), Dumper=PlainDumper, sort_keys=False,
                                             default_flow_style=False)


def emit_engine_flow(deployment: Deployment, options: TrtllmOptions) -> Emission:
    """The engine flow's artifacts of a plan."""
    artifacts = [
        Artifact(path="build.sh", content=build_script(deployment), executable=True,
                 description="starts the container that builds the engine(s)"),
        Artifact(path="build-engine.sh", content=build_engine_script(deployment), executable=True,
                 description="quantize/convert + trtllm-build, run inside the container"),
        Artifact(path="run.sh", content=run_script(deployment), executable=True,
                 description="trtllm-serve per replica"),
        Artifact(path="compose.yaml", content=compose_yaml(deployment),
                 description="the same servers for docker compose"),
    ]
    artifacts += [Artifact(path=path, content=text, description="Kubernetes manifests")
                  for path, text in kubernetes_files(deployment, options).items()]
    flags = []
    for pool in deployment.pools:
        artifacts.append(Artifact(path=f"extra-llm-api-options-{pool.name}.yaml", content=_extra_yaml(deployment, pool),
                                  description="LLM API options for trtllm-serve"))
        for command in (quantize_command(deployment, pool, "$model_dir"), build_command(deployment, pool),
                        serve_command(deployment, pool, deployment.operations.port)):
            flags += list(command.flags)
    gpu = deployment.gpu
    decisions = (
        Decision(id="trtllm.flow", value="engine (quantize.py + trtllm-build + trtllm-serve --backend tensorrt)",
                 rule="DPD501", reason="the compiled engine is TensorRT-LLM's 'finishing move': the limits, "
                 "quantization and plugins are fixed at build time, so what was planned is what runs; "
                 + BUILD_TIME_NOTE.format(gpu=gpu.name, arch=gpu.arch, version=ENGINE_VERSION),
                 rejected=(Alternative("PyTorch flow (trtllm-serve --backend pytorch)",
                                       "TensorRT-LLM 1.x's default and no build step, but " + (
                                           'the spec pins the engine flow ([backends.trtllm] flow = "engine")'
                                           if options.flow == "engine" else
                                           "it loads only pre-quantized checkpoints and this plan quantizes the "
                                           "16-bit checkpoint (quantize.py does that)")),)),
        Decision(id="trtllm.image", value=deployment.image.reference, rule="DPD501",
                 reason=f"TensorRT-LLM {ENGINE_VERSION}; flags checked against manifests transcribed from its "
                        "source (not its real parser)"),
    )
    return Emission(artifacts=tuple(artifacts), flags=tuple(flags), decisions=decisions)


def compose_yaml(deployment: Deployment) -> str:
    """``compose.yaml``: the engine flow's servers (run build.sh first; the engines live on the host)."""
    services: dict[str, dict[str, Any]] = {}
    for pool, _replica, name, gpus, port in _servers(deployment):
        serve = serve_command(deployment, pool, port)
        services[name] = compose_service(_container(deployment, name, gpus, port), serve.program + serve.args)
    header = [f"compose.yaml: `docker compose up -d` serves the engines build.sh built under "
              f"{engines_host_dir(deployment)} "
              f"(run build.sh first, on this host's GPUs); {token_source(deployment)}.",
              f"Generated by deployc {deployment.deployc_version} for {ENGINE} {ENGINE_VERSION} "
              f"(image {deployment.image.reference}) from spec {deployment.name!r}. Do not edit by hand: change the "
              "spec and build again."]
    return compose_document(services, header)


def kubernetes_files(deployment: Deployment, options: TrtllmOptions) -> dict[str, str]:
    """``k8s/<name>.yaml`` per pool: a Deployment serving the engine from the node's engine directory, a Service."""
    files: dict[str, str] = {}
    spec = deployment
    for pool in deployment.pools:
        serve = serve_command(deployment, pool, spec.operations.port)
        labels = {"app.kubernetes.io/name": "trtllm",
                  "app.kubernetes.io/instance": dns_label(spec.name, pool.name if len(deployment.pools) > 1 else ""),
                  "app.kubernetes.io/managed-by": "deployc"}
        name = labels["app.kubernetes.io/instance"]
        engines = Volume(name="engines", mount_path=ENGINES_IN_CONTAINER, read_only=True,
                         source={"hostPath": {"path": engines_host_dir(deployment), "type": "Directory"}})
        pod = ContainerInput(
            name="trtllm", image=deployment.image.reference, args=serve.program + serve.args,
            gpus=pool.layout.tp * pool.layout.pp, port=spec.operations.port,
            shm_size=f"{options.shm_size_gib or 16:g}Gi", secret_env=((HF_TOKEN, options.hf_token_secret, "token"),),
            cache_host_path=spec.operations.model_cache, probe=Probe(path="/health", port=spec.operations.port),
            volumes=(engines,))
        docs = [k8s_deployment(name, options.k8s_namespace, labels, pool.layout.dp, pod),
                service(name, options.k8s_namespace, labels, spec.operations.port)]
        header = [f"k8s: Deployment and Service for pool {pool.name!r} ({pool.layout.label()}), engine flow: the "
                  f"pods serve the engine build.sh built under {engines_host_dir(deployment)} on the node (run it on "
                  "every "
                  "node that may get the pod, or pin the pods to the node that has it).",
                  f"Generated by deployc {deployment.deployc_version} for {ENGINE} {ENGINE_VERSION} (image "
                  f"{deployment.image.reference}). The Hugging Face token is read from the Secret "
                  f"{options.hf_token_secret!r}."]
        files[f"k8s/{name}.yaml"] = dump_documents(docs, header)
    return files


def serve_targets(deployment: Deployment) -> list[tuple[str, int, Pool]]:
    """(name, port, pool) of every engine-flow server, for bench.sh and monitoring.md."""
    return [(name, port, pool) for pool, _replica, name, _gpus, port in _servers(deployment)]
