"""Writing a build's files: path confinement, ownership, and an all-or-nothing directory swap.

A build is assembled in memory, written into a fresh temporary directory beside the
target, then exchanged with it (:mod:`deployc.atomic_dir`) while SIGINT and SIGTERM are
blocked.  A failure, Ctrl-C or kill at any point leaves either the previous output untouched
or no output at all.  deployc only
replaces a directory it wrote before (it holds deployc's manifest) unless ``force``.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import signal
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath

from attrs import frozen

from deployc.atomic_dir import LOCK_WAIT_S, build_lock, remove_leftovers, staging_prefix, swap_in
from deployc.contract.backend import Artifact
from deployc.diagnostics import Diagnostic, OutputError, PluginError

MANIFEST_NAME = ".deployc-manifest.json"
RESERVED_NAMES = frozenset({MANIFEST_NAME, "plan.json", "EXPLAIN.md", "deployc.lock.toml"})


@frozen
class BuildOutput:
    """What was written where."""

    directory: Path
    files: tuple[str, ...]


def check_artifact_paths(artifacts: Sequence[Artifact], plugin: str, reserved: frozenset[str]) -> None:
    """Reject absolute paths, ``..``, backslashes, duplicates and clashes with deployc's own files."""
    seen: set[str] = set()
    for artifact in artifacts:
        path = artifact.path
        pure = PurePosixPath(path)
        problem = None
        if not path or pure.is_absolute() or "\\" in path or path.startswith("~"):
            problem = "is not a relative path"
        elif any(part in ("..", ".", "") for part in path.split("/")):
            problem = "escapes or is not normalised (.. or . or //)"
        elif path in seen:
            problem = "is emitted twice"
        elif path in reserved or any(p in reserved for p in _prefixes(path)):
            problem = "clashes with a file deployc writes itself"
        elif any(p in seen for p in _prefixes(path)) or any(other.startswith(path + "/") for other in seen):
            problem = "is both a file and a directory among the artifacts"
        elif any(ord(ch) < 0x20 for ch in path):
            problem = "contains control characters"
        if problem:
            raise PluginError([Diagnostic(rule="DPC505", message=f"backend {plugin!r}: artifact path {path!r} "
                                          f"{problem}")])
        seen.add(path)


def _prefixes(path: str) -> list[str]:
    """``a/b/c`` → ``["a", "a/b"]``: the directories a path needs."""
    parts = path.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def _manifest(files: dict[str, bytes], version: str) -> bytes:
    body = {
        "deployc_version": version,
        "files": {path: hashlib.sha256(data).hexdigest() for path, data in sorted(files.items())},
    }
    return (json.dumps(body, indent=2) + "\n").encode()


def _entries(directory: Path) -> list[Path]:
    """Everything below ``directory``, links not followed (a link to a directory is one entry)."""
    out: list[Path] = []
    def unreadable(error: OSError) -> None:
        raise error  # an unlistable subdirectory must not look empty (and so deployc's own)

    for root, dirs, files in os.walk(directory, onerror=unreadable, followlinks=False):
        base = Path(root)
        out += [base / name for name in files]
        for name in dirs:
            path = base / name
            # A link to a directory, or a directory with nothing deployc wrote in it, is the user's.
            if path.is_symlink() or not any(path.iterdir()):
                out.append(path)
    return out


def _owned(directory: Path) -> tuple[bool, list[str]]:
    """Whether deployc wrote this directory, and what in it is not exactly what deployc wrote.

    Untracked: any entry the manifest does not list (files, links, empty directories), and any
    listed file whose bytes no longer match the manifest's hash (a user's edit).
    """
    manifest = directory / MANIFEST_NAME
    present = {str(p.relative_to(directory)): p for p in _entries(directory)}
    if not manifest.is_file() or manifest.is_symlink():
        return (not present), sorted(present)
    listed = _read_manifest(manifest)
    foreign = []
    for rel, path in sorted(present.items()):
        if rel == MANIFEST_NAME:
            continue
        if rel not in listed or path.is_symlink() or not path.is_file():
            foreign.append(rel)
        elif hashlib.sha256(path.read_bytes()).hexdigest() != listed[rel]:
            foreign.append(f"{rel} (edited)")
    return True, foreign


def _read_manifest(manifest: Path) -> dict[str, str]:
    """The manifest's file → sha256 table; a clear error when it is not one (a corrupt file, or not ours)."""
    try:
        body = json.loads(manifest.read_bytes())
    except ValueError as exc:  # JSON syntax, or not UTF-8
        problem = f"is not JSON ({str(exc).splitlines()[0][:80]})"
    else:
        files = body.get("files") if isinstance(body, dict) else None
        if isinstance(files, dict) and all(
                isinstance(k, str) and isinstance(v, str) and _SHA256.fullmatch(v) for k, v in files.items()):
            return files
        problem = 'has no "files" table of path → sha256'
    raise OutputError([Diagnostic(
        rule="DPC601", message=f"{manifest} {problem}: deployc cannot tell which files it wrote",
        hint="if this is a build of deployc's, remove the directory (or pass --force); otherwise choose another "
             "output directory")])


_SHA256 = re.compile(r"[0-9a-f]{64}")


