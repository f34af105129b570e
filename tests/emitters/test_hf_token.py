"""``operations.hf_token_env`` reaches every artifact that starts a container, by name only, for every backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from deployc import api
from tests.conftest import REPO

SAMPLE = REPO / "samples" / "llama8b-fp8-h100-stable.toml"
EXPORT = 'export HF_TOKEN="${MY_HF_TOKEN:-}"'


@pytest.mark.parametrize("backend", ["vllm", "sglang", "trtllm"])
def test_a_renamed_token_variable_is_used_by_compose_bench_and_the_run_scripts(backend: str, tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # compose.yaml and bench.sh once passed HF_TOKEN by name whatever the spec said: gated downloads failed there.
    monkeypatch.setenv("MY_HF_TOKEN", "hf_secret_value_never_written")
    text = SAMPLE.read_text().replace("[operations]\n", '[operations]\nhf_token_env = "MY_HF_TOKEN"\n')
    spec = tmp_path / "spec.toml"
    spec.write_text(text)
    out = api.build(spec, tmp_path / "out", backend, accept_slo_miss=True).output.directory
    files = {p.name: p.read_text() for p in out.rglob("*") if p.is_file()}
    assert not any("hf_secret_value_never_written" in body for body in files.values())
    assert "- HF_TOKEN=${MY_HF_TOKEN:-}" in files["compose.yaml"]
    assert "HF_TOKEN is taken from MY_HF_TOKEN in" in files["compose.yaml"]
    assert EXPORT in files["bench.sh"]
    scripts = [body for name, body in files.items() if name.endswith(".sh") and "docker run" in body
               and name != "bench.sh"]
    assert scripts and all(EXPORT in body for body in scripts)


NOTE = '[ -n "${HF_TOKEN:-}" ] || echo "note: HF_TOKEN is not set; gated models will fail to download" >&2'


def test_the_trtllm_engine_flow_scripts_note_a_missing_token_like_the_other_scripts(tmp_path: Path) -> None:
    # build.sh and run.sh of the engine flow exported the renamed token but never said when it was unset (the
    # new-user trial): they now use toolkit.hftoken.token_preamble like every other host script.
    text = SAMPLE.read_text().replace("[operations]\n", '[operations]\nhf_token_env = "MY_HF_TOKEN"\n')
    spec = tmp_path / "spec.toml"
    spec.write_text(text + '\n[backends.trtllm]\nflow = "engine"\n')
    out = api.build(spec, tmp_path / "out", "trtllm", accept_slo_miss=True).output.directory
    for name in ("build.sh", "run.sh"):
        lines = (out / name).read_text().splitlines()
        assert lines.count(EXPORT + "  # the token is read from MY_HF_TOKEN (operations.hf_token_env)") == 1, name
        assert lines.count(NOTE) == 1, name
        assert lines.index(NOTE) == lines.index(EXPORT + "  # the token is read from MY_HF_TOKEN "
                                                          "(operations.hf_token_env)") + 1, name
    # build-engine.sh runs inside the container, where docker run already set HF_TOKEN: re-exporting it from
    # MY_HF_TOKEN (absent there) would blank it.
    inside = (out / "build-engine.sh").read_text()
    assert "MY_HF_TOKEN" not in inside and NOTE not in inside
