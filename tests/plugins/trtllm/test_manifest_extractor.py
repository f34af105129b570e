"""tools/engine_parsers/extract_trtllm_manifest.py: manifests from TensorRT-LLM's source, without importing it."""

from __future__ import annotations

import json

from tests.conftest import REPO
from tools.engine_parsers.extract_trtllm_manifest import check, llm_api_models, main, serve_options

SOURCE = REPO / "tests" / "fixtures" / "trtllm_source"


def test_llm_api_models_with_inheritance_types_and_extra() -> None:
    models = llm_api_models((SOURCE / "llm_args_sample.py").read_text())
    assert sorted(models) == ["CacheSettings", "CommonArgs", "GraphSettings", "LooseSettings", "StrictBaseModel",
                              "TorchArgs"]
    torch = models["TorchArgs"]
    assert torch["extra"] == "forbid" and models["LooseSettings"]["extra"] == "ignore"
    assert list(torch["fields"]) == ["model", "tp", "cache", "graphs", "extras", "loose"]
    assert torch["fields"]["tp"]["default"] == 2  # the subclass overrides the base default
    assert torch["fields"]["cache"] == {"type": "dict", "model": "CacheSettings", "default": None}
    assert torch["fields"]["graphs"] == {"type": "dict", "model": "GraphSettings", "default": None}
    assert torch["fields"]["loose"]["model"] == "LooseSettings"
    assert torch["fields"]["extras"]["type"] == "dict"
    cache = models["CacheSettings"]["fields"]
    assert cache["fraction"] == {"type": "float", "default": 0.9}
    assert cache["kind"] == {"type": "str", "choices": ["auto", "fp8"], "default": "auto"}
    assert models["GraphSettings"]["fields"]["sizes"]["type"] == "list"


def test_serve_options_of_the_serve_command_only() -> None:
    options = serve_options((SOURCE / "serve_sample.py").read_text())
    assert [o["flags"] for o in options] == [["--host"], ["--backend"], ["--tensor_parallel_size", "--tp_size"],
                                             ["--trust_remote_code"], ["--config", "--extra_llm_api_options"]]
    assert options[1]["choices"] == ["pytorch", "tensorrt"] and options[1]["default"] == "pytorch"
    assert options[3] == {"flags": ["--trust_remote_code"], "type": None, "default": False, "is_flag": True}
    assert options[2]["type"] == "int"


def test_check_reports_missing_and_extra_names(tmp_path, capsys) -> None:
    manifest = {"models": {"TorchArgs": {"extra": "forbid", "complete": True,
                                         "fields": {"model": {}, "tp": {}, "cache": {}, "graphs": {}, "extras": {},
                                                    "kv_cache_connector_config": {}}}}}
    models = llm_api_models((SOURCE / "llm_args_sample.py").read_text())
    assert check("llm-api", models, manifest) == [
        "TorchArgs.loose is in the source, not in the manifest",
        "TorchArgs.kv_cache_connector_config is in the manifest, not in the source"]
    path = tmp_path / "m.json"
    path.write_text(json.dumps(manifest))
    assert main(["llm-api", str(SOURCE / "llm_args_sample.py"), "--check", str(path)]) == 1
    assert "TorchArgs.loose is in the source" in capsys.readouterr().out
    serve_manifest = {"subcommands": {"serve": {"options": [{"flags": ["--host"]}, {"flags": ["--port"]}]}}}
    problems = check("serve", serve_options((SOURCE / "serve_sample.py").read_text()), serve_manifest)
    assert "flag --port is in the manifest, not in the source" in problems
    assert "flag --tp_size is in the source, not in the manifest" in problems


def test_the_shipped_manifest_has_the_shape_the_checker_reads() -> None:
    manifest = json.loads((REPO / "plugins" / "deployc_trtllm" / "data" / "trtllm-llm-api.json").read_text())
    for root in ("TorchLlmArgs", "TrtLlmArgs"):
        model = manifest["models"][root]
        assert model["extra"] == "forbid" and model["complete"] is True
        for field in model["fields"].values():
            assert field.get("model") is None or field["model"] in manifest["models"]
