"""Model resolution order: catalog → local config.json → Hugging Face cache → Hub download (optional)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import types
from pathlib import Path
from typing import Any

import pytest

from deployc.api import validate
from deployc.catalog import CatalogLookupError, ModelResolutionError, hf, load_models, resolve_model
from tests.conftest import MINIMAL_SPEC, REPO

FIXTURES = REPO / "tests" / "fixtures"
HUB = FIXTURES / "hf_cache" / "hub"
TINY_SHA = "0f1e2d3c4b5a69788796a5b4c3d2e1f00112233a"
HF_VARS = ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "HF_HUB_OFFLINE")


@pytest.fixture(autouse=True)
def clean_hf_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the developer's real cache or network settings."""
    for var in HF_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


@pytest.fixture
def fake_hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[dict[str, Any]]:
    """A stand-in huggingface_hub whose hf_hub_download writes a config and records its calls."""
    calls: list[dict[str, Any]] = []

    def hf_hub_download(**kwargs: Any) -> str:
        calls.append(kwargs)
        path = tmp_path / "downloaded" / "config.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(FIXTURES / "hf_configs" / "qwen3.json", path)
        return str(path)

    monkeypatch.setitem(sys.modules, "huggingface_hub", types.SimpleNamespace(hf_hub_download=hf_hub_download))
    monkeypatch.setattr(hf, "hub_unreachable", lambda: None)  # the stand-in Hub is always reachable
    return calls


def test_catalog_names_win_over_a_local_directory_of_the_same_name(tmp_path: Path) -> None:
    (tmp_path / "Qwen3-8B").mkdir()
    shutil.copy(FIXTURES / "hf_configs" / "llama.json", tmp_path / "Qwen3-8B" / "config.json")
    catalog = {m.name: m for m in load_models()}["Qwen3-8B"].arch
    assert resolve_model("qwen3-8b", base_dir=tmp_path, allow_download=False) is catalog
    assert resolve_model("Qwen3-8B", base_dir=tmp_path, allow_download=False) is catalog


def test_local_config_file_and_directory_relative_to_the_spec(tmp_path: Path) -> None:
    model_dir = tmp_path / "models" / "my-llama"
    model_dir.mkdir(parents=True)
    shutil.copy(FIXTURES / "hf_configs" / "llama.json", model_dir / "config.json")
    by_dir = resolve_model("models/my-llama", base_dir=tmp_path, allow_download=False)
    by_file = resolve_model("models/my-llama/config.json", base_dir=tmp_path, allow_download=False)
    absolute = resolve_model(str(model_dir), base_dir=Path("/nonexistent"), allow_download=False)
    assert by_dir.name == by_file.name == absolute.name == "my-llama"
    # Named as the spec names it, so a plan does not depend on where the tree lives.
    assert by_dir.source == "config.json at models/my-llama"
    assert absolute.source == f"config.json at {model_dir / 'config.json'}"
    assert by_dir.num_layers == 32


def test_the_samples_awq_config_resolves_with_its_quantization() -> None:
    arch = resolve_model("models/qwen2.5-7b-instruct-awq", base_dir=REPO / "samples", allow_download=False)
    assert arch.checkpoint_quant is not None and arch.checkpoint_quant.method == "awq"
    assert arch.checkpoint_dtype == "float16"


def test_repo_id_is_found_in_the_hub_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(HUB))
    arch = resolve_model("acme/tiny-llama", base_dir=Path(), allow_download=False)
    assert arch.name == "acme/tiny-llama"
    assert (arch.num_layers, arch.head_dim, arch.tie_word_embeddings) == (16, 64, True)
    snapshot = HUB / "models--acme--tiny-llama" / "snapshots" / TINY_SHA / "config.json"
    assert arch.source == f"Hugging Face cache {snapshot} (acme/tiny-llama@{TINY_SHA[:12]})"


def test_hub_cache_location_follows_huggingface_hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert hf.hub_cache_dir({}) == Path.home() / ".cache" / "huggingface" / "hub"
    assert hf.hub_cache_dir({"HF_HOME": "/data/hf"}) == Path("/data/hf/hub")
    assert hf.hub_cache_dir({"HF_HOME": "/data/hf", "HF_HUB_CACHE": "/fast/hub"}) == Path("/fast/hub")
    monkeypatch.setenv("HF_HOME", str(HUB.parent))
    assert resolve_model("acme/tiny-llama", base_dir=Path(), allow_download=False).num_layers == 16
    monkeypatch.delenv("HF_HOME")
    shutil.copytree(HUB, tmp_path / "home" / ".cache" / "huggingface" / "hub", symlinks=True)
    assert resolve_model("acme/tiny-llama", base_dir=Path(), allow_download=False).num_layers == 16


def test_cached_config_by_commit_and_missing_snapshot() -> None:
    assert hf.cached_config("acme/tiny-llama", revision=TINY_SHA, cache_dir=HUB) is not None
    assert hf.cached_config("acme/tiny-llama", revision="v2", cache_dir=HUB) is None
    assert hf.cached_config("acme/half-downloaded", cache_dir=HUB) is None


