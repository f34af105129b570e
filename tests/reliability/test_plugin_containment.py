"""A broken plugin is reported by name and contained: the other backends keep working.

Broken in every way the issue lists: fails to import, raises in a hook, returns the wrong type,
hangs past the time limit.  Plugins here are in-memory modules registered through
:class:`~deployc.plugins.PluginRegistry`, exactly as entry points are.
"""

from __future__ import annotations

import functools
import subprocess
import sys
import textwrap
import threading
import types
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from deployc import plugins as plugins_module
from deployc.contract.backend import BackendInfo, Capability, Emission, RuntimeOverheads
from deployc.diagnostics import Diagnostic, PluginError
from deployc.plugins import PluginRegistry, PluginSource, discover
from tests.reliability._support import REPO, run_cli

TIMEOUT_S = "0.2"
RELEASE = threading.Event()  # set at the end of each test: lets "hanging" hooks return


@pytest.fixture(autouse=True)
def _short_timeout(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("DEPLOYC_PLUGIN_TIMEOUT_S", TIMEOUT_S)
    RELEASE.clear()
    yield
    RELEASE.set()


def _info(backend: str, **overrides: Any) -> BackendInfo:
    fields: dict[str, Any] = {"name": backend, "engine": "Fake", "engine_version": "1.0", "image": "example/fake",
                              "image_tag": "1.0", "summary": "a fake backend"}
    return BackendInfo(**{**fields, **overrides})


def _emission(**kwargs: Any) -> Emission:
    return Emission(artifacts=())


def _plugin(name: str, **hooks: Callable[..., Any]) -> tuple[PluginSource, types.ModuleType]:
    """A plugin module for backend ``name`` from distribution ``fake-<name>``; hooks override the defaults."""
    module = types.ModuleType(f"fake_{name}.plugin")
    module.deployc_backend_info = lambda: _info(name)  # type: ignore[attr-defined]
    module.deployc_emit = _emission  # type: ignore[attr-defined]
    for hook, function in hooks.items():
        setattr(module, hook, function)
    return PluginSource(f"fake-{name}", "1.0", name, f"fake_{name}.plugin"), module


def _where(name: str) -> str:
    return f"plugin fake-{name} 1.0 (entry point {name} = fake_{name}.plugin)"


def _boom(**kwargs: Any) -> Any:
    raise RuntimeError("kaboom")


BOOM_AT = f"{__file__}:{_boom.__code__.co_firstlineno + 1}"


def _hang(**kwargs: Any) -> Any:
    RELEASE.wait(30)


def _exit(**kwargs: Any) -> Any:
    raise SystemExit(0)


def _failures(registry: PluginRegistry) -> list[tuple[str, str]]:
    return [(f.diagnostic.rule, f.diagnostic.message) for f in registry.failures]


# -- loading: deployc_backend_info -------------------------------------------------------------


@pytest.mark.parametrize(("hook", "rule", "message"), [
    (_boom, "DPC502", "deployc_backend_info raised RuntimeError: kaboom"),
    (lambda: {"name": "bad"}, "DPC503", "deployc_backend_info returned dict, not BackendInfo"),
    (lambda: None, "DPC503", "deployc_backend_info returned NoneType, not BackendInfo"),
    (_hang, "DPC506", f"deployc_backend_info did not return within {TIMEOUT_S} s"),
], ids=["raises", "wrong-type", "none", "hangs"])
def test_broken_backend_info_is_reported_by_name(hook: Callable[..., Any], rule: str, message: str) -> None:
    registry = PluginRegistry([_plugin("good"), _plugin("bad", deployc_backend_info=hook)])
    assert _failures(registry) == [(rule, f"{_where('bad')}: {message}")]
    assert registry.names() == ["good"]


def test_plugin_without_backend_info_is_reported() -> None:
    source, module = _plugin("bad")
    del module.deployc_backend_info
    registry = PluginRegistry([_plugin("good"), (source, module)])
    assert _failures(registry) == [("DPC501", f"{_where('bad')}: does not implement deployc_backend_info")]
    assert registry.names() == ["good"]


def test_hook_with_a_signature_pluggy_rejects_is_reported() -> None:
    from deployc import hookimpl

    @hookimpl
    def deployc_emit(backend: str, plan: object, surprise: int) -> Emission:
        raise AssertionError("never called")

    registry = PluginRegistry([_plugin("good"), _plugin("bad", deployc_emit=deployc_emit)])
    ((rule, message),) = _failures(registry)
    assert rule == "DPC501"
    assert message.startswith(f"{_where('bad')}: invalid plugin: ")
    assert "surprise" in message
    assert registry.names() == ["good"]


def test_two_plugins_claiming_one_name_are_both_reported() -> None:
    other = types.ModuleType("other.plugin")
    other.deployc_backend_info = lambda: _info("dup")  # type: ignore[attr-defined]
    registry = PluginRegistry([_plugin("good"), _plugin("dup"),
                               (PluginSource("other-dist", "2.0", "dup2", "other.plugin"), other)])
    claim = ("backend name 'dup' is claimed by fake-dup 1.0 (entry point dup = fake_dup.plugin) and other-dist 2.0 "
             "(entry point dup2 = other.plugin)")
    assert _failures(registry) == [("DPC504", claim), ("DPC504", claim)]
    assert registry.names() == ["good"]


def test_plugin_calling_sys_exit_is_contained() -> None:
    registry = PluginRegistry([_plugin("good"), _plugin("bad", deployc_backend_info=_exit)])
    assert _failures(registry) == [("DPC502", f"{_where('bad')}: deployc_backend_info raised SystemExit: 0")]


NOT_JSON_SCHEMA = {"type": "object", "properties": {"x": {"enum": {1, 2}}}}
INVALID_NESTED_SCHEMA = {"type": "object", "properties": {"x": {"type": "strnig"}}}


@pytest.mark.parametrize("overrides", [
    {"name": None}, {"name": "Bad Name!"}, {"name": "auto"},
    {"engine_version": None}, {"image_tag": 3}, {"options_schema": "not a schema"},
    {"options_schema": {"type": "objekt"}},
    {"options_schema": INVALID_NESTED_SCHEMA},
    {"options_schema": NOT_JSON_SCHEMA},
], ids=["name-none", "name-unselectable", "name-auto", "version-none", "tag-int", "schema-str", "schema-not-object",
        "schema-invalid-nested", "schema-not-json"])
def test_backend_info_with_wrong_field_types_is_a_plugin_error(overrides: dict[str, Any]) -> None:
    registry = PluginRegistry([_plugin("good"), _plugin("bad", deployc_backend_info=lambda: _info("bad", **overrides))])
    assert [rule for rule, _ in _failures(registry)] == ["DPC503"]
    assert registry.names() == ["good"]


def test_backends_command_survives_a_plugin_with_bad_info(monkeypatch: pytest.MonkeyPatch) -> None:
    registry = PluginRegistry([_plugin("good"),
                               _plugin("bad", deployc_backend_info=lambda: _info("bad", engine_version=None))])
    monkeypatch.setattr(plugins_module, "default_registry", lambda: registry)
    run = run_cli(["backends"])
    assert run.code == 4
    assert "good" in run.out
    assert "bad        FAILED: " in run.out


def test_backends_command_lists_failures_and_working_backends(monkeypatch: pytest.MonkeyPatch) -> None:
    registry = PluginRegistry([_plugin("good"), _plugin("bad", deployc_backend_info=_boom)])
    monkeypatch.setattr(plugins_module, "default_registry", lambda: registry)
    run = run_cli(["backends"])
    assert (run.code, run.err) == (4, "")
    assert run.out == (
        "good       Fake 1.0        example/fake:1.0  [fake-good 1.0 (entry point good = fake_good.plugin)]\n"
        f"bad        FAILED: {_where('bad')}: deployc_backend_info raised RuntimeError: kaboom\n")


# -- calls after loading: every routed hook ---------------------------------------------------------

# What the registry reads of a Target to build the hooks' TargetFacts.
_TARGET = SimpleNamespace(gpu=object(), model=SimpleNamespace(name="m", family="f", checkpoint_quant=None,
                                                             head_dim=128, uses_mla=False, attention_sinks=False,
                                                             has_sliding_window=False, attn_logit_softcap=None,
                                                             final_logit_softcap=None),
                          spec=SimpleNamespace(hardware=SimpleNamespace(nodes=1, gpus_per_node=1), backends={}))
ROUTED: dict[str, Callable[[PluginRegistry, str], Any]] = {
    "deployc_capability": lambda r, b: r.capability(b, target=_TARGET, weights_format="fp8",
                                                    kv_cache_dtype="fp8"),
    "deployc_runtime_overheads": lambda r, b: r.runtime_overheads(b, query=object()),
    "deployc_check_plan": lambda r, b: r.check_plan(b, deployment=object()),
    "deployc_emit": lambda r, b: r.emit(b, deployment=object()),
}


def _good_hooks() -> dict[str, Callable[..., Any]]:
    return {
        "deployc_capability": lambda **_kw: Capability(supported=True, reason="fine"),
        "deployc_runtime_overheads": lambda **_kw: RuntimeOverheads(
            engine_version="1.0", activation_peak_bytes=1, cuda_graph_bytes=0, cuda_graph_in_budget=True,
            non_torch_bytes=1, memory_fraction_kind="total", default_memory_fraction=0.9, kv_block_size_tokens=16),
        "deployc_check_plan": lambda **_kw: [],
        "deployc_emit": _emission,
    }


@pytest.mark.parametrize("schema", [NOT_JSON_SCHEMA, INVALID_NESTED_SCHEMA], ids=["not-json", "invalid-nested"])
def test_plugin_with_a_broken_options_schema_does_not_break_validation(tmp_path: Path, schema: dict[str, Any]) -> None:
    from deployc.api import validate
    from tests.reliability import specgen

    registry = PluginRegistry([_plugin("good"), _plugin("bad", deployc_backend_info=lambda: _info(
        "bad", options_schema=schema))])
    spec = tmp_path / "spec.toml"
    spec.write_text(specgen.spec_text({**specgen.FULL_SPEC, "backends": {"bad": {"x": "y"}}}))
    diagnostics = validate(spec, registry)  # a crash here is deployc's exit 3 for every spec
    assert diagnostics
    assert [rule for rule, _ in _failures(registry)] == ["DPC503"]


@pytest.mark.parametrize("hook", sorted(ROUTED))
@pytest.mark.parametrize(("behaviour", "rule", "message"), [
    (_boom, "DPC502", "{hook} raised RuntimeError: kaboom at " + BOOM_AT),
    (lambda **_kw: "nope", "DPC503", "{hook} returned str, expected {expected}"),
    (_hang, "DPC506", "{hook} did not return within " + TIMEOUT_S + " s"),
], ids=["raises", "wrong-type", "hangs"])
def test_broken_hook_is_reported_by_name_and_others_keep_working(
        hook: str, behaviour: Callable[..., Any], rule: str, message: str) -> None:
    expected = {"deployc_capability": "Capability", "deployc_runtime_overheads": "RuntimeOverheads",
                "deployc_check_plan": "list or tuple", "deployc_emit": "Emission"}[hook]
    registry = PluginRegistry([_plugin("good", **_good_hooks()), _plugin("bad", **{**_good_hooks(), hook: behaviour})])
    assert registry.failures == []
    with pytest.raises(PluginError) as exc:
        ROUTED[hook](registry, "bad")
    assert [(d.rule, d.message) for d in exc.value.diagnostics] == [
        (rule, f"{_where('bad')}: {message.format(hook=hook, expected=expected)}")]
    for other in ROUTED.values():  # the good backend still answers every hook
        other(registry, "good")


# The planner never sees the registry: it gets each backend's functions from PluginRegistry.models(), which
# must fail exactly as the registry does (by plugin name), so planning stops with the same diagnostic.
@functools.cache
def _a_real_plan() -> Any:
    """A plan to check: the models place it (deployc.placement) before the backend's hook sees it."""
    from deployc import api

    return api.plan(REPO / "samples" / "llama8b-fp8-h100-stable.toml")[0]


MODELS: dict[str, Callable[[PluginRegistry, str], Any]] = {
    "deployc_capability": lambda r, b: r.models()[b].capability(_TARGET, "fp8", "fp8"),
    "deployc_runtime_overheads": lambda r, b: r.models()[b].runtime_overheads(object()),
    "deployc_check_plan": lambda r, b: r.models()[b].check_plan(_a_real_plan()),
}


@pytest.mark.parametrize("hook", sorted(MODELS))
@pytest.mark.parametrize(("behaviour", "rule", "message"), [
    (_boom, "DPC502", "{hook} raised RuntimeError: kaboom at " + BOOM_AT),
    (lambda **_kw: "nope", "DPC503", "{hook} returned str, expected {expected}"),
], ids=["raises", "wrong-type"])
def test_the_planners_models_report_a_broken_hook_by_name(
        hook: str, behaviour: Callable[..., Any], rule: str, message: str) -> None:
    expected = {"deployc_capability": "Capability", "deployc_runtime_overheads": "RuntimeOverheads",
                "deployc_check_plan": "list or tuple"}[hook]
    registry = PluginRegistry([_plugin("good", **_good_hooks()), _plugin("bad", **{**_good_hooks(), hook: behaviour})])
    with pytest.raises(PluginError) as exc:
        MODELS[hook](registry, "bad")
    assert [(d.rule, d.message) for d in exc.value.diagnostics] == [
        (rule, f"{_where('bad')}: {message.format(hook=hook, expected=expected)}")]
    for other in MODELS.values():
        other(registry, "good")


def test_a_third_party_backend_reads_its_own_engine_log() -> None:
    from deployc.contract.enginelog import EngineLog, likeliest

    def parse(**kw: Any) -> EngineLog | None:
        return EngineLog(kv_tokens=1234, weights_gib=5.5) if "FAKE ENGINE" in kw["text"] else None

    registry = PluginRegistry([_plugin("good", **_good_hooks()), _plugin("mine", deployc_parse_engine_log=parse)])
    assert registry.engine_logs("FAKE ENGINE ready", gpu=object()) == {
        "mine": EngineLog(engine="mine", kv_tokens=1234, weights_gib=5.5)}
    assert likeliest(registry.engine_logs("FAKE ENGINE ready", gpu=object())) == (
        "mine", EngineLog(engine="mine", kv_tokens=1234, weights_gib=5.5))
    assert registry.engine_logs("another engine", gpu=object()) == {}
    broken = PluginRegistry([_plugin("bad", deployc_parse_engine_log=_boom)])
    with pytest.raises(PluginError) as exc:
        broken.engine_logs("log", gpu=object())
    assert [(d.rule, d.message) for d in exc.value.diagnostics] == [
        ("DPC502", f"{_where('bad')}: deployc_parse_engine_log raised RuntimeError: kaboom at {BOOM_AT}")]


def test_check_plan_returning_non_diagnostics_is_reported() -> None:
    registry = PluginRegistry([_plugin("bad", deployc_check_plan=lambda **_kw: ["a string", Diagnostic(
        rule="DPC402", message="x")])])
    with pytest.raises(PluginError) as exc:
        registry.check_plan("bad", deployment=object())
    assert exc.value.diagnostics[0].message == \
        f"{_where('bad')}: deployc_check_plan returned a str among its diagnostics"


def test_sys_exit_in_a_hook_is_a_plugin_error() -> None:
    registry = PluginRegistry([_plugin("bad", deployc_emit=_exit)])
    with pytest.raises(PluginError) as exc:
        registry.emit("bad", deployment=object())
    assert exc.value.diagnostics[0].rule == "DPC502"


@pytest.mark.parametrize(("behaviour", "rule"), [(_boom, "DPC502"), (lambda: None, "DPC503"), (_hang, "DPC506")],
                         ids=["raises", "wrong-type", "hangs"])
def test_broken_catalog_hook_does_not_take_down_other_backends(behaviour: Callable[..., Any], rule: str) -> None:
    registry = PluginRegistry([_plugin("good", deployc_catalog_gpus=list),
                               _plugin("bad", deployc_catalog_gpus=behaviour)])
    assert registry.catalog_gpus() == []
    assert [(r, m.split(":")[0]) for r, m in _failures(registry)] == [(rule, _where("bad"))]


def test_process_exits_after_a_plugin_times_out(tmp_path: Path) -> None:
    script = textwrap.dedent("""
        import threading, types
        from deployc.plugins import PluginRegistry, PluginSource
        hang = types.ModuleType("hang")
        hang.deployc_backend_info = lambda: threading.Event().wait()
        registry = PluginRegistry([(PluginSource("hang-dist", "1", "hang", "hang"), hang)])
        print(registry.failures[0].diagnostic.rule, flush=True)
    """)
    env = {"DEPLOYC_PLUGIN_TIMEOUT_S": "0.2", "PATH": "/usr/bin:/bin"}
    try:
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=3, env=env,
                              cwd=tmp_path, check=False)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"still running 3 s after the 0.2 s plugin time-out; printed {exc.stdout!r}")
    assert (done.returncode, done.stdout) == (0, "DPC506\n")


