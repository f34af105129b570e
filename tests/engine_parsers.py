"""Feed emitted argv lists to the real vLLM / SGLang argument parsers (a helper, no tests).

The engines' parsers run in their own CPU-only virtualenvs, made by
``tools/engine_parsers/install.sh ENGINE [DEST]`` (see the README beside it).
Each call of :func:`check_argvs` starts ONE engine process that parses every
case (vLLM's imports take ~15 s, so batch the cases), e.g.::

    from tests.engine_parsers import check_argvs, require_or_skip

    def test_vllm_accepts_emitted_commands():
        require_or_skip("vllm")
        results = check_argvs("vllm", [
            {"id": "llama70b", "argv": ["meta-llama/Llama-3.1-70B-Instruct", "-tp", "4"]},
        ])
        assert all(r["ok"] for r in results), results

A case is ``{"id": str, "argv": [str, ...], "config_yaml": str (optional)}``;
for vLLM ``argv`` is what follows ``vllm serve`` (the vllm/vllm-openai image's
entrypoint), for SGLang what follows ``python -m sglang.launch_server``;
``config_yaml`` appends ``--config PATH``. Each result is
``{"id", "ok", "error", "stage", "parsed", "warnings"}``: ``error`` is the
engine's own message when ``ok`` is false, ``parsed`` maps the dest of every
explicitly given option (command line or YAML) to its parsed value.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Final

import pytest

ENGINE_VERSIONS: Final[dict[str, str]] = {"vllm": "0.33.0", "sglang": "0.5.23"}
VENV_ENV_VARS: Final[dict[str, str]] = {"vllm": "DEPLOYC_VLLM_VENV", "sglang": "DEPLOYC_SGLANG_VENV"}
REQUIRE_ENV_VAR: Final = "DEPLOYC_REQUIRE_ENGINE_PARSERS"
CHECKERS_DIR: Final = Path(__file__).resolve().parent.parent / "tools" / "engine_parsers"

#: seconds allowed for the engine's start-up (imports), plus PER_CASE_TIMEOUT per case
STARTUP_TIMEOUT: Final = 300.0
PER_CASE_TIMEOUT: Final = 5.0

_OFFLINE_ENV: Final[dict[str, str]] = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "VLLM_TARGET_DEVICE": "cpu",
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
}


def _check_engine(engine: str) -> str:
    if engine not in ENGINE_VERSIONS:
        raise ValueError(f"unknown engine {engine!r}; expected one of {sorted(ENGINE_VERSIONS)}")
    return ENGINE_VERSIONS[engine]


def default_venv(engine: str) -> Path:
    """Where install.sh puts the engine's venv by default."""
    version = _check_engine(engine)
    return Path.home() / ".cache" / "deployc" / "engines" / f"{engine}-{version}"


def install_command(engine: str) -> str:
    """The command that makes the venv :func:`engine_python` looks for."""
    _check_engine(engine)
    dest = os.environ.get(VENV_ENV_VARS[engine]) or str(default_venv(engine))
    return f"tools/engine_parsers/install.sh {engine} {dest}"


def engine_python(engine: str) -> Path | None:
    """The engine venv's interpreter, or None when the venv is absent.

    ``$DEPLOYC_VLLM_VENV`` / ``$DEPLOYC_SGLANG_VENV`` name the venv when set;
    otherwise ``~/.cache/deployc/engines/<engine>-<version>/``, which counts
    only once install.sh finished (its ``.installed-<engine>-<version>`` marker).
    """
    version = _check_engine(engine)
    override = os.environ.get(VENV_ENV_VARS[engine])
    venv = Path(override).expanduser() if override else default_venv(engine)
    python = venv / "bin" / "python"
    if not python.is_file():
        return None
    if not override and not (venv / f".installed-{engine}-{version}").is_file():
        return None
    return python


def check_argvs(
    engine: str, cases: list[dict[str, Any]], timeout: float | None = None
) -> list[dict[str, Any]]:
    """Parse every case with the engine's real parser, in one subprocess; return the results.

    Results come back in the order of ``cases``. Raises RuntimeError when the
    venv is missing or the checker itself fails (a rejected argv is a result
    with ``ok: False``, not an exception).
    """
    _check_engine(engine)
    python = engine_python(engine)
    if python is None:
        raise RuntimeError(f"no {engine} parser venv; run: {install_command(engine)}")
    ids = [str(case.get("id", i)) for i, case in enumerate(cases)]
    if len(set(ids)) != len(ids):
        raise ValueError("case ids must be unique")
    payload = [{**case, "id": case_id} for case_id, case in zip(ids, cases, strict=True)]
    if timeout is None:
        timeout = STARTUP_TIMEOUT + PER_CASE_TIMEOUT * len(cases)
    env = {**os.environ, **_OFFLINE_ENV}
    checker = CHECKERS_DIR / f"check_{engine}.py"
    with tempfile.TemporaryDirectory(prefix=f"deployc-{engine}-argv-") as tmp:
        cases_file = Path(tmp) / "cases.json"
        cases_file.write_text(json.dumps(payload), encoding="utf-8")
        try:
            proc = subprocess.run(
                [str(python), str(checker), str(cases_file)],
                capture_output=True,
                text=True,
                timeout=timeout,
                env=env,
                cwd=tmp,
                check=False,
            )
        except subprocess.TimeoutExpired as e:
            raise RuntimeError(f"{checker.name} timed out after {timeout:.0f} s") from e
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.splitlines()[-30:])
        raise RuntimeError(f"{checker.name} exited with {proc.returncode}:\n{tail}")
    try:
        results: list[dict[str, Any]] = json.loads(proc.stdout)
    except json.JSONDecodeError as e:
        raise RuntimeError(f"{checker.name} printed no JSON: {proc.stdout[:500]!r}") from e
    if [r.get("id") for r in results] != ids:
        raise RuntimeError(f"{checker.name} returned results for other cases than it was given")
    return results


def require_or_skip(engine: str) -> Path:
    """Return the engine venv's interpreter; skip the test when there is none.

    With ``DEPLOYC_REQUIRE_ENGINE_PARSERS=1`` (CI) a missing venv fails the
    test instead of skipping it.
    """
    python = engine_python(engine)
    if python is not None:
        return python
    version = ENGINE_VERSIONS[engine]
    reason = (
        f"{engine} {version} parser venv not found "
        f"(${VENV_ENV_VARS[engine]} or {default_venv(engine)}); "
        f"make it with: {install_command(engine)}"
    )
    if os.environ.get(REQUIRE_ENV_VAR) == "1":
        pytest.fail(f"{reason} [{REQUIRE_ENV_VAR}=1]", pytrace=False)
    pytest.skip(reason)
