"""The pinned flag manifest and the argv checker: exact messages for what vLLM 0.33.0 would reject."""

from __future__ import annotations

import hashlib

import pytest

from deployc_vllm import ENGINE_VERSION
from deployc_vllm.flags import check_argv, load_manifest
from tests.conftest import REPO

SHARED = REPO.parent / "shared" / "reference" / "backends" / "vllm-0.33.0.json"
DATA = REPO / "plugins" / "deployc_vllm" / "data" / "vllm-0.33.0.json"


def test_manifest_is_the_shared_reference_copy() -> None:
    digest = hashlib.sha256(DATA.read_bytes()).hexdigest()
    assert digest == "7759481b1745e0a0e00e8bef0abba9d6e3a447612bce60e6232674d3e2d438e3"
    if SHARED.is_file():
        assert SHARED.read_bytes() == DATA.read_bytes()


def test_manifest_facts() -> None:
    m = load_manifest()
    assert m.version == ENGINE_VERSION == "0.33.0"
    assert len(m.options) == 322
    gmu = m.option("--gpu-memory-utilization")
    assert gmu is not None and gmu.dest == "gpu_memory_utilization"
    for dead in ("--swap-space", "--num-scheduler-steps", "--max-seq-len-to-capture", "--use-v2-block-manager"):
        assert m.option(dead) is None


@pytest.mark.parametrize(("argv", "problems"), [
    (["m", "--tensor-parallel-size", "2", "--enable-prefix-caching"], []),
    (["serve", "m"], ["`serve` is repeated: the vllm/vllm-openai entrypoint is already `vllm serve`",
                      "stray value 'm': it follows no flag that takes a value"]),
    (["--model", "m"], ["the model must come first as a positional, not --model"]),
    (["m", "--swap-space", "16"], ["--swap-space does not exist in vLLM 0.33.0: removed: the V1 engine preempts by "
                                   "recomputation, it does not swap KV blocks to CPU"]),
    (["m", "--max-model", "8192"], ["--max-model is an abbreviation (of --max-model-len); spell flags in full"]),
    (["m", "--tensor-paralel-size", "2"], ["--tensor-paralel-size is not a flag of vllm serve 0.33.0 (did you mean "
                                           "--tensor-parallel-size?)"]),
    (["m", "--max-num-seqs", "--trust-remote-code"], ["--max-num-seqs expects a value, got the flag "
                                                      "--trust-remote-code"]),
    (["m", "--dtype", "bf16"], ["--dtype 'bf16' is not one of auto, bfloat16, float, float16, float32, half"]),
    (["m", "--quantization", "fp9"], ["--quantization 'fp9' is not a value vLLM 0.33.0 accepts (did you mean "
                                      "'fp8'?)"]),
    (["m", "--distributed-executor-backend", "nccl"], ["--distributed-executor-backend 'nccl' is not a value vLLM "
                                                       "0.33.0 accepts"]),
    (["m", "--max-num-seqs", "lots"], ["--max-num-seqs expects an integer, got 'lots'"]),
    (["m", "--max-num-batched-tokens", "8k"], []),
    (["m", "-tp", "2", "--tensor-parallel-size", "2"], ["--tensor-parallel-size is given twice (also as -tp)"]),
    (["m", "--enforce-eager=yes"], ["--enforce-eager is a switch and takes no value"]),
    (["m", "--served-model-name", "a", "b"], []),
    (["m", "--max-logprobs=5"], []),
])
def test_check_argv(argv: list[str], problems: list[str]) -> None:
    assert check_argv(argv) == problems
