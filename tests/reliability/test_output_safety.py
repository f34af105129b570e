"""The writer never loses or clobbers a user's files: atomic at every line, owned, confined, clean errors.

Complements tests/core/test_emit.py with adversarial cases: a Ctrl-C injected at *every* line the
writer executes, real SIGINT during the swap, disk full half-way, planted symlinks, artifact paths
that clash as file and directory, directories deployc cannot read.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from deployc import atomic_dir
from deployc import emit as emit_module
from deployc.contract.backend import Artifact
from deployc.diagnostics import OutputError, PluginError
from deployc.emit import MANIFEST_NAME, RESERVED_NAMES, check_artifact_paths, write_build
from tests.reliability._support import tree

OLD = {"run.sh": b"#!/bin/sh\necho old\n", "k8s/deployment.yaml": b"kind: Deployment\n", "README": b"old\n"}
NEW = {"run.sh": b"#!/bin/sh\necho new\n", "compose.yaml": b"services: {}\n", "k8s/svc.yaml": b"kind: Service\n"}


def _build(out: Path, files: dict[str, bytes], **kwargs: Any) -> None:
    write_build(out, files, {"run.sh"}, version="1", **kwargs)


def _contents(root: Path) -> dict[str, bytes]:
    return {path: data for path, (data, _) in tree(root).items() if path != MANIFEST_NAME}


def _interrupt_at_line(n: int) -> tuple[Callable[..., Any], Callable[[], int], list[str]]:
    """A trace function raising KeyboardInterrupt at the n-th line deployc.emit (or atomic_dir) executes.

    Lines run while SIGINT is blocked are skipped: a real Ctrl-C cannot arrive there (it is
    delivered when the mask is restored, which the next traced line models).
    """
    seen = 0
    where: list[str] = []

    def local(frame: FrameType, event: str, arg: object) -> Any:
        nonlocal seen
        if event == "line" and signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, []):
            seen += 1
            if seen == n:
                where.append(f"emit.py:{frame.f_lineno} in {frame.f_code.co_name}")
                raise KeyboardInterrupt
        return local

    def tracer(frame: FrameType, event: str, arg: object) -> Any:
        return local if frame.f_code.co_filename in (emit_module.__file__, atomic_dir.__file__) else None

    return tracer, lambda: seen, where


@contextlib.contextmanager
def _tracing(tracer: Callable[..., Any]) -> Iterator[None]:
    """Trace the block with ``tracer``, then put back the trace function before it (coverage's, when it runs)."""
    outer = sys.gettrace()
    sys.settrace(tracer)
    try:
        yield
    finally:
        sys.settrace(outer)


def test_tracing_puts_back_the_tracer_it_replaced() -> None:
    def outer(frame: FrameType, event: str, arg: object) -> None:
        return None

    before = sys.gettrace()
    sys.settrace(outer)
    try:
        with contextlib.suppress(KeyboardInterrupt), _tracing(lambda *_: None):
            assert sys.gettrace() is not outer
            raise KeyboardInterrupt
        assert sys.gettrace() is outer
    finally:
        sys.settrace(before)


def _interrupt_everywhere(tmp_path: Path, previous: bool) -> list[tuple[str, dict[str, bytes] | None, list[str]]]:
    """Build NEW (over OLD when ``previous``) once per line of deployc.emit, with Ctrl-C at that line.

    Returns, per interrupted build: where it was interrupted, the output left behind (None when
    there is no output directory) and what else is left beside it.
    """
    results = []
    for n in range(1, 10_000):
        parent = tmp_path / str(n)
        parent.mkdir()
        out = parent / "out"
        if previous:
            _build(out, OLD)
        tracer, lines_seen, where = _interrupt_at_line(n)
        with _tracing(tracer):
            try:
                _build(out, NEW)
            except KeyboardInterrupt:
                results.append((where[0], _contents(out) if out.exists() else None,
                                sorted(p.name for p in parent.iterdir() if p.name != "out")))
        if n > lines_seen():  # the build ran to the end without reaching line n
            break
    assert len(results) > 20  # the writer really was interrupted all along the way
    return results


Interrupted = list[tuple[str, dict[str, bytes] | None, list[str]]]


@pytest.fixture(scope="module", params=[True, False], ids=["over-previous-build", "fresh"])
def interrupted(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[bool, Interrupted]:
    """The builds interrupted at every line, computed once for the two tests below."""
    return request.param, _interrupt_everywhere(tmp_path_factory.mktemp("ctrl-c"), request.param)


def test_ctrl_c_at_every_line_leaves_the_old_or_the_new_output(interrupted: tuple[bool, Interrupted]) -> None:
    previous, results = interrupted
    for where, after, _ in results:
        assert after in (NEW, OLD if previous else None), f"interrupted at {where}: {after}"


def test_ctrl_c_at_every_line_leaves_no_debris(interrupted: tuple[bool, Interrupted]) -> None:
    for where, _, debris in interrupted[1]:
        assert debris == [], f"interrupted at {where}"


def test_real_sigint_during_the_swap_is_held_until_the_new_output_is_complete(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    _build(out, OLD)
    real_rename = Path.rename
    monkeypatch.setattr(atomic_dir, "_rename2", lambda *_args: False)  # the two-rename fallback (no renameat2)

    def rename_then_ctrl_c(self: Path, target: Any) -> Any:
        result = real_rename(self, target)
        os.kill(os.getpid(), signal.SIGINT)  # arrives between the two renames of the swap
        return result

    monkeypatch.setattr(emit_module.Path, "rename", rename_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        _build(out, NEW)
    assert _contents(out) == NEW
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_disk_full_half_way_keeps_the_previous_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    _build(out, OLD)
    before = tree(out)
    real_open = Path.open
    opened = []

    def open_until_full(self: Path, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if "x" in mode:
            opened.append(self.name)
            if len(opened) == 2:
                raise OSError(errno.ENOSPC, "No space left on device")
        return real_open(self, mode, *args, **kwargs)

    monkeypatch.setattr(emit_module.Path, "open", open_until_full)
    with pytest.raises(OutputError) as exc:
        _build(out, NEW)
    assert exc.value.diagnostics[0].format_text() == (
        f"<spec>: error: cannot write {out}: no space left on device [DPC602]\n"
        "  hint: choose another output directory with -o")
    assert tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_failed_final_rename_restores_the_previous_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    _build(out, OLD)
    before = tree(out)
    real_rename = Path.rename
    monkeypatch.setattr(atomic_dir, "_rename2", lambda *_args: False)  # the two-rename fallback (no renameat2)

    def refuse_staging(self: Path, target: Any) -> Any:
        if ".deployc-" in self.name and "-old-" not in self.name:
            raise OSError(errno.EACCES, "Permission denied")
        return real_rename(self, target)

    monkeypatch.setattr(emit_module.Path, "rename", refuse_staging)
    with pytest.raises(OutputError) as exc:
        _build(out, NEW)
    assert exc.value.diagnostics[0].message == f"cannot write {out}: permission denied"
    assert tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_output_below_a_file_is_a_clean_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError) as exc:
        _build(tmp_path / "file" / "out", NEW)
    assert exc.value.diagnostics[0].rule == "DPC602"
    assert (tmp_path / "file").read_text() == "x"


def test_unlistable_existing_output_is_a_clean_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    _build(out, OLD)
    (out / "k8s" / "mine.yaml").write_text("kind: Secret\n")
    real_scandir = os.scandir

    def denied(path: Any = ".") -> Any:
        if isinstance(path, str | os.PathLike) and Path(path) == out / "k8s":
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", denied)  # CI runs as root: chmod cannot simulate this
    with pytest.raises(OutputError) as exc:
        _build(out, NEW)
    assert exc.value.diagnostics[0].rule in ("DPC601", "DPC602")
    monkeypatch.undo()
    assert (out / "k8s" / "mine.yaml").read_text() == "kind: Secret\n"


# -- ownership -----------------------------------------------------------------------------------


def test_planted_symlink_in_place_of_an_owned_file_is_never_followed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    _build(out, OLD)
    (out / "run.sh").unlink()
    (out / "run.sh").symlink_to(victim)
    with contextlib.suppress(OutputError):  # refused: the link is not the file deployc wrote
        _build(out, NEW)
        assert not (out / "run.sh").is_symlink()
        assert _contents(out) == NEW
    assert victim.read_text() == "precious\n"


def test_dangling_symlink_as_output_is_refused(tmp_path: Path) -> None:
    (tmp_path / "out").symlink_to(tmp_path / "nowhere")
    with pytest.raises(OutputError) as exc:
        _build(tmp_path / "out", NEW)
    assert exc.value.diagnostics[0].message == f"{tmp_path / 'out'} is a symbolic link"
    assert not (tmp_path / "nowhere").exists()


def test_forged_or_corrupt_manifest_does_not_grant_ownership(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(OutputError) as exc:
        _build(out, NEW)
    assert exc.value.diagnostics[0].rule == "DPC601"
    assert (out / "notes.txt").read_text() == "mine"


def _plant_directory_symlink(out: Path, tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "today.log").write_text("log\n")
    (out / "logs").symlink_to(tmp_path / "logs")


def _plant_empty_directory(out: Path, tmp_path: Path) -> None:
    (out / "cache").mkdir()


def _edit_tracked_file(out: Path, tmp_path: Path) -> None:
    (out / "run.sh").write_text("#!/bin/sh\necho my local fix\n")


@pytest.mark.parametrize("plant", [_plant_directory_symlink, _plant_empty_directory, _edit_tracked_file],
                         ids=["symlink-to-directory", "empty-directory", "edited-tracked-file"])
def test_rebuild_refuses_what_the_user_added_or_changed(tmp_path: Path, plant: Callable[[Path, Path], None]) -> None:
    out = tmp_path / "out"
    _build(out, OLD)
    plant(out, tmp_path)
    with pytest.raises(OutputError) as exc:
        _build(out, NEW)
    assert exc.value.diagnostics[0].rule == "DPC601"


def test_rebuild_never_touches_what_a_directory_symlink_points_to(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _build(out, OLD)
    _plant_directory_symlink(out, tmp_path)
    with contextlib.suppress(OutputError):  # refusing is right too (see above)
        _build(out, NEW)
    assert (tmp_path / "logs" / "today.log").read_text() == "log\n"


def test_manifest_lists_exactly_what_was_written(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _build(out, NEW)
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert sorted(manifest["files"]) == sorted(NEW)


# -- confinement of plugin paths -----------------------------------------------------------------


@pytest.mark.parametrize("path", ["/abs", "../up", "a/../../up", "a/./b", "a//b", "a/", "~root/x", "C:\\x",
                                  "a\x00b", "a\tb", "..", ".", ""])
def test_escaping_or_malformed_artifact_paths_are_plugin_errors(path: str) -> None:
    with pytest.raises(PluginError) as exc:
        check_artifact_paths([Artifact(path=path, content="")], "evil", RESERVED_NAMES)
    assert exc.value.diagnostics[0].rule == "DPC505"
    assert exc.value.diagnostics[0].message.startswith(f"backend 'evil': artifact path {path!r} ")


@pytest.mark.parametrize("paths", [("a", "a/b"), ("a/b", "a"), ("plan.json/x",), (f"{MANIFEST_NAME}/x",)],
                         ids=["file-then-dir", "dir-then-file", "under-plan-json", "under-manifest"])
def test_artifact_paths_clashing_as_file_and_directory_are_plugin_errors(paths: tuple[str, ...]) -> None:
    with pytest.raises(PluginError) as exc:
        check_artifact_paths([Artifact(path=p, content="") for p in paths], "evil", RESERVED_NAMES)
    assert exc.value.diagnostics[0].rule == "DPC505"