def test_unresolvable_repo_says_what_was_tried(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(HUB))
    with pytest.raises(ModelResolutionError) as exc:
        resolve_model("acme/half-downloaded", base_dir=tmp_path, allow_download=False)
    assert exc.value.tried == (
        f"not a catalog model or alias, and no file or directory {tmp_path / 'acme/half-downloaded'}",
        f"not in the Hugging Face cache {HUB}",
        "downloading is disabled",
    )
    assert isinstance(exc.value, CatalogLookupError) and exc.value.kind == "model"


def test_offline_mode_never_downloads(monkeypatch: pytest.MonkeyPatch, fake_hub: list[dict[str, Any]]) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelResolutionError) as exc:
        resolve_model("acme/not-cached", base_dir=Path())
    assert exc.value.tried[-1] == "HF_HUB_OFFLINE is set"
    assert fake_hub == []


def test_download_uses_huggingface_hub_lazily(fake_hub: list[dict[str, Any]]) -> None:
    arch = resolve_model("acme/not-cached", base_dir=Path())
    assert fake_hub == [{"repo_id": "acme/not-cached", "filename": "config.json", "revision": "main"}]
    assert arch.family == "qwen3" and arch.source == "huggingface.co/acme/not-cached config.json (main)"


def test_download_failures_and_missing_package_become_reasons(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(**_: Any) -> str:
        raise OSError("401 Client Error: gated repo\nmore detail")

    monkeypatch.setitem(sys.modules, "huggingface_hub", types.SimpleNamespace(hf_hub_download=boom))
    monkeypatch.setattr(hf, "hub_unreachable", lambda: None)
    with pytest.raises(ModelResolutionError) as exc:
        resolve_model("meta-llama/Gated-Model", base_dir=Path())
    assert exc.value.tried[-1] == "download failed: OSError: 401 Client Error: gated repo"
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(ModelResolutionError) as exc:
        resolve_model("meta-llama/Gated-Model", base_dir=Path())
    assert exc.value.tried[-1] == "huggingface_hub is not installed (pip install 'deployc[hf]')"


def test_typo_in_a_catalog_name_suggests_the_right_one() -> None:
    with pytest.raises(ModelResolutionError) as exc:
        resolve_model("Llama-3.1-8B-Instrct", base_dir=Path(), allow_download=False)
    assert exc.value.suggestions[0] == "Llama-3.1-8B-Instruct"
    assert len(exc.value.tried) == 1  # not an org/name: no cache or Hub lookup


def test_unreadable_config_is_reported(tmp_path: Path) -> None:
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{not json")
    with pytest.raises(ModelResolutionError, match="cannot read it as JSON"):
        resolve_model("broken", base_dir=tmp_path, allow_download=False)
    (tmp_path / "list.json").write_text(json.dumps([1, 2]))
    with pytest.raises(ModelResolutionError, match="not a JSON object"):
        resolve_model("list.json", base_dir=tmp_path, allow_download=False)


def test_repo_id_shape() -> None:
    assert hf.looks_like_repo_id("meta-llama/Llama-3.1-8B")
    assert not hf.looks_like_repo_id("Llama-3.1-8B")
    assert not hf.looks_like_repo_id("a/b/c")
    assert not hf.looks_like_repo_id("/abs/path")
    assert hf.offline({"HF_HUB_OFFLINE": "true"}) and not hf.offline({"HF_HUB_OFFLINE": "0"})


def test_importing_the_catalog_touches_neither_network_nor_huggingface_hub() -> None:
    code = ("import sys, socket\n"
            "socket.socket = None  # any network use at import would raise\n"
            "import deployc.catalog, deployc.planner.weights, deployc.planner.kv\n"
            "deployc.catalog.load_models(); deployc.catalog.load_gpus()\n"
            "assert 'huggingface_hub' not in sys.modules\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False,
                            env={"PYTHONPATH": str(REPO / "compiler")})
    assert result.returncode == 0, result.stderr


def test_an_unreachable_hub_is_one_short_connection_attempt_not_huggingface_hubs_retries(
        monkeypatch: pytest.MonkeyPatch) -> None:
    called: list[object] = []
    monkeypatch.setitem(sys.modules, "huggingface_hub", types.SimpleNamespace(hf_hub_download=called.append))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: nothing listens there
    for proxy in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(proxy, raising=False)
    start = time.perf_counter()
    with pytest.raises(ModelResolutionError) as exc:
        resolve_model("acme/offline-model", base_dir=Path())
    assert time.perf_counter() - start < hf.REACH_TIMEOUT_S + 1
    assert called == []
    assert exc.value.tried[-1] == "127.0.0.1:9 is not reachable (ConnectionRefusedError, 3 s)"


def test_an_unknown_repo_id_says_how_to_plan_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    spec = tmp_path / "spec.toml"
    spec.write_text(MINIMAL_SPEC.replace("meta-llama/Llama-3.1-8B-Instruct", "acme/unknown-model"))
    (diag,) = validate(spec)
    assert diag.rule == "DPC102"
    assert diag.message.endswith("huggingface_hub is not installed (pip install 'deployc[hf]')")
    assert diag.hint == ("to plan offline, set model.config to the model's config.json (a file or its directory); "
                         "to read it from the Hugging Face Hub, install the hf extra (pip install 'deployc[hf]'); or "
                         "see `deployc catalog models`")
