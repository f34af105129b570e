"""``deployc`` ends its process without the interpreter's teardown only where that changes nothing observable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "samples" / "llama8b-fp8-h100-stable.toml"


def _run(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # stdout to a pipe is block-buffered
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=False,
                          cwd=REPO, env=env)


RUN = "import sys\nfrom deployc.cli import run\nsys.argv[0] = 'deployc'\n{before}\nrun()\n"


def test_the_whole_output_reaches_a_pipe_and_the_exit_code_is_kept(tmp_path: Path) -> None:
    done = _run(RUN.format(before=""), "plan", "--format", "json", str(SAMPLE))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["backend"]["engine_version"]  # every byte of a ~100 kB document
    # The last line is short: it sits in stdout's buffer until the process flushes it.
    built = _run(RUN.format(before=""), "build", str(SAMPLE), "-o", str(tmp_path / "out"))
    assert built.returncode == 0, built.stderr
    assert built.stdout.startswith(f"wrote 13 files to {tmp_path / 'out'} (")
    invalid = _run(RUN.format(before=""), "validate", str(REPO / "samples" / "invalid" / "typo-key.toml"))
    assert invalid.returncode == 1
    assert invalid.stderr.endswith("hint: did you mean 'gpus_per_node'?\n")


def test_an_atexit_callback_still_runs() -> None:
    # A plugin (or anything it imports) may register one: then the interpreter exits as usual.
    done = _run(RUN.format(before="import atexit\natexit.register(print, 'callback ran')"), "--version")
    assert done.returncode == 0
    assert done.stdout.splitlines()[-1] == "callback ran"


def test_a_running_non_daemon_thread_is_waited_for() -> None:
    before = ("import threading, time\n"
              "threading.Thread(target=lambda: (time.sleep(0.3), print('thread done', flush=True))).start()")
    done = _run(RUN.format(before=before), "--version")
    assert done.returncode == 0
    assert done.stdout.splitlines()[-1] == "thread done"


def test_a_build_leaves_nothing_for_the_teardown(tmp_path: Path) -> None:
    # The fast exit is taken only without atexit callbacks: importing `logging` (concurrent.futures did, for
    # its TimeoutError) registers one, and every build then paid the 50-90 ms teardown.
    probe = ("import atexit, sys, threading\n"
             "from deployc import cli\n"
             "code = cli.main(sys.argv[1:])\n"
             "main = threading.main_thread()\n"
             "lingering = [t.name for t in threading.enumerate() if not t.daemon and t is not main]\n"
             "print(code, atexit._ncallbacks(), lingering, 'logging' in sys.modules, file=sys.stderr)\n")
    done = _run(probe, "build", str(SAMPLE), "-o", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines()[-1] == "0 0 [] False"