# -- discovery through entry points ------------------------------------------------------------


def test_discover_contains_import_failures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "fake_good_ep.py").write_text(
        "from deployc.contract.backend import BackendInfo\n"
        "def deployc_backend_info():\n"
        "    return BackendInfo(name='goodep', engine='E', engine_version='1', image='i', image_tag='t',\n"
        "                       summary='s')\n")
    (tmp_path / "fake_exits_on_import.py").write_text("raise SystemExit(3)\n")
    (tmp_path / "fake_raises_on_import.py").write_text("raise ImportError('needs missing_dependency')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    eps = [metadata.EntryPoint(name, value, "deployc.backends") for name, value in [
        ("goodep", "fake_good_ep"), ("exits", "fake_exits_on_import"), ("raises", "fake_raises_on_import"),
        ("absent", "fake_no_such_module"), ("disabled", "fake_raises_on_import")]]
    monkeypatch.setattr(plugins_module.metadata, "entry_points", lambda **_kw: eps)
    monkeypatch.setenv("DEPLOYC_DISABLE_PLUGINS", "disabled")
    registry = discover()
    assert registry.names() == ["goodep"]
    assert [(f.source.entry_point, f.diagnostic.rule, f.diagnostic.message) for f in registry.failures] == [
        ("absent", "DPC501", "plugin <unknown> ? (entry point absent = fake_no_such_module) failed to import: "
                             "ModuleNotFoundError: No module named 'fake_no_such_module'"),
        ("exits", "DPC501", "plugin <unknown> ? (entry point exits = fake_exits_on_import) failed to import: "
                            "SystemExit: 3"),
        ("raises", "DPC501", "plugin <unknown> ? (entry point raises = fake_raises_on_import) failed to import: "
                             "ImportError: needs missing_dependency"),
    ]
    assert registry.failures[0].diagnostic.hint == \
        "fix or uninstall <unknown>, or set DEPLOYC_DISABLE_PLUGINS=absent"


