"""Emitted shell is injection-proof: every spec value reaches its command as exactly one intended word.

Shell metacharacters, quotes, command substitutions and flag look-alikes go into every string field
that reaches a command.  A value the compiler accepts must come out quoted: ``shlex.split`` of the
emitted ``docker run`` gives back the intended argv, bash itself (run with stub ``docker`` and
``mkdir`` that only record their argv) agrees, nothing is executed, no value turns into a flag of
its own, and every script passes ``bash -n`` and ``shellcheck``.  A value it refuses must be
refused with a diagnostic (exit 1), never a crash.
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.reliability import specgen
from tests.reliability._support import require_pipeline, run_cli
from tests.system_tools import tool_or_none


@pytest.fixture(autouse=True, scope="module")
def _pipeline_works() -> None:
    require_pipeline()


CANARY = "PWNED"
# One value with every shell metacharacter; each substitution would leave a file named PWNED behind.
META = f"it's \"$(/usr/bin/touch {CANARY})\" `/usr/bin/touch {CANARY}`; /usr/bin/touch {CANARY} & * ~ $HOME !x #c |>"
FLAG = "--trust-remote-code"
# Where each field's value is expected in the recorded docker argv (None: anywhere, as a whole word).
FIELDS: dict[tuple[str | int, ...], str | None] = {
    ("model", "id"): None,
    ("model", "served_name"): "--served-model-name",
    ("model", "revision"): "--revision",
    ("operations", "model_cache"): "--volume",
    ("operations", "image"): None,
    ("operations", "image_tag"): None,
    ("backends", "vllm", "extra_args"): "--chat-template",
}
EXTRA_ARGS = ("backends", "vllm", "extra_args")
PAYLOADS = {"metacharacters": META, "unicode": "ünï 🦙 ﬁ", "quote-only": "'", "dollar": "$HF_TOKEN",
            "spaces-and-dashes": "a --b -c",
            # Refused in every field (DPC020): each refusal must name its key, and what still builds is clean.
            "trailing-newline": "abc\n", "nel": "a\x85b", "bidi-override": "a\u202eb"}


def _base(sample: str) -> dict[str, Any]:
    return next(raw for name, _, raw in specgen.BASES if name == sample)


def _built(tmp_path: Path, doc: dict[str, Any], value: str) -> tuple[dict[str, Any], list[tuple[Any, ...]], Path]:
    """Put ``value`` in every field and build; take the value out of each field a diagnostic refuses it in.

    Returns the spec that finally built, the fields that still hold the value, and the output.
    Every refusal must be a located diagnostic (exit 1), never a crash.
    """
    fields = list(FIELDS)
    out = tmp_path / "out"
    while True:
        current = doc
        for path in fields:
            current = _with(current, path, value)
        spec = tmp_path / "spec.toml"
        spec.write_text(specgen.spec_text(current))
        run = run_cli(["build", str(spec), "-o", str(out), "--force"])
        assert run.code in (0, 1), run.err
        if run.code == 0:
            return current, fields, out
        assert not out.exists()
        refused = {line.split(": ")[2] for line in run.err.splitlines() if ": error: " in line}
        # A refusal names the field, a key below it (a table) or an item of it (extra_args[1]).
        keep = [p for p in fields if not any(_names(p).startswith(k) or k.startswith(_names(p) + "[")
                                             for k in refused)]
        assert keep != fields, f"refused for a reason that names none of the fields: {run.err}"
        fields = keep


def _with(doc: dict[str, Any], path: tuple[Any, ...], value: str) -> dict[str, Any]:
    if path == EXTRA_ARGS:  # a pass-through flag that takes any string, then the value
        return specgen.with_value(doc, path, ["--chat-template", value])
    return specgen.with_value(doc, path, value)


def _names(path: tuple[Any, ...]) -> str:
    from deployc.spec.locate import format_path

    return format_path(path)


def _stubs(root: Path) -> Path:
    """A PATH with only ``docker`` and ``mkdir``, which record their argv (NUL-separated) and do nothing."""
    stubs = root / "stubs"
    stubs.mkdir()
    for name in ("docker", "mkdir"):
        stub = stubs / name
        stub.write_text("#!/bin/bash\n"
                        'if [ "$1" = container ]; then exit 1; fi\n'  # `docker container inspect`: no such container
                        f'printf "%s\\0" "$@" > "$ARGV_DIR/{name}.$$.$RANDOM"\n')
        stub.chmod(0o755)
    return stubs


def _run_script(script: Path, tmp_path: Path) -> dict[str, list[list[str]]]:
    """Run a generated script under bash with the stubs; the argv of each stubbed command."""
    argv_dir = tmp_path / "argv"
    argv_dir.mkdir()
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    env = {"PATH": str(_stubs(tmp_path)), "ARGV_DIR": str(argv_dir), "HOME": str(workdir),
           "VLLM_HEAD_ADDR": "10.0.0.1"}
    done = subprocess.run(["/bin/bash", str(script)], cwd=workdir, env=env, capture_output=True, text=True,
                          timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    assert not list(workdir.rglob(CANARY)), "a spec value was executed"
    calls: dict[str, list[list[str]]] = {}
    for record in sorted(argv_dir.iterdir()):
        calls.setdefault(record.name.split(".")[0], []).append(record.read_text().split("\0")[:-1])
    return calls


def _docker_run_words(script_text: str) -> list[list[str]]:
    """``shlex.split`` of each ``docker run`` command in a script (continuation lines joined)."""
    joined = script_text.replace("\\\n", " ")
    return [shlex.split(line) for line in joined.splitlines() if line.lstrip().startswith("docker run")]


def _shellcheck(script: Path) -> None:
    shellcheck = tool_or_none("shellcheck")  # the test's other checks run without it
    if shellcheck is None:
        return
    done = subprocess.run([shellcheck, "--severity=style", str(script)], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stdout


@pytest.mark.parametrize("sample", ["qwen7b-awq-t4-edge", "llama70b-awq-rtx-pro-6000"])
@pytest.mark.parametrize("payload", list(PAYLOADS), ids=list(PAYLOADS))
def test_spec_values_reach_commands_as_exactly_one_word(tmp_path: Path, sample: str, payload: str) -> None:
    value = PAYLOADS[payload]
    doc, fields, out = _built(tmp_path, _base(sample), value)
    scripts = sorted(out.rglob("*.sh"))
    assert scripts
    for script in scripts:
        subprocess.run(["/bin/bash", "-n", str(script)], check=True)
        _shellcheck(script)
    calls = _run_script(out / "run.sh", tmp_path)
    parsed = _docker_run_words((out / "run.sh").read_text())
    ran = [c for c in calls.get("docker", []) if c[:1] == ["run"]]
    assert [["docker", *c] for c in ran] == parsed  # shlex and bash agree on every word
    for argv in ran:
        assert FLAG not in argv or doc["model"].get("trust_remote_code"), f"{FLAG} smuggled in: {argv}"
        for path in fields:
            _check_placement(argv, calls.get("mkdir", []), path, value)
    for manifest in [*out.rglob("*.yaml"), *out.rglob("*.yml")]:
        list(yaml.safe_load_all(manifest.read_text()))  # every manifest still parses


def _check_placement(argv: list[str], mkdirs: list[list[str]], path: tuple[Any, ...], value: str) -> None:
    flag = FIELDS[path]
    if path == ("operations", "model_cache"):
        assert ["-p", "--", value] in mkdirs
        mounts = [argv[i + 1] for i, word in enumerate(argv[:-1]) if word == "--volume"]
        assert any(m.startswith(value + ":") for m in mounts), mounts
    elif path in (("operations", "image"), ("operations", "image_tag")):
        assert any(value in word and ":" in word for word in argv), argv  # inside the one image:tag word
    elif flag is None:
        assert value in argv, f"{'.'.join(map(str, path))} = {value!r} is not one word of {argv}"
    else:
        assert [flag, value] in [argv[i:i + 2] for i in range(len(argv) - 1)], argv


@pytest.mark.parametrize("path", [("model", "id"), ("model", "served_name"), ("model", "revision")],
                         ids=".".join)
def test_value_that_looks_like_a_flag_is_refused_at_its_key(tmp_path: Path, path: tuple[str, ...]) -> None:
    doc = specgen.with_value(_base("qwen7b-awq-t4-edge"), path, FLAG)
    spec = tmp_path / "spec.toml"
    spec.write_text(specgen.spec_text(doc))
    run = run_cli(["build", str(spec), "-o", str(tmp_path / "out")])
    assert run.code == 1, "a flag-like value was accepted"
    assert not (tmp_path / "out").exists()
    errors = [line for line in run.err.splitlines() if ": error: " in line]
    assert errors
    assert all(f": error: {_names(path)}: " in line for line in errors), errors


@pytest.mark.parametrize("path", [("model", "id"), ("model", "served_name"), ("model", "revision")],
                         ids=".".join)
def test_value_that_looks_like_a_flag_never_becomes_one(tmp_path: Path, path: tuple[str, ...]) -> None:
    doc = specgen.with_value(_base("qwen7b-awq-t4-edge"), path, FLAG)
    spec = tmp_path / "spec.toml"
    spec.write_text(specgen.spec_text(doc))
    run = run_cli(["build", str(spec), "-o", str(tmp_path / "out")])
    assert run.code in (0, 1), run.err
    if run.code == 0:  # accepted: then only inside another word (--model=...), never as a word of its own
        for argv in _docker_run_words((tmp_path / "out" / "run.sh").read_text()):
            assert FLAG not in argv, argv


@pytest.mark.parametrize("cache", ["/data/hf:/etc", "/data/hf:ro"])
def test_model_cache_with_a_colon_is_refused_at_its_key(tmp_path: Path, cache: str) -> None:
    doc = specgen.with_value(_base("qwen7b-awq-t4-edge"), ("operations", "model_cache"), cache)
    spec = tmp_path / "spec.toml"
    spec.write_text(specgen.spec_text(doc))
    run = run_cli(["build", str(spec), "-o", str(tmp_path / "out")])
    assert run.code == 1
    assert ": error: operations.model_cache: " in run.err


@pytest.mark.parametrize("cache", ["hf-cache", "./hf-cache", "~/hf"])
def test_model_cache_cannot_change_what_the_mount_means(tmp_path: Path, cache: str) -> None:
    """A relative path would be a Docker named volume, and ``~`` is not expanded inside quotes."""
    doc = specgen.with_value(_base("qwen7b-awq-t4-edge"), ("operations", "model_cache"), cache)
    spec = tmp_path / "spec.toml"
    spec.write_text(specgen.spec_text(doc))
    run = run_cli(["build", str(spec), "-o", str(tmp_path / "out")])
    assert run.code == 1
    assert "operations.model_cache" in run.err
