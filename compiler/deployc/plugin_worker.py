"""Running plugin code: one reused worker thread, a time limit, and stdout kept for deployc's own output.

Every call into a plugin (its import, and each hook) runs on one long-lived daemon thread while
the main thread waits with a time-out, so a plugin that hangs is reported (DPC506) instead of
hanging deployc, and whatever the plugin prints goes to stderr, not into ``--format json``.
"""

from __future__ import annotations

import contextlib
import math
import os
import queue
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from deployc.diagnostics import Diagnostic, PluginError

TIMEOUT_ENV = "DEPLOYC_PLUGIN_TIMEOUT_S"
DEFAULT_TIMEOUT_S = 60.0
MAX_TIMEOUT_S = 86_400.0  # a day: beyond it threading's wait overflows on some platforms, and no hook needs it

T = TypeVar("T")


def timeout_s() -> float:
    """The hook time limit from ``DEPLOYC_PLUGIN_TIMEOUT_S``: a finite number of seconds in (0, a day]."""
    raw = os.environ.get(TIMEOUT_ENV)
    if raw is None or not raw.strip():
        return DEFAULT_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not 0 < value <= MAX_TIMEOUT_S:  # False for nan too
        raise PluginError([Diagnostic(
            rule="DPC507", message=f"{TIMEOUT_ENV}={raw[:40]!r} is not a number of seconds above 0 and at most "
                                   f"{MAX_TIMEOUT_S:g}",
            hint=f"unset it (the default is {DEFAULT_TIMEOUT_S:g} s) or set e.g. {TIMEOUT_ENV}=120")])
    return value


class _Worker:
    """One long-lived daemon thread that runs plugin hooks, so a hook can be timed out cheaply.

    Daemon: a hook that never returns cannot keep the process alive after deployc has reported it.
    """

    def __init__(self) -> None:
        self.inbox: queue.SimpleQueue[tuple[Callable[..., Any], dict[str, Any], list[Any], threading.Event]] = (
            queue.SimpleQueue())
        threading.Thread(target=self._run, name="deployc-plugin", daemon=True).start()

    def _run(self) -> None:
        # Signals go to the main thread only: the writer holds SIGINT back there during its swap, and a
        # process-directed signal delivered to this thread would bypass that.
        if hasattr(signal, "pthread_sigmask"):
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        while True:
            function, kwargs, box, done = self.inbox.get()
            try:
                box.append((True, function(**kwargs)))
            except BaseException as exc:  # handed back to the caller, whatever it is
                box.append((False, exc))
            done.set()


_WORKER: dict[str, _Worker] = {}
if hasattr(os, "register_at_fork"):
    # A forked process (a sizing worker) has only the thread that forked: the worker thread is not there, and
    # a hook handed to it would wait out the time limit. The child starts its own at its first hook.
    os.register_at_fork(after_in_child=_WORKER.clear)


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """While a plugin runs, what it prints (``print`` or file descriptor 1) goes to stderr.

    stdout carries deployc's own output (``--format json``); a chatty plugin must not corrupt it.
    The main thread only waits meanwhile, so swapping the process-wide stream is safe.
    """
    saved = None
    with contextlib.suppress(OSError, ValueError, AttributeError):  # no stdout, closed, or not a real file
        sys.stdout.flush()
        saved = os.dup(1)
        os.dup2(2, 1)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        if saved is not None:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                sys.stderr.flush()
                os.dup2(saved, 1)
            os.close(saved)


def call_with_timeout(function: Callable[..., T], kwargs: dict[str, Any], timeout_s: float) -> T:
    """Run a hook on the plugin worker thread; raise TimeoutError if it does not return in time."""
    if threading.current_thread() is not threading.main_thread():
        return function(**kwargs)
    worker = _WORKER.get("current")
    if worker is None:  # one worker for every call (a new thread per call exhausted threads after ~800 plans)
        worker = _WORKER["current"] = _Worker()
    box: list[tuple[bool, Any]] = []
    done = threading.Event()
    with _stdout_to_stderr():
        worker.inbox.put((function, kwargs, box, done))
        finished = done.wait(timeout_s)
    if not finished:
        _WORKER.pop("current", None)  # abandon the stuck worker; the next call starts a fresh one
        raise TimeoutError  # since Python 3.11 the class concurrent.futures.TimeoutError names
    ok, value = box[0]
    if ok:
        return value  # type: ignore[no-any-return]
    raise value
