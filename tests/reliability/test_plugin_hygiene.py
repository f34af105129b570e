"""Plugins cannot exhaust threads, corrupt machine-readable output, hang at import, slip a wrongly typed
emission past deployc, or make ``auto`` choose another engine because a built-in backend is broken."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from deployc import api
from deployc.contract.backend import Artifact, BackendInfo, Emission, FlagReason
from deployc.diagnostics import PluginError
from deployc.planner.decisions import Decision
from deployc.plugins import PluginRegistry, PluginSource, default_registry, discover
from tests.reliability._support import REPO, run_cli

SAMPLE = REPO / "samples" / "qwen7b-awq-t4-edge.toml"


# -- one reused worker thread ------------------------------------------------------------------


def test_two_thousand_plans_use_one_plugin_thread() -> None:
    """Each hook call started a thread that was never reused: ~800 plans exhausted the process."""
    from deployc.planner.planner import make_plan

    # The serving simulation calls no plugin and is memoised by value (planner/load.py): after the first plan,
    # 2,000 plans make every hook call a plan makes at a fraction of the time.
    registry = default_registry()
    _, target, _ = api.resolve_spec(SAMPLE, registry)
    make_plan(target, registry.models())
    before = threading.active_count()
    workers = sum(t.name == "deployc-plugin" for t in threading.enumerate())  # earlier time-outs abandon some
    for _ in range(2000):
        make_plan(target, registry.models())
    assert threading.active_count() == before
    assert sum(t.name == "deployc-plugin" for t in threading.enumerate()) == workers


# -- DEPLOYC_PLUGIN_TIMEOUT_S -------------------------------------------------------------------


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0", "-1", "1e9", "soon"])
def test_plugin_timeout_must_be_finite_and_positive(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("DEPLOYC_PLUGIN_TIMEOUT_S", value)
    with pytest.raises(PluginError) as caught:
        discover()
    (diagnostic,) = caught.value.diagnostics
    assert (diagnostic.rule, diagnostic.message, diagnostic.hint) == (
        "DPC507", f"DEPLOYC_PLUGIN_TIMEOUT_S={value!r} is not a number of seconds above 0 and at most 86400",
        "unset it (the default is 60 s) or set e.g. DEPLOYC_PLUGIN_TIMEOUT_S=120")


def test_bad_plugin_timeout_is_a_clear_cli_error(tmp_path: Path) -> None:
    env = {**os.environ, "DEPLOYC_PLUGIN_TIMEOUT_S": "nan"}
    done = subprocess.run([sys.executable, "-m", "deployc", "validate", str(SAMPLE)], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=60, check=False)
    assert (done.returncode, done.stdout) == (4, "")
    assert done.stderr == ("<spec>: error: DEPLOYC_PLUGIN_TIMEOUT_S='nan' is not a number of seconds above 0 and at "
                           "most 86400 [DPC507]\n  hint: unset it (the default is 60 s) or set e.g. "
                           "DEPLOYC_PLUGIN_TIMEOUT_S=120\n")


# -- plugins installed through entry points -----------------------------------------------------


def _site(root: Path, modules: dict[str, str], entry_points: dict[str, str]) -> Path:
    """A directory that, on PYTHONPATH, installs ``modules`` as distribution ``deployc-chatty``."""
    site = root / "site"
    site.mkdir()
    for name, source in modules.items():
        (site / f"{name}.py").write_text(textwrap.dedent(source))
    info = site / "deployc_chatty-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: deployc-chatty\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[deployc.backends]\n" + "".join(f"{name} = {value}\n" for name, value in entry_points.items()))
    return site


def _deployc(site: Path, *args: str, timeout_s: str = "60") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(site), "DEPLOYC_PLUGIN_TIMEOUT_S": timeout_s}
    env.pop("DEPLOYC_DISABLE_PLUGINS", None)
    return subprocess.run([sys.executable, "-m", "deployc", *args], capture_output=True, text=True, env=env,
                          cwd=site, timeout=120, check=False)


CHATTY = """
    import os
    from deployc.contract.backend import BackendInfo, Capability, Emission
    print("CHATTY: imported")
    os.write(1, b"CHATTY: raw write at import\\n")

    def deployc_backend_info():
        print("CHATTY: backend_info")
        return BackendInfo(name="chatty", engine="Chatty", engine_version="1", image="example/chatty",
                           image_tag="1", summary="prints everywhere")

    def deployc_capability(backend, target, weights_format, kv_cache_dtype):
        print("CHATTY: capability")
        return Capability(supported=False, reason="chatty runs nothing")

    def deployc_catalog_gpus():
        print("CHATTY: catalog_gpus")
        os.write(1, b"CHATTY: raw write in a hook\\n")
        return []

    def deployc_emit(backend, plan):
        return Emission(artifacts=())
