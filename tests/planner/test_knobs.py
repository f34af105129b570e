"""The serving-knob rules' values and the reasons they give."""

from __future__ import annotations

from deployc.planner import knobs


def test_max_num_seqs_is_the_itl_batch_limit_when_the_load_wants_more() -> None:
    d = knobs.max_num_seqs(20.0, "20 clients per replica", kv_limit=64.0, itl_limit=12)
    assert d.value == 12
    assert d.reason == ("the largest batch whose decode step meets the ITL target; the rest of the load (20 clients "
                        "per replica) waits in the queue")


def test_max_num_seqs_says_when_no_batch_meets_the_itl_target() -> None:
    # Batch 1 at 96 ms against an 80 ms target: the limit is one sequence, and the reason must not claim it meets it.
    d = knobs.max_num_seqs(8.0, "8 clients per replica", kv_limit=30.0, itl_limit=1, single_step_ms=96.04)
    assert d.value == 1
    assert d.reason == ("no batch meets the ITL target: one sequence's decode step alone takes 96.0 ms; the rest of "
                        "the load (8 clients per replica) waits in the queue")
