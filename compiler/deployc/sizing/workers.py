"""Sizing's GPU types searched side by side: one forked worker process per CPU core.

Each GPU type's search is independent of the others (its own ladder of sizes, its own variants, its
own simulations: the memos are keyed by the GPU's step costs), so ``deployc size`` runs them in
worker processes and gathers the answers in the order the types were given: the same search, the
same output byte for byte, in the wall time of the slowest worker. Workers are forked, so they
start with the parent's imports, catalogs and plugins loaded and nothing is pickled on the way in;
each returns its deployments (plain frozen attrs data) pickled. Where the platform cannot fork
(Windows; macOS, where forking a process that used system frameworks is unsafe), or with one job,
the types are searched here, one after the other.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.process import BaseProcess
from typing import TypeVar

T = TypeVar("T")

WAIT_SLICE_S = 0.1  # how soon Ctrl-C is noticed while the workers run

# The task the forked workers run: set just before the pool forks, so they inherit it (a closure over the
# spec, the target and the plugin registry, none of which needs to be picklable).
_TASK: Callable[[int], object] | None = None


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity mask where the OS has one, else the CPU count)."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity is not None else os.cpu_count() or 1


def can_fork() -> bool:
    """Whether worker processes may be forked here (Linux and other POSIX systems but macOS)."""
    return sys.platform != "darwin" and "fork" in multiprocessing.get_all_start_methods()


def _run(index: int) -> object:
    if _TASK is None:  # pragma: no cover - set before every fork
        raise RuntimeError("no sizing task in this worker")
    return _TASK(index)


def _worker_signals() -> None:
    """In a worker: Ctrl-C (SIGINT, which the terminal sends to the whole process group) is the parent's to
    handle (it stops the workers), and SIGTERM ends the worker at once.

    The forked worker inherits the CLI's handlers, which turn both into exceptions; a worker would
    hand those back as its task's result and go on to the next task.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def map_in_order(task: Callable[[int], T], count: int, jobs: int) -> list[T]:
    """``[task(0), …, task(count - 1)]``, computed in up to ``jobs`` forked workers (here when one will do).

    Tasks go out one at a time to whichever worker is free (their durations differ by several times); the
    results come back in index order, so the caller's output does not depend on ``jobs``. An exception in a
    task is raised here; on any exception here (a task's, Ctrl-C, SIGTERM) the workers are stopped first.
    """
    workers = min(jobs, count)
    if workers <= 1 or not can_fork():
        return [task(i) for i in range(count)]
    global _TASK  # noqa: PLW0603 - the forked workers read it
    _TASK = task
    others = set(multiprocessing.active_children())
    pool: ProcessPoolExecutor | None = None
    try:
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                                   initializer=_worker_signals)
        futures = [pool.submit(_run, i) for i in range(count)]
    except OSError:  # no process-shared semaphores (no /dev/shm) or no process left to fork: search here
        _TASK = None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        return [task(i) for i in range(count)]
    ours: set[BaseProcess] = set(multiprocessing.active_children()) - others  # a forking pool starts them all
    try:
        results = [_result(future) for future in futures]
    except BrokenProcessPool as exc:
        # A worker was killed. By SIGTERM (sent to the process group, say): deployc is being stopped, as Ctrl-C
        # stops it; by anything else (the OOM killer), it is an internal error with the pool's own message.
        if any(child.exitcode == -signal.SIGTERM for child in ours):
            raise KeyboardInterrupt from exc
        raise
    except BaseException:
        for child in ours:  # no task is worth finishing
            child.terminate()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        _TASK = None
    return results  # type: ignore[return-value]


def _result(future: Future[object]) -> object:
    """The future's result, waited for in short slices: a signal handled by the pool's threads (not this one)
    would not wake an endless wait, and Ctrl-C must stop deployc at once."""
    while True:
        with contextlib.suppress(TimeoutError):
            return future.result(timeout=WAIT_SLICE_S)
