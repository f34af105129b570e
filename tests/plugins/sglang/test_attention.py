"""Gemma 2's logit soft-capping decides SGLang's attention backend (sources in deployc_sglang/attention.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import tomli_w

from deployc.api import plan
from deployc.contract import AttentionFacts
from deployc.planner.plan import Plan
from deployc_sglang.attention import default_backend, planned_backend
from deployc_sglang.checks import check_plan
from deployc_sglang.command import launch_command
from deployc_sglang.options import parse_options
from tests.contract_helpers import deploy
from tests.plugins.vllm.plans import spec_dict

GEMMA2 = AttentionFacts(head_dim=256, sliding_window=True, logit_softcap=50.0, final_logit_softcap=30.0)
LLAMA = AttentionFacts(head_dim=128)


def _plan(tmp_path: Path, gpu: str, **changes: Any) -> Plan:
    path = tmp_path / "s.toml"
    path.write_text(tomli_w.dumps(spec_dict(model={"id": "google/gemma-2-9b-it"},
                                            hardware={"gpu": gpu, "gpus_per_node": 1}, **changes)))
    planned, _ = plan(path, "sglang", display_name="s.toml")
    return planned


def _argv(p: Plan) -> list[str]:
    options = parse_options(p.target.spec.backends.get("sglang"))
    return [str(w) for w in launch_command(deploy(p), deploy(p).servers[0], options).argv]


@pytest.mark.parametrize(("cc", "model", "default", "planned"), [
    ((9, 0), GEMMA2, "fa3", ("fa3", False)),
    ((8, 9), GEMMA2, "flashinfer", ("flashinfer", False)),
    ((10, 0), LLAMA, "trtllm_mha", ("trtllm_mha", False)),
    # trtllm_mha_backend.py never reads layer.logit_cap: SGLang's Blackwell default would drop Gemma 2's cap
    ((10, 0), GEMMA2, "trtllm_mha", ("flashinfer", True)),
    ((8, 0), AttentionFacts(head_dim=64, sinks=True), "triton", ("triton", False)),
    ((10, 0), AttentionFacts(head_dim=192, mla=True), "flashinfer", ("flashinfer", False)),
])
def test_sglangs_default_and_the_planned_backend(cc: tuple[int, int], model: AttentionFacts, default: str,
                                                 planned: tuple[str, bool]) -> None:
    assert default_backend(cc, model) == default
    assert planned_backend(cc, model) == planned


def test_gemma_2_on_blackwell_gets_a_backend_that_applies_its_soft_cap(tmp_path: Path) -> None:
    p = _plan(tmp_path, "B200")
    argv = _argv(p)
    assert argv[argv.index("--attention-backend") + 1] == "flashinfer"
    reasons = {f.flag: f.reason for f in launch_command(deploy(p), deploy(p).servers[0],
                                                        parse_options(None)).flags}
    assert reasons["--attention-backend"] == (
        "the model soft-caps its attention logits at 50 (attn_logit_softcapping); SGLang 0.5.23's default on this "
        "GPU, trtllm_mha, never applies the cap (trtllm_mha_backend.py ignores logit_cap), flashinfer does")
    assert check_plan(deploy(p)) == []


def test_gemma_2_on_hopper_keeps_sglangs_default_and_says_it_applies_the_cap(tmp_path: Path) -> None:
    p = _plan(tmp_path, "H100 SXM")
    assert "--attention-backend" not in _argv(p)
    decision = deploy(p).primary.decision("quantization")
    assert decision is not None
    reason = decision.reason
    assert "attention: fa3, attention logits soft-capped at 50 inside the kernel)" in reason


def test_an_extra_args_backend_that_drops_the_soft_cap_is_refused(tmp_path: Path) -> None:
    p = _plan(tmp_path, "B200", backends={"sglang": {"extra_args": ["--attention-backend", "trtllm_mha"]}})
    assert _argv(p).count("--attention-backend") == 1  # deployc adds none when extra_args choose one
    (diag,) = check_plan(deploy(p))
    assert diag.message == ("--attention-backend trtllm_mha does not apply the model's attention logit soft-capping "
                            "(50, attn_logit_softcapping): SGLang 0.5.23 serves it with wrong logits and no error")
    assert diag.hint == ("use a backend that applies it (aiter, fa3, fa4, flashinfer, triton, wave), or drop the "
                         "flag (deployc then passes --attention-backend flashinfer)")
    assert diag.key_path == "backends.sglang.extra_args"
    ok = _plan(tmp_path, "B200", backends={"sglang": {"extra_args": ["--attention-backend=triton"]}})
    assert check_plan(deploy(ok)) == []