@contextlib.contextmanager
def _sigint_blocked() -> Iterator[None]:
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _write_tree(root: Path, files: dict[str, bytes], executable: set[str]) -> None:
    for rel, data in sorted(files.items()):
        path = root / rel
        for parent in reversed(PurePosixPath(rel).parents):
            directory = root / parent
            if str(parent) == ".":
                continue
            if not directory.is_dir():
                directory.mkdir()
                directory.chmod(0o755)  # not the process umask: a world-writable k8s/ could be fed manifests
        with path.open("xb") as handle:  # x: never follow or reuse an existing entry
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        path.chmod(0o755 if rel in executable else 0o644)


def _os_error(directory: Path, exc: OSError) -> OutputError:
    why = {errno.EACCES: "permission denied", errno.EROFS: "read-only file system",
           errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded"}.get(
        exc.errno or 0, exc.strerror or str(exc))
    return OutputError([Diagnostic(rule="DPC602", message=f"cannot write {directory}: {why}",
                                   hint="choose another output directory with -o")])


# Directories a build must never replace, whatever --force says: the root's children, and system trees.
_SYSTEM_PARENTS = frozenset(Path(p) for p in ("/", "/usr", "/etc", "/boot", "/dev", "/proc", "/sys", "/bin",
                                               "/sbin", "/lib", "/lib64", "/usr/local"))
_SYSTEM_DIRS = frozenset(Path(p) for p in ("/", "/var/lib", "/var/log", "/var/cache", "/var/spool", "/var/tmp",  # noqa: S108
                                            "/var/run", "/var/mail"))


def _refuse_system(directory: Path) -> None:
    """Never replace a mount point or a system directory, even with --force."""
    resolved = directory.resolve()
    why = None
    if resolved in _SYSTEM_DIRS or resolved.parent in _SYSTEM_PARENTS:
        why = "is a system directory"
    elif resolved.is_dir() and os.path.ismount(resolved):
        why = "is a mount point"
    if why:
        raise OutputError([Diagnostic(
            rule="DPC601", message=f"{directory} {why}; a build replaces its output directory whole",
            hint="write the build to a directory of its own, e.g. -o out/<name>")])


def _refuse_precious(directory: Path, protect: Sequence[Path]) -> None:
    """Never replace, even with --force, a directory that holds the current directory, home or a spec."""
    _refuse_system(directory)
    resolved = directory.resolve()
    keep = [Path.cwd(), Path.home(), *protect]
    for path in keep:
        target = path.resolve()
        if target == resolved or resolved in target.parents:
            raise OutputError([Diagnostic(
                rule="DPC601", message=f"{directory} contains {path}; a build replaces its output directory whole",
                hint="write the build to a directory of its own, e.g. -o out/<name>")])


def write_build(directory: Path, files: dict[str, bytes], executable: set[str], *, version: str,
                force: bool = False, protect: Sequence[Path] = ()) -> BuildOutput:
    """Write ``files`` (relative path → bytes) as the whole content of ``directory``, atomically."""
    directory = Path.cwd() / directory  # absolute, but not resolved: a symlink is refused, not followed
    if directory.is_symlink():
        raise OutputError([Diagnostic(rule="DPC602", message=f"{directory} is a symbolic link",
                                      hint="give the real directory; deployc does not write through links")])
    if directory.exists() and not directory.is_dir():
        raise OutputError([Diagnostic(rule="DPC602", message=f"{directory} exists and is not a directory")])
    _refuse_precious(directory, protect)
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        lock = build_lock(directory.parent)
        with lock:
            remove_leftovers(directory)  # of a build that was killed: no build runs while we hold the lock
            _check_owned(directory, force)
            return _write_locked(directory, files, executable, version)
    except TimeoutError:
        raise OutputError([Diagnostic(
            rule="DPC603", message=f"another deployc build has been writing into {directory.parent} for "
                                   f"{LOCK_WAIT_S:g} s", hint="wait for it to finish, or stop it")]) from None
    except OSError as exc:
        raise _os_error(directory, exc) from None


def _check_owned(directory: Path, force: bool) -> None:
    if not directory.exists() or force:
        return
    owned, untracked = _owned(directory)
    if not owned or untracked:
        listing = ", ".join(untracked[:5]) + (" …" if len(untracked) > 5 else "")
        raise OutputError([Diagnostic(
            rule="DPC601",
            message=f"{directory} holds files deployc did not write ({listing})",
            hint="choose an empty or new directory, or pass --force to replace it entirely")])


def _write_locked(directory: Path, files: dict[str, bytes], executable: set[str], version: str) -> BuildOutput:
    all_files = dict(files)
    all_files[MANIFEST_NAME] = _manifest(files, version)
    staging: Path | None = None
    try:
        # Created with SIGINT held back and inside the cleanup's try: an interrupt delivered when the mask
        # is restored still finds the directory to remove.
        with _sigint_blocked():
            staging = Path(tempfile.mkdtemp(prefix=staging_prefix(directory), dir=directory.parent))
        _write_tree(staging, all_files, executable)
        staging.chmod(0o755)
        with _sigint_blocked():
            swap_in(staging, directory)
    except BaseException:
        _discard(staging)
        raise
    return BuildOutput(directory=directory, files=tuple(sorted(all_files)))


def _discard(staging: Path | None) -> None:
    if staging is not None:
        shutil.rmtree(staging, ignore_errors=True)