def _install_by_hand(source: Path, target: Path) -> None:
    """What an installer leaves on disk: the package and a dist-info with the entry points of pyproject.toml."""
    import shutil
    import tomllib

    project = tomllib.loads((source / "pyproject.toml").read_text())["project"]
    shutil.copytree(source / "deployc_echo", target / "deployc_echo")
    info = target / f"deployc_echo-{project['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    groups = project["entry-points"]
    (info / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{name} = {value}\n" for name, value in eps.items())
        for group, eps in groups.items()))


@pytest.fixture(scope="module")
def thirdparty_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/fixtures/thirdparty_backend installed as pip installs any plugin distribution.

    pip needs setuptools and wheel for ``--no-build-isolation``; a fresh virtualenv (CI's) has no
    ``wheel``, so without it the same layout is written by hand.
    """
    import shutil

    target = tmp_path_factory.mktemp("site")
    source = tmp_path_factory.mktemp("src") / "thirdparty_backend"
    shutil.copytree(REPO / "tests" / "fixtures" / "thirdparty_backend", source)
    done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                           "--no-index", "--disable-pip-version-check", "--target", str(target), str(source)],
                          capture_output=True, timeout=120, check=False)
    if done.returncode != 0:
        shutil.rmtree(target)
        target.mkdir()
        _install_by_hand(source, target)
    return target


def _backends(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    import os

    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("DEPLOYC_DISABLE_PLUGINS", None)
    # a real install imports for real: the 0.2 s time-out of the fault tests would fail it on a busy machine
    env.pop("DEPLOYC_PLUGIN_TIMEOUT_S", None)
    return subprocess.run([sys.executable, "-m", "deployc", "backends", *args], capture_output=True, text=True,
                          env=env, timeout=60, cwd=site, check=False)


def test_installed_thirdparty_backend_and_broken_entry_point(thirdparty_site: Path) -> None:
    done = _backends(thirdparty_site)
    lines = {line.split()[0]: line for line in done.stdout.splitlines()}
    assert done.returncode == 4, done.stderr  # a plugin failed
    assert done.stderr == ""
    assert lines["broken"] == (
        "broken     FAILED: plugin deployc-echo 1.0.0 (entry point broken = deployc_echo.broken) failed to import: "
        "ImportError: deployc_echo.broken needs a module that is not installed: missing_dependency")
    assert lines["echo"] == ("echo       Echo 1.0.0      example/echo:1.0.0  "
                             "[deployc-echo 1.0.0 (entry point echo = deployc_echo.plugin)]")


def test_disabling_the_broken_entry_point_makes_backends_clean(thirdparty_site: Path) -> None:
    import json
    import os

    env = {**os.environ, "PYTHONPATH": str(thirdparty_site), "DEPLOYC_DISABLE_PLUGINS": "broken"}
    env.pop("DEPLOYC_PLUGIN_TIMEOUT_S", None)  # a real import, at the default time-out (see _backends)
    done = subprocess.run([sys.executable, "-m", "deployc", "backends", "--format", "json"], capture_output=True,
                          text=True, env=env, timeout=60, cwd=thirdparty_site, check=False)
    rows = {row["name"]: row["state"] for row in json.loads(done.stdout)}
    assert "broken" not in rows
    assert rows["echo"] == "ok"


def test_builtin_vllm_backend_still_works_beside_a_broken_plugin(thirdparty_site: Path) -> None:
    done = _backends(thirdparty_site, "--format", "json")
    import json

    rows = {row["name"]: row for row in json.loads(done.stdout)}
    assert rows["vllm"]["state"] == "ok", rows["vllm"]
    assert rows["echo"]["state"] == "ok"
    assert rows["broken"]["state"] == "failed"


def test_build_with_the_installed_thirdparty_backend(thirdparty_site: Path, tmp_path: Path) -> None:
    """The third-party backend builds a real spec beside the broken entry point, through the public API only."""
    import os

    spec = REPO / "samples" / "llama70b-a100-nvlink.toml"
    env = {**os.environ, "PYTHONPATH": str(thirdparty_site)}
    env.pop("DEPLOYC_DISABLE_PLUGINS", None)
    env.pop("DEPLOYC_PLUGIN_TIMEOUT_S", None)  # a real import, at the default time-out (see _backends)
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "deployc", "build", str(spec), "-o", str(out), "--backend", "echo"],
                          capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stderr
    assert (out / "run.sh").read_text() == ("#!/usr/bin/env bash\nset -euo pipefail\n"
                                            "echo 'echo backend' TP4 max_model_len=7680\n")
    assert "Echo 1.0.0" in (out / "EXPLAIN.md").read_text()
