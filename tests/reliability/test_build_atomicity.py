"""``deployc build`` end to end: all or nothing, only over its own output, plugins confined, clean errors."""

from __future__ import annotations

import errno
import types
from pathlib import Path
from typing import Any

import pytest

from deployc import emit as emit_module
from deployc import plugins as plugins_module
from deployc.contract.backend import Artifact, BackendInfo, Emission
from deployc.plugins import PluginRegistry, PluginSource
from tests.reliability._support import PIPELINE_SAMPLE, require_pipeline, run_cli, tree


@pytest.fixture(autouse=True, scope="module")
def _pipeline_works() -> None:
    require_pipeline()


SPEC = str(PIPELINE_SAMPLE)


def test_rebuild_replaces_its_own_output(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run_cli(["build", SPEC, "-o", str(out)]).code == 0
    first = tree(out)
    assert run_cli(["build", SPEC, "-o", str(out)]).code == 0
    assert tree(out) == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_foreign_directory_is_refused_without_force(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    run = run_cli(["build", SPEC, "-o", str(out)])
    assert run.code == 1
    assert f"{out} holds files deployc did not write (notes.txt) [DPC601]" in run.err
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert run_cli(["build", SPEC, "-o", str(out), "--force"]).code == 0
    assert not (out / "notes.txt").exists()


@pytest.mark.parametrize("stage", ["emit", "write"])
def test_ctrl_c_during_a_build_exits_130_and_keeps_the_previous_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                       stage: str) -> None:
    from deployc import api

    out = tmp_path / "out"
    assert run_cli(["build", SPEC, "-o", str(out)]).code == 0
    before = tree(out)

    def interrupt(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    if stage == "emit":
        monkeypatch.setattr(api, "emit", interrupt)
    else:
        real = emit_module._write_tree

        def half_then_interrupt(root: Path, files: dict[str, bytes], executable: set[str]) -> None:
            real(root, dict(list(files.items())[: len(files) // 2]), executable)
            raise KeyboardInterrupt

        monkeypatch.setattr(emit_module, "_write_tree", half_then_interrupt)
    run = run_cli(["build", SPEC, "-o", str(out)])
    assert (run.code, run.err) == (130, "deployc: interrupted\n")
    assert tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.parametrize(("code", "words"), [(errno.EROFS, "read-only file system"),
                                             (errno.ENOSPC, "no space left on device"),
                                             (errno.EACCES, "permission denied")])
def test_unwritable_output_is_a_clean_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int,
                                            words: str) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise OSError(code, words)

    monkeypatch.setattr(emit_module, "_write_tree", refuse)
    run = run_cli(["build", SPEC, "-o", str(tmp_path / "out")])
    assert run.code == 1
    assert run.err.endswith(f"cannot write {tmp_path / 'out'}: {words} [DPC602]\n"
                            "  hint: choose another output directory with -o\n")
    assert list(tmp_path.iterdir()) == []


def _use(monkeypatch: pytest.MonkeyPatch, registry: PluginRegistry) -> None:
    """Make ``registry`` the one the CLI and the API use."""
    from deployc import api

    monkeypatch.setattr(plugins_module, "default_registry", lambda: registry)
    monkeypatch.setattr(api, "default_registry", lambda: registry)


def _evil_backend(path: str) -> tuple[PluginSource, types.ModuleType]:
    """The vLLM plugin under another name, emitting one artifact at ``path``."""
    import deployc_vllm.plugin as vllm

    module = types.ModuleType("evil.plugin")
    for hook in dir(vllm):
        if hook.startswith("deployc_"):
            setattr(module, hook, getattr(vllm, hook))
    info = vllm.deployc_backend_info()
    fields = {k: getattr(info, k) for k in ("engine", "engine_version", "image", "image_tag", "summary")}
    module.deployc_backend_info = lambda: BackendInfo(name="evil", **fields)  # type: ignore[attr-defined]
    module.deployc_emit = lambda **_hook_args: Emission(  # type: ignore[attr-defined]
        artifacts=(Artifact(path=path, content="#!/bin/sh\necho pwned\n", executable=True),))
    return PluginSource("evil-dist", "6.6.6", "evil", "evil.plugin"), module


@pytest.mark.parametrize("path", ["../escaped.sh", "/tmp/deployc-absolute.sh", "sub/../../escaped.sh", "plan.json"])
def test_plugin_writing_outside_the_output_is_a_plugin_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             path: str) -> None:
    registry = PluginRegistry([*[(s.source, s.plugin) for s in plugins_module.default_registry().backends.values()],
                               _evil_backend(path)])
    _use(monkeypatch, registry)
    out = tmp_path / "deep" / "out"
    run = run_cli(["build", SPEC, "-o", str(out), "--backend", "evil"])
    assert run.code == 4
    assert f"error: backend 'evil': artifact path {path!r} " in run.err
    assert "[DPC505]" in run.err
    assert list(tmp_path.iterdir()) == []
    assert not Path("/tmp/deployc-absolute.sh").exists()


def test_other_backends_build_while_a_plugin_is_broken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = types.ModuleType("broken.plugin")

    def fail() -> Any:
        raise RuntimeError("kaboom")

    broken.deployc_backend_info = fail  # type: ignore[attr-defined]
    registry = PluginRegistry([*[(s.source, s.plugin) for s in plugins_module.default_registry().backends.values()],
                               (PluginSource("broken-dist", "1", "broken", "broken.plugin"), broken)])
    _use(monkeypatch, registry)
    run = run_cli(["build", SPEC, "-o", str(tmp_path / "out")])
    assert run.code == 0, run.err
    assert registry.failures[0].diagnostic.message.startswith("plugin broken-dist 1 (entry point broken = ")
