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
