"""The toolkit's flag builder: a reason per flag, the planner's Decision first."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from deployc.contract import Decision
from deployc.contract.toolkit import EnvRef
from deployc.contract.toolkit.argv import FlagBuilder, first_sentence


class _Pool:
    def __init__(self, *decisions: Decision) -> None:
        self._decisions = {d.id: d for d in decisions}

    def decision(self, *ids: str) -> Decision | None:
        return next((self._decisions[i] for i in ids if i in self._decisions), None)


def _builder(*decisions: Decision) -> FlagBuilder:
    pool: Any = _Pool(*decisions)
    return FlagBuilder(SimpleNamespace(), pool)  # type: ignore[arg-type]  (no deployment is read)


def test_first_sentence_cuts_at_the_first_stop_and_marks_a_cut() -> None:
    assert first_sentence("one. two") == "one"
    assert first_sentence("a clause; another") == "a clause"
    assert first_sentence("x" * 200, limit=10) == "x" * 9 + "…"


def test_a_flag_takes_the_first_decision_found_and_its_reason() -> None:
    b = _builder(Decision(id="max_num_seqs", value=64, rule="DPD302", reason="room for 64. More text"))
    b.add(("--max-num-seqs", "64"), "fallback", "missing", "max_num_seqs", note="pinned")
    (flag,) = b.flags
    assert (flag.flag, flag.value, flag.reason, flag.decision) == ("--max-num-seqs", "64",
                                                                   "room for 64. More text (pinned)", "max_num_seqs")
    assert b.groups[0].why == "room for 64"
    assert b.argv == ["--max-num-seqs", "64"]


def test_a_positional_argument_is_the_model_and_env_refs_print_as_variables() -> None:
    b = _builder()
    b.add((EnvRef("MODEL"),), "the model to serve")
    b.add(("--api-key", EnvRef("API_KEY")), "clients authenticate")
    assert [(f.flag, f.value, f.decision) for f in b.flags] == [("model", str(EnvRef("MODEL")), None),
                                                                ("--api-key", "$API_KEY", None)]


def test_a_builder_for_one_of_several_programs_names_its_flags_with_the_program() -> None:
    pool: Any = _Pool(Decision(id="max_num_seqs", value=8, rule="DPD302", reason="x" * 200))
    b = FlagBuilder(SimpleNamespace(), pool, tool="trtllm-build", positional_flags=False,  # type: ignore[arg-type]
                    clip_mark="")
    b.add(("/engines/main/engine",), "the engine")
    b.add(("--max_batch_size", "8"), "fallback", "max_num_seqs")
    assert [(f.flag, f.value, f.decision) for f in b.flags] == [("trtllm-build --max_batch_size", "8", "max_num_seqs")]
    assert [g.words for g in b.groups] == [("/engines/main/engine",), ("--max_batch_size", "8")]
    assert b.groups[1].why == "x" * 160  # cut without a mark
    assert first_sentence("x" * 200, limit=10, mark="") == "x" * 10


def test_tensorrt_llm_builds_its_command_lines_with_the_toolkit() -> None:
    import inspect

    import deployc_trtllm.commands
    import deployc_trtllm.pytorch

    for module in (deployc_trtllm.commands, deployc_trtllm.pytorch):
        source = inspect.getsource(module)
        assert "FlagReason(" not in source and "ArgGroup(" not in source, module.__name__
