"""SGLang's decode CUDA-graph batch: stated once by its overhead answer, kept on the plan, read by the emitter."""

from __future__ import annotations

import attrs
import pytest

from deployc.planner.plan import Plan
from deployc_sglang.command import launch_command
from deployc_sglang.options import parse_options
from deployc_sglang.overheads import decode_graph_max_bs, runtime_overheads
from tests.contract_helpers import deploy
from tests.plugins.sglang.test_capability_overheads import _query

GIB = 1 << 30


def _argv(plan: Plan) -> list[str]:
    deployment = deploy(plan)
    return list(launch_command(deployment, deployment.servers[0], parse_options(None)).argv)


def test_overhead_answer_states_the_decode_graph_batch_capped_at_the_running_limit() -> None:
    # H100 (80 GiB) at TP1: SGLang's table gives 256, capped at --max-running-requests
    assert runtime_overheads(_query(max_num_seqs=28)).decode_graph_max_batch == 28
    assert runtime_overheads(_query(max_num_seqs=512)).decode_graph_max_batch == 256
    assert runtime_overheads(_query(max_num_seqs=512, tp=4)).decode_graph_max_batch == 512
    assert runtime_overheads(_query(cuda_graphs=False)).decode_graph_max_batch is None


def test_planned_pools_carry_the_answer_at_their_final_max_running_requests(sample_plans: dict[str, Plan]) -> None:
    checked = 0
    for name, plan in sample_plans.items():
        for pool in deploy(plan).pools:
            k = pool.knobs
            if not k.cuda_graphs:
                assert pool.decode_graph_max_batch is None, name
                continue
            # the final knob, not the load guess the layouts were ranked with (gpt-oss-120b on H100: 28, not 32)
            assert pool.decode_graph_max_batch == decode_graph_max_bs(
                plan.target.gpu.memory_bytes, pool.layout.tp, k.max_num_seqs), (name, pool.name)
            checked += 1
    assert checked >= 10


def test_the_emitted_flag_is_the_deployments_value(sample_plans: dict[str, Plan]) -> None:
    plan = sample_plans["gpt-oss-120b-h100"]
    pool = plan.primary
    assert pool.knobs.cuda_graphs and pool.decode_graph_max_batch is not None
    argv = _argv(plan)
    at = argv.index("--cuda-graph-max-bs-decode")
    assert argv[at + 1] == str(pool.decode_graph_max_batch)
    other = pool.decode_graph_max_batch - 3
    changed = attrs.evolve(plan, pools=(attrs.evolve(pool, decode_graph_max_batch=other), *plan.pools[1:]))
    argv = _argv(changed)
    assert argv[argv.index("--cuda-graph-max-bs-decode") + 1] == str(other)


def test_a_pool_with_graphs_but_no_answer_is_refused_with_its_reason(sample_plans: dict[str, Plan]) -> None:
    plan = sample_plans["gpt-oss-120b-h100"]
    bare = attrs.evolve(plan, pools=(attrs.evolve(plan.primary, decode_graph_max_batch=None), *plan.pools[1:]))
    with pytest.raises(ValueError) as exc:
        _argv(bare)
    assert str(exc.value) == ("pool 'main' plans CUDA graphs but carries no decode graph batch (the plan was made "
                              "without SGLang's overhead answer)")


def test_the_memory_plan_sizes_the_graphs_for_the_emitted_running_limit(sample_plans: dict[str, Plan]) -> None:
    """The layouts are ranked with the clients per replica as the batch; the engine is told what its KV cache holds
    (gpt-oss-120b on H100 was told 28 of 32 while its budget was tuned at the planning budget's memory), so its
    graphs, and the memory they take, are planned for the emitted running limit: SGLang's table for the GPU, capped
    at max_num_seqs."""
    checked = 0
    for name, plan in sample_plans.items():
        for pool in plan.pools:
            if pool.decode_graph_max_batch is None:
                continue
            graphs = [a for a in pool.memory.assumptions if a.startswith("SGLang CUDA graphs ")]
            assert len(graphs) == 1, (name, pool.name)
            assert f"decode graphs up to batch {pool.decode_graph_max_batch} (" in graphs[0], (name, graphs[0])
            expected = decode_graph_max_bs(plan.target.gpu.memory_bytes, pool.layout.tp, pool.knobs.max_num_seqs)
            assert pool.decode_graph_max_batch == expected, (name, pool.name)
            checked += 1
    assert checked >= 10
