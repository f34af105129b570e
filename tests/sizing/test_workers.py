"""Sizing's worker processes: results in order, from other processes, errors raised in the caller."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys

import pytest

from deployc.diagnostics import Diagnostic, PluginError
from deployc.plugin_worker import call_with_timeout
from deployc.sizing import workers
from deployc.sizing.workers import map_in_order

needs_fork = pytest.mark.skipif(not workers.can_fork(), reason="worker processes are forked; this platform runs here")


def _pid_and_square(i: int) -> tuple[int, int]:
    return os.getpid(), i * i


@needs_fork
def test_results_come_back_in_order_from_worker_processes():
    results = map_in_order(_pid_and_square, 5, jobs=2)
    assert [square for _, square in results] == [0, 1, 4, 9, 16]
    assert os.getpid() not in {pid for pid, _ in results}
    assert workers._TASK is None  # nothing left for a later fork to inherit


def test_one_job_runs_here():
    results = map_in_order(_pid_and_square, 3, jobs=1)
    assert results == [(os.getpid(), 0), (os.getpid(), 1), (os.getpid(), 4)]


def test_a_single_task_runs_here_whatever_the_jobs():
    assert map_in_order(_pid_and_square, 1, jobs=4) == [(os.getpid(), 0)]


def _fails_on_two(i: int) -> int:
    if i == 2:
        raise ValueError(f"task {i} failed")
    return i


@needs_fork
def test_a_worker_error_is_raised_in_the_caller():
    with pytest.raises(ValueError, match=r"^task 2 failed$"):
        map_in_order(_fails_on_two, 4, jobs=2)
    assert workers._TASK is None


def test_the_task_may_be_a_closure():
    offset = 10
    assert map_in_order(lambda i: i + offset, 3, jobs=2) == [10, 11, 12]


def _hook_answer(i: int) -> int:
    return call_with_timeout(lambda: i + 1, {}, 5.0)


@needs_fork
def test_plugin_hooks_run_in_a_forked_worker():
    """The parent's plugin thread is not in a forked child: the child starts its own (the hook would time out)."""
    assert call_with_timeout(lambda: 0, {}, 5.0) == 0  # the parent's worker thread exists before the fork
    assert map_in_order(_hook_answer, 2, jobs=2) == [1, 2]


def test_deployc_errors_survive_a_trip_between_processes():
    error = PluginError([Diagnostic(rule="DPC506", message="a hook did not return")])
    again = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes
    assert type(again) is PluginError
    assert again.diagnostics == error.diagnostics
    assert str(again) == str(error)


SLEEPERS = r"""
import os, sys, time
from deployc.sizing.workers import map_in_order

def task(i):
    os.write(1, b"started\n")  # one write: the two workers' lines do not interleave
    time.sleep(60)

try:
    map_in_order(task, 2, jobs=2)
except KeyboardInterrupt:
    print("interrupted", flush=True)
    sys.exit(130)
"""


@needs_fork
@pytest.mark.parametrize("to_group", [True, False])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_the_workers_at_once(signum: int, to_group: bool):
    """Ctrl-C (SIGINT to the process group) or SIGTERM stops the parent and its workers, not after their tasks."""
    if signum == signal.SIGINT and not to_group:
        pytest.skip("a terminal sends Ctrl-C to the whole group")
    handler = "signal.signal(signal.SIGTERM, signal.default_int_handler)\n"  # as the CLI turns SIGTERM into one
    script = "import signal\n" + handler + SLEEPERS
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    assert proc.stdout is not None
    assert [proc.stdout.readline() for _ in range(2)] == ["started\n", "started\n"]
    if to_group:
        os.killpg(proc.pid, signum)
    else:
        os.kill(proc.pid, signum)
    out, _ = proc.communicate(timeout=30)  # the tasks would sleep 60 s
    assert (proc.returncode, out) == (130, "interrupted\n")
    left = subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True, text=True, check=False).stdout
    assert left == ""


def test_no_worker_processes_means_the_search_runs_here(monkeypatch: pytest.MonkeyPatch):
    """Without process-shared semaphores (no /dev/shm) or with no process left to fork, the tasks run here."""
    def refused(*_args: object, **_kwargs: object) -> None:
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(workers, "ProcessPoolExecutor", refused)
    assert map_in_order(_pid_and_square, 3, jobs=2) == [(os.getpid(), 0), (os.getpid(), 1), (os.getpid(), 4)]
    assert workers._TASK is None
