"""The output directory is never missing, concurrent builds take turns, and a killed build's debris is cleaned.

A SIGKILL cannot be blocked or caught: what protects the user is that at no instant of a rebuild is
the output directory absent or half-written (the swap is one ``renameat2(RENAME_EXCHANGE)``), and
that the next build repairs what a killed one left.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from deployc import atomic_dir
from deployc import emit as emit_module
from deployc.diagnostics import OutputError
from deployc.emit import MANIFEST_NAME, write_build
from tests.reliability._support import REPO, tree

OLD = {"run.sh": b"#!/bin/sh\necho old\n", "k8s/deployment.yaml": b"kind: Deployment\n"}
NEW = {"run.sh": b"#!/bin/sh\necho new\n", "compose.yaml": b"services: {}\n"}


def _build(out: Path, files: dict[str, bytes], **kwargs: Any) -> None:
    write_build(out, files, {"run.sh"}, version="1", **kwargs)


def _contents(root: Path) -> dict[str, bytes] | None:
    if not root.is_dir():
        return None
    return {path: data for path, (data, _) in tree(root).items() if path != MANIFEST_NAME}


needs_exchange = pytest.mark.skipif(atomic_dir._renameat2() is None, reason="no renameat2 in this libc")


@needs_exchange
def test_the_output_exists_and_is_whole_at_every_line_of_a_rebuild(tmp_path: Path) -> None:
    """Where a SIGKILL could land: every line either module executes, signals blocked or not."""
    out = tmp_path / "out"
    _build(out, OLD)
    seen: list[tuple[str, dict[str, bytes] | None]] = []
    files = (emit_module.__file__, atomic_dir.__file__)

    def local(frame: FrameType, event: str, arg: object) -> Any:
        if event == "line":
            seen.append((f"{Path(frame.f_code.co_filename).name}:{frame.f_lineno}", _contents(out)))
        return local

    def tracer(frame: FrameType, _event: str, _arg: object) -> Any:
        return local if frame.f_code.co_filename in files else None

    previous = sys.gettrace()  # a coverage tracer, if any, is put back
    sys.settrace(tracer)
    try:
        _build(out, NEW)
    finally:
        sys.settrace(previous)
    assert len(seen) > 50
    wrong = [(where, state) for where, state in seen if state not in (OLD, NEW)]
    assert wrong == [], f"the output was missing or partial at {wrong[0][0]}"


def test_a_build_killed_between_the_fallback_renames_is_repaired(tmp_path: Path) -> None:
    """Without renameat2 the swap is two renames; a kill between them leaves only the hidden backup."""
    out = tmp_path / "out"
    _build(out, OLD)
    out.rename(tmp_path / ".out.deployc-old-abcd1234")  # where the kill left things
    (tmp_path / ".out.deployc-zyxw9876").mkdir()  # and the staging directory of that build
    (tmp_path / ".out.deployc-zyxw9876" / "run.sh").write_text("half")
    _build(out, NEW)  # the old output is put back first, so the usual ownership check applies to it
    assert _contents(out) == NEW
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_killed_builds_staging_directory_is_removed_by_the_next_build(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _build(out, OLD)
    for name in (".out.deployc-k1ll3d00", ".out.deployc-old-k1ll3d01"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "run.sh").write_text("debris")
    keep = [tmp_path / ".out.deployc-mine", tmp_path / ".other.deployc-abcdefgh", tmp_path / ".out.deployc-abcdefghi"]
    for path in keep:  # not deployc's exact names for this output: the user's
        path.mkdir()
    _build(out, NEW)
    assert _contents(out) == NEW
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["out", *(p.name for p in keep)])


def test_sigkill_at_random_moments_never_loses_the_output(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _build(out, OLD)
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(REPO)!r})
        from deployc.emit import write_build
        files = {{f"f{{i}}/{{j}}.txt": b"x" * 2000 for i in range(20) for j in range(20)}}
        while True:
            write_build({str(out)!r}, files, set(), version="2")
    """)
    for delay in (0.3, 0.45, 0.6, 0.75, 0.9, 1.05):
        with subprocess.Popen([sys.executable, "-c", script]) as proc:
            try:
                proc.wait(delay)
            except subprocess.TimeoutExpired:
                proc.kill()
        assert out.is_dir() and (out / MANIFEST_NAME).is_file()
    _build(out, NEW)
    assert _contents(out) == NEW
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


