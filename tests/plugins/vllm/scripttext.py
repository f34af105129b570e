"""Reading emitted scripts back the way bash would: continuation lines joined, commands split by shlex."""

from __future__ import annotations

import shlex


def logical_lines(script: str) -> list[str]:
    """Lines with backslash-newline continuations joined (bash removes them before splitting words)."""
    return script.replace("\\\n", "").splitlines()


def docker_runs(script: str) -> list[list[str]]:
    """The words of every ``docker run`` command (a trailing pipe cut off)."""
    runs = []
    for line in logical_lines(script):
        if line.startswith("docker run"):
            words = shlex.split(line)
            if "|" in words:
                words = words[: words.index("|")]
            runs.append(words)
    return runs


def serve_argv(run: list[str], image: str) -> list[str]:
    """What follows the image in a docker run: the argv the image's ``vllm serve`` entrypoint receives."""
    return run[run.index(image) + 1:]
