"""Power-limit advice stays inside the board's range and honours the limit the spec says is set."""

from __future__ import annotations

from pathlib import Path

from deployc.api import plan
from deployc.planner.decisions import Decision

SPEC = """\
version = 1
name = "edge"
[model]
id = "Qwen2.5-7B-Instruct"
[hardware]
gpu = "{gpu}"
[workload]
prompt_tokens = {{ mean = 500 }}
output_tokens = {{ mean = 200 }}
concurrency = 4
[environment]
cooling = "passive"
ambient_c = 40
{extra}
"""


def power(tmp_path: Path, gpu: str = "T4", extra: str = "") -> Decision:
    path = tmp_path / "edge.toml"
    path.write_text(SPEC.format(gpu=gpu, extra=extra))
    result, _ = plan(path, "vllm")
    return next(d for d in result.decisions if d.id == "power_limit")


def test_the_cap_never_goes_below_the_boards_minimum(tmp_path: Path) -> None:
    decision = power(tmp_path)  # 6/7 of 70 W minus 2 % per °C over 35 °C would be 53 W
    assert decision.value == 60
    assert "`nvidia-smi -pl 60`" in decision.reason
    assert ("60 W is the lowest limit T4 accepts (nvidia-smi Min Power Limit), not the 53 W the site would call "
            "for") in decision.reason


def test_a_limit_already_set_at_or_below_the_advice_is_kept(tmp_path: Path) -> None:
    decision = power(tmp_path, extra="power_limit_w = 60")
    assert decision.value == 60
    assert decision.reason.startswith("passive cooling at 40 °C ambient: the GPUs are already limited to 60 W "
                                      "(environment.power_limit_w), at or below the 60 W this site calls for")


def test_a_limit_set_above_the_advice_is_lowered_from_it(tmp_path: Path) -> None:
    decision = power(tmp_path, extra="power_limit_w = 68")
    assert decision.value == 60
    assert "(`nvidia-smi -pl 60`, now 68 W, of 70 W TDP)" in decision.reason


def test_without_a_catalogued_minimum_the_advice_says_where_to_read_it(tmp_path: Path) -> None:
    decision = power(tmp_path, gpu="RTX 4090")
    assert decision.value == 340  # floor(450 × (6/7 − 0.1))
    assert ("the catalog has no minimum power limit for RTX 4090: if `nvidia-smi -q -d POWER` shows a Min Power "
            "Limit above 340 W, set that") in decision.reason