_RACER = """
import hashlib, sys, time
from pathlib import Path
sys.path.insert(0, {repo!r})
import deployc.emit as emit
out, marks, role = Path({out!r}), Path({marks!r}), sys.argv[1]

def wait_for(condition, seconds):
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)

if role == "first":  # stages its build, then lets the second one start checking before it swaps
    original = emit._write_tree
    def staged(root, files, executable):
        original(root, files, executable)
        (marks / "first-staged").touch()
        wait_for(lambda: (marks / "second-checking").exists(), 3)
    emit._write_tree = staged
    files = {{"run.sh": b"new"}}
else:  # checks ownership file by file while the first one swaps its build in
    wait_for(lambda: (marks / "first-staged").exists(), 30)
    class SlowHashlib:
        @staticmethod
        def sha256(data=b""):
            if not (marks / "second-checking").exists():
                (marks / "second-checking").touch()
                wait_for(lambda: (out / "run.sh").read_bytes() == b"new", 3)
            return hashlib.sha256(data)
    emit.hashlib = SlowHashlib
    files = {{"run.sh": b"second"}}
emit.write_build(out, files, set(), version="1")
"""


def test_concurrent_builds_take_turns(tmp_path: Path) -> None:
    """A second build checked the output while the first swapped it in, and saw "edited" files."""
    out, marks = tmp_path / "out", tmp_path / "marks"
    marks.mkdir()
    _build(out, {"k8s/a.yaml": b"a", "run.sh": b"old"})
    script = _RACER.format(repo=str(REPO), out=str(out), marks=str(marks))
    procs = [subprocess.Popen([sys.executable, "-c", script, role], stderr=subprocess.PIPE, text=True)
             for role in ("first", "second")]
    results = [(proc.wait(60), proc.communicate()[1]) for proc in procs]
    assert results == [(0, ""), (0, "")]
    assert (out / "run.sh").read_bytes() == b"second"  # the second waited for the first, then replaced it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["marks", "out"]


def test_a_build_stuck_holding_the_lock_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    monkeypatch.setattr(atomic_dir, "LOCK_WAIT_S", 0.2)
    monkeypatch.setattr(emit_module, "LOCK_WAIT_S", 0.2)
    real = atomic_dir.build_lock
    monkeypatch.setattr(emit_module, "build_lock", lambda parent: real(parent, 0.2))
    with real(tmp_path), pytest.raises(OutputError) as caught:
        _build(out, NEW)
    (diagnostic,) = caught.value.diagnostics
    assert (diagnostic.rule, diagnostic.message) == (
        "DPC603", f"another deployc build has been writing into {tmp_path} for 0.2 s")
    assert not out.exists()


@pytest.mark.parametrize(("manifest", "problem"), [
    (b'{"files": ["run.sh"]}', 'has no "files" table of path → sha256'),
    (b'{"files": {"run.sh": 5}}', 'has no "files" table of path → sha256'),
    (b'["files"]', 'has no "files" table of path → sha256'),
    (b"\xff{}", "is not JSON ('utf-8' codec can't decode byte 0xff in position 0: invalid start byte)"),
], ids=["files-a-list", "hash-a-number", "not-an-object", "not-utf8"])
def test_a_corrupt_manifest_is_a_clear_error(tmp_path: Path, manifest: bytes, problem: str) -> None:
    out = tmp_path / "out"
    _build(out, OLD)
    (out / MANIFEST_NAME).write_bytes(manifest)
    with pytest.raises(OutputError) as caught:
        _build(out, NEW)
    (diagnostic,) = caught.value.diagnostics
    assert (diagnostic.rule, diagnostic.message) == (
        "DPC601", f"{out / MANIFEST_NAME} {problem}: deployc cannot tell which files it wrote")
    assert _contents(out) == OLD


@pytest.mark.parametrize("directory", ["/", "/etc", "/usr/share", "/var/lib", "/home", "/srv"])
def test_force_never_replaces_a_system_directory(directory: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def must_not_write(*args: object, **kwargs: object) -> Any:
        raise AssertionError("the build went on to write")

    monkeypatch.setattr(tempfile, "mkdtemp", must_not_write)
    monkeypatch.setattr(emit_module, "build_lock", must_not_write)
    with pytest.raises(OutputError) as caught:
        _build(Path(directory), NEW, force=True)
    assert caught.value.diagnostics[0].message == (
        f"{directory} is a system directory; a build replaces its output directory whole")


def test_force_never_replaces_a_mount_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "mnt"
    out.mkdir()
    (out / "data").write_text("a mounted volume\n")
    monkeypatch.setattr(os.path, "ismount", lambda path: Path(path) == out)
    with pytest.raises(OutputError) as caught:
        _build(out, NEW, force=True)
    assert caught.value.diagnostics[0].message == f"{out} is a mount point; a build replaces its output directory whole"
    assert (out / "data").read_text() == "a mounted volume\n"


def test_manifest_written_is_what_the_reader_accepts(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _build(out, OLD)
    body = json.loads((out / MANIFEST_NAME).read_text())
    assert sorted(body["files"]) == sorted(OLD)
    _build(out, NEW)  # owned, unchanged: replaced
    assert _contents(out) == NEW
