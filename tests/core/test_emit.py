"""Atomic, owned, confined writing of build outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deployc import emit as emit_module
from deployc.contract.backend import Artifact
from deployc.diagnostics import OutputError, PluginError
from deployc.emit import MANIFEST_NAME, RESERVED_NAMES, check_artifact_paths, write_build

FILES = {"run.sh": b"#!/bin/sh\necho hi\n", "k8s/deployment.yaml": b"kind: Deployment\n"}


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_writes_files_modes_and_manifest(tmp_path: Path):
    out = tmp_path / "out"
    result = write_build(out, FILES, {"run.sh"}, version="9.9")
    assert result.files == (MANIFEST_NAME, "k8s/deployment.yaml", "run.sh")
    assert (out / "run.sh").stat().st_mode & 0o777 == 0o755
    assert (out / "k8s/deployment.yaml").stat().st_mode & 0o777 == 0o644
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert sorted(manifest["files"]) == ["k8s/deployment.yaml", "run.sh"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging directory left behind


def test_same_input_same_bytes(tmp_path: Path):
    write_build(tmp_path / "a", FILES, {"run.sh"}, version="1")
    write_build(tmp_path / "b", FILES, {"run.sh"}, version="1")
    assert _tree(tmp_path / "a") == _tree(tmp_path / "b")


def test_rebuild_replaces_own_output(tmp_path: Path):
    out = tmp_path / "out"
    write_build(out, FILES, set(), version="1")
    write_build(out, {"run.sh": b"new\n"}, set(), version="1")
    assert sorted(_tree(out)) == [MANIFEST_NAME, "run.sh"]
    assert (out / "run.sh").read_bytes() == b"new\n"


def test_refuses_directory_it_does_not_own(tmp_path: Path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(OutputError) as exc:
        write_build(out, FILES, set(), version="1")
    (diag,) = exc.value.diagnostics
    assert diag.format_text() == (
        f"<spec>: error: {out} holds files deployc did not write (notes.txt) [DPC601]\n"
        "  hint: choose an empty or new directory, or pass --force to replace it entirely")
    assert (out / "notes.txt").read_text() == "mine"


def test_refuses_untracked_file_in_owned_directory(tmp_path: Path):
    out = tmp_path / "out"
    write_build(out, FILES, set(), version="1")
    (out / "added-by-hand.txt").write_text("x")
    with pytest.raises(OutputError):
        write_build(out, FILES, set(), version="1")
    assert (out / "added-by-hand.txt").exists()


def test_force_replaces_foreign_directory(tmp_path: Path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    write_build(out, FILES, set(), version="1", force=True)
    assert not (out / "notes.txt").exists()


def test_failure_midway_keeps_previous_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    out = tmp_path / "out"
    write_build(out, FILES, set(), version="1")
    before = _tree(out)

    def boom(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(emit_module, "swap_in", boom)
    with pytest.raises(KeyboardInterrupt):
        write_build(out, {"run.sh": b"half\n"}, set(), version="1")
    assert _tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_interrupt_while_writing_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    calls = {"n": 0}
    real = emit_module._write_tree

    def interrupted(root: Path, files: dict[str, bytes], executable: set[str]) -> None:
        calls["n"] += 1
        real(root, dict(list(files.items())[:1]), executable)
        raise KeyboardInterrupt

    monkeypatch.setattr(emit_module, "_write_tree", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_build(tmp_path / "out", FILES, set(), version="1")
    assert list(tmp_path.iterdir()) == []


def test_symlinked_output_is_refused(tmp_path: Path):
    target = tmp_path / "elsewhere"
    target.mkdir()
    (tmp_path / "out").symlink_to(target)
    with pytest.raises(OutputError) as exc:
        write_build(tmp_path / "out", FILES, set(), version="1")
    assert exc.value.diagnostics[0].rule == "DPC602"
    assert list(target.iterdir()) == []


@pytest.mark.parametrize(("errno_", "words"), [(13, "permission denied"), (30, "read-only file system")])
def test_unwritable_location_is_a_clean_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, errno_: int,
                                              words: str):
    # Simulated: CI runs as root, which ignores directory permissions.
    def refuse(*args: object, **kwargs: object) -> str:
        raise OSError(errno_, words)

    monkeypatch.setattr(emit_module.tempfile, "mkdtemp", refuse)
    with pytest.raises(OutputError) as exc:
        write_build(tmp_path / "out", FILES, set(), version="1")
    assert exc.value.diagnostics[0].format_text() == (
        f"<spec>: error: cannot write {tmp_path / 'out'}: {words} [DPC602]\n"
        "  hint: choose another output directory with -o")
    assert list(tmp_path.iterdir()) == []


def test_full_disk_is_a_clean_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    def full(root: Path, files: dict[str, bytes], executable: set[str]) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(emit_module, "_write_tree", full)
    with pytest.raises(OutputError) as exc:
        write_build(tmp_path / "out", FILES, set(), version="1")
    assert exc.value.diagnostics[0].message == f"cannot write {tmp_path / 'out'}: no space left on device"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("path", ["/etc/passwd", "../x", "a/../../x", "a//b", "./a", "~/x", "a\\b", "plan.json",
                                  "", "a\nb"])
def test_plugin_paths_are_confined(path: str):
    with pytest.raises(PluginError) as exc:
        check_artifact_paths([Artifact(path=path, content="")], "evil", RESERVED_NAMES)
    assert exc.value.diagnostics[0].rule == "DPC505"


def test_duplicate_plugin_paths_are_rejected():
    with pytest.raises(PluginError) as exc:
        check_artifact_paths([Artifact(path="a", content=""), Artifact(path="a", content="")], "p", RESERVED_NAMES)
    assert "is emitted twice" in exc.value.diagnostics[0].message


@pytest.mark.parametrize("where", ["cwd", "parent-of-cwd", "home", "spec-dir"])
def test_force_never_replaces_a_directory_holding_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       where: str):
    work = tmp_path / "project"
    (work / "sub").mkdir(parents=True)
    spec = work / "spec.toml"
    spec.write_text("x")
    monkeypatch.setenv("HOME", str(work))
    monkeypatch.chdir(work / "sub")
    directory = {"cwd": work / "sub", "parent-of-cwd": work, "home": work, "spec-dir": work}[where]
    with pytest.raises(OutputError) as exc:
        write_build(directory, FILES, set(), version="1", force=True, protect=[spec])
    assert exc.value.diagnostics[0].rule == "DPC601"
    assert spec.read_text() == "x"
