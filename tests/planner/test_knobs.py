"""The serving-knob rules' values and the reasons they give."""

from __future__ import annotations

from deployc.planner import knobs


def test_max_num_seqs_is_the_itl_batch_limit_when_the_load_wants_more() -> None:
    d = knobs.max_num_seqs(20.0, "20 clients per replica", kv_limit=64.0, itl_limit=12)
    assert d.value == 12
    assert d.reason == ("the largest batch whose decode step meets the ITL target; the rest of the load (20 clients "
                        "per replica) waits in the queue")


def test_max_num_seqs_says_when_no_batch_meets_the_itl_target() -> None:
    # Batch 1 at 96 ms against an 80 ms target: no batch meets it, so the target does not cap the batch (one
    # sequence a step would miss it too and queue the other clients); the reason says so.
    d = knobs.max_num_seqs(8.0, "8 clients per replica", kv_limit=30.0, itl_limit=1, single_step_ms=96.04)
    assert d.value == 8
    assert d.reason == ("room for every request the load keeps in flight: 8 clients per replica; the ITL target does "
                        "not bound it: one sequence's decode step alone takes 96.0 ms, above the target at any batch")
    assert [(a.value, a.reason) for a in d.rejected] == [
        (1, "misses the ITL target too (96.0 ms a step) and queues the rest of the load")]
