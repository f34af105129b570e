"""Replacing a directory with no moment where it is missing, one build at a time, and no debris left behind.

The new build is written into a staging directory beside the output, then the two are exchanged
with one ``renameat2(RENAME_EXCHANGE)`` call (Linux 3.15+, glibc 2.28+): a SIGKILL at any instant
leaves the old output or the new one, never neither.  Where the kernel, libc or file system cannot
exchange, the old output is renamed aside and the new one renamed in; a kill between the two leaves
the old output under a hidden name, which the next build puts back before anything else.

Builds into the same parent directory hold an exclusive ``flock`` on it, so two concurrent builds
take turns instead of each seeing the other's half-written files, and the staging directories of a
build that was killed (``.NAME.deployc-XXXXXXXX``) can be removed safely by the next.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # not POSIX: builds are not serialised (docs/security.md)
    fcntl = None  # type: ignore[assignment]

AT_FDCWD = -100  # <fcntl.h>: paths relative to the current directory
RENAME_NOREPLACE = 1  # <linux/fs.h>
RENAME_EXCHANGE = 2  # <linux/fs.h>
LOCK_WAIT_S = 60.0  # a build takes seconds; a lock held longer than this is a stuck build, reported


def staging_prefix(directory: Path) -> str:
    """``.NAME.deployc-``: the hidden names of a build's staging and backup directories."""
    return f".{directory.name}.deployc-"


def _leftover(directory: Path) -> re.Pattern[str]:
    # tempfile.mkdtemp's suffix: 8 characters of [a-z0-9_].
    return re.compile(re.escape(staging_prefix(directory)) + r"(old-)?[a-z0-9_]{8}")


@functools.cache
def _renameat2() -> Callable[..., int] | None:
    """libc's renameat2, or None where there is none (musl before 1.2.3, macOS, glibc before 2.28)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    function = getattr(libc, "renameat2", None)
    if function is None:
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function  # type: ignore[no-any-return]


def _rename2(source: Path, target: Path, flags: int) -> bool:
    """renameat2(source, target, flags); False when this system cannot (no function, or EINVAL/ENOSYS)."""
    function = _renameat2()
    if function is None:
        return False
    if function(AT_FDCWD, os.fsencode(source), AT_FDCWD, os.fsencode(target), flags) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # file system or kernel without the flag
        return False
    raise OSError(code, os.strerror(code), str(target))


def swap_in(staging: Path, directory: Path) -> None:
    """Make ``staging`` the content of ``directory`` (which may not exist yet), atomically where possible."""
    if not directory.exists():
        if not _rename2(staging, directory, RENAME_NOREPLACE):
            staging.rename(directory)
        return
    if _rename2(staging, directory, RENAME_EXCHANGE):
        shutil.rmtree(staging, ignore_errors=True)  # staging now holds the previous output
        return
    backup = Path(tempfile.mkdtemp(prefix=f"{staging_prefix(directory)}old-", dir=directory.parent))
    backup.rmdir()
    directory.rename(backup)  # from here until the next rename, the output is only the backup:
    try:  # a kill in between is repaired by the next build (remove_leftovers)
        staging.rename(directory)
    except BaseException:
        backup.rename(directory)
        raise
    shutil.rmtree(backup, ignore_errors=True)


def remove_leftovers(directory: Path) -> None:
    """Put back an output a killed build left only as its backup, then remove that build's staging.

    Call with the lock held: no running build owns these directories then.  Only this user's
    directories with deployc's exact names are touched.
    """
    pattern = _leftover(directory)
    found = sorted(p for p in directory.parent.iterdir() if pattern.fullmatch(p.name) and p.is_dir()
                   and not p.is_symlink() and p.stat().st_uid == os.getuid())
    backups = [p for p in found if p.name.startswith(f"{staging_prefix(directory)}old-")]
    if backups and not directory.exists():
        backups[0].rename(directory)
        found.remove(backups[0])
    for path in found:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def build_lock(parent: Path, wait_s: float = LOCK_WAIT_S) -> Iterator[bool]:
    """An exclusive lock on the parent directory for the duration of a build.

    Yields True when held, False where the file system has no locks (some network file systems):
    the build then goes on unlocked, as before.  Raises TimeoutError after ``wait_s``.
    """
    if fcntl is None:
        yield False
        return
    fd = os.open(parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"another deployc build holds {parent}") from None
                time.sleep(0.05)
            except OSError as exc:
                if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EBADF, errno.EINVAL):
                    yield False
                    return
                raise
        yield True
    finally:
        os.close(fd)  # closing the descriptor releases the lock