"""


@pytest.mark.parametrize("command", [["validate", "--format", "json"], ["plan", "--format", "json"],
                                     ["backends", "--format", "json"]], ids=lambda c: c[0])
def test_plugin_output_never_reaches_json_stdout(tmp_path: Path, command: list[str]) -> None:
    site = _site(tmp_path, {"deployc_chatty": CHATTY}, {"chatty": "deployc_chatty"})
    args = [*command, str(SAMPLE)] if command[0] != "backends" else command
    done = _deployc(site, *args)
    assert done.returncode == 0, done.stderr
    assert "CHATTY" not in done.stdout
    json.loads(done.stdout)
    assert "CHATTY: imported\nCHATTY: raw write at import\n" in done.stderr
    if command[0] != "backends":  # these resolve the GPU: every plugin's catalog hook runs
        assert "CHATTY: catalog_gpus\nCHATTY: raw write in a hook\n" in done.stderr


def test_plugin_that_hangs_at_import_times_out(tmp_path: Path) -> None:
    site = _site(tmp_path, {"deployc_hangs": "import threading\nthreading.Event().wait()\n"},
                 {"hangs": "deployc_hangs"})
    done = _deployc(site, "validate", str(SAMPLE), timeout_s="0.5")
    assert done.returncode == 0, done.stderr
    done = _deployc(site, "backends", "--format", "json", timeout_s="0.5")
    rows = {row["name"]: row for row in json.loads(done.stdout)}
    assert rows["hangs"]["error"] == ("plugin deployc-chatty 1.0 (entry point hangs = deployc_hangs) did not finish "
                                      "importing within 0.5 s")
    assert rows["vllm"]["state"] == "ok"


# -- what deployc_emit returns ------------------------------------------------------------------


def _info(name: str) -> BackendInfo:
    return BackendInfo(name=name, engine="Fake", engine_version="1", image="example/fake", image_tag="1",
                       summary="fake")


def _registry(emit: Callable[..., Any]) -> PluginRegistry:
    module = types.ModuleType("fake_emit")
    module.deployc_backend_info = lambda: _info("fake")  # type: ignore[attr-defined]
    module.deployc_emit = emit  # type: ignore[attr-defined]
    return PluginRegistry([(PluginSource("fake-emit", "1", "fake", "fake_emit"), module)])


def _artifacts(*items: Artifact) -> Iterator[Artifact]:
    yield from items


GOOD = Artifact(path="run.sh", content="echo hi\n", executable=True)
DECISION = Decision(id="x", value=1, rule="r", reason="because")
WHERE = "plugin fake-emit 1 (entry point fake = fake_emit): deployc_emit returned an Emission whose "
BAD_EMISSIONS: dict[str, tuple[Emission, str]] = {
    "bytes content": (Emission(artifacts=(Artifact(path="a.sh", content=b"x"),)),  # type: ignore[arg-type]
                      "artifacts[0].content is bytes, not str"),
    "int path": (Emission(artifacts=(Artifact(path=7, content="x"),)),  # type: ignore[arg-type]
                 "artifacts[0].path is int, not str"),
    "lone surrogate": (Emission(artifacts=(GOOD, Artifact(path="a.sh", content="a\udc80"))),
                       "artifacts[1].content cannot be written as UTF-8 (character 1: a lone surrogate)"),
    "int executable": (Emission(artifacts=(Artifact(path="a.sh", content="x", executable=1),)),  # type: ignore[arg-type]
                       "artifacts[0].executable is int, not bool"),
    "delete in a path": (Emission(artifacts=(Artifact(path="a\x7fb.sh", content="x"),)),
                         "artifacts[0].path 'a\\x7fb.sh' contains a control character (U+007F)"),
    "nel in a path": (Emission(artifacts=(Artifact(path="a\x85b.sh", content="x"),)),
                      "artifacts[0].path 'a\\x85b.sh' contains NEL, a C1 line break (U+0085)"),
    "generator of artifacts": (Emission(artifacts=_artifacts(GOOD)),  # type: ignore[arg-type]
                               "artifacts is generator, not a tuple of Artifact"),
    "str decisions": (Emission(artifacts=(GOOD,), decisions="abc"),  # type: ignore[arg-type]
                      "decisions is str, not a tuple of Decision"),
    "int flag value": (Emission(artifacts=(GOOD,), flags=(FlagReason(flag="--x", value=3, reason="r"),)),  # type: ignore[arg-type]
                       "flags[0].value is int, not str"),
    "decision with a list value": (Emission(artifacts=(GOOD,), decisions=(
        Decision(id="x", value=[1], rule="r", reason="because"),)),  # type: ignore[arg-type]
        "decisions[0].value is list, not a string, number or boolean"),
}


@pytest.mark.parametrize("case", list(BAD_EMISSIONS))
def test_every_field_of_an_emission_is_type_checked(case: str) -> None:
    emission, problem = BAD_EMISSIONS[case]
    registry = _registry(lambda **_kw: emission)
    with pytest.raises(PluginError) as caught:
        registry.emit("fake", None)  # type: ignore[arg-type]
    assert [(d.rule, d.message) for d in caught.value.diagnostics] == [("DPC503", WHERE + problem)]


def test_a_well_typed_emission_passes() -> None:
    emission = Emission(artifacts=[GOOD], flags=(FlagReason(flag="--x", value=None, reason="r"),),  # type: ignore[arg-type]
                        decisions=(DECISION,))
    assert _registry(lambda **_kw: emission).emit("fake", None) is emission  # type: ignore[arg-type]


# -- a third party claiming a built-in backend's name --------------------------------------------


def _with_impostor() -> PluginRegistry:
    """The installed plugins plus one from another distribution that also calls itself ``vllm``."""
    impostor = types.ModuleType("impostor")
    impostor.deployc_backend_info = lambda: _info("vllm")  # type: ignore[attr-defined]
    installed = default_registry()
    plugins = [(b.source, b.plugin) for b in installed.backends.values()]
    return PluginRegistry([*plugins, (PluginSource("deployc-impostor", "6.6.6", "vllm2", "impostor"), impostor)])


def test_auto_refuses_while_a_builtin_backend_is_claimed_by_another_plugin() -> None:
    registry = _with_impostor()
    assert "vllm" not in registry.names() and registry.failed_builtins() == ["vllm"]
    with pytest.raises(PluginError) as caught:
        api.plan(SAMPLE, registry=registry)
    first, *causes = caught.value.diagnostics
    assert (first.rule, first.message) == (
        "DPC508", 'backend = "auto" will not choose while the built-in backend vllm is not working: the choice '
                  "would silently differ from a working installation")
    assert [c.rule for c in causes] == ["DPC504", "DPC504"]
    assert "deployc-impostor 6.6.6" in causes[0].message


def test_a_named_backend_still_builds_and_the_failure_is_reported(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    registry = _with_impostor()
    monkeypatch.setattr("deployc.plugins.default_registry", lambda: registry)
    monkeypatch.setattr("deployc.api.default_registry", lambda: registry)
    sample = REPO / "samples" / "llama8b-fp8-h100-stable.toml"  # SGLang refuses the T4 sample (Turing)
    run = run_cli(["build", str(sample), "-o", str(tmp_path / "out"), "--backend", "sglang", "--accept-slo-miss"])
    assert run.code == 0, run.err
    warnings = [line for line in run.err.splitlines() if "[DPC504]" in line]
    assert len(warnings) == 2
    assert all(line.startswith("<spec>: warning: backend name 'vllm' is claimed by ") for line in warnings)
