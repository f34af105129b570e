"""The PyTorch flow of one server: ``trtllm-serve MODEL --backend pytorch`` and its LLM-API options YAML.

The command line carries what ``trtllm-serve``'s own flags cover (model, parallelism, the
scheduler limits); the YAML (``--config``, TorchLlmArgs) carries the rest: KV-cache fraction and
dtype, chunked prefill, CUDA graph batch sizes, attention DP and the MoE backend, and the stats
the Prometheus endpoint needs.  Speculative decoding stays off (no ``speculative_config``).
Every flag is checked against ``data/trtllm-serve.json`` and every YAML key against
``data/trtllm-llm-api.json`` (see :mod:`deployc_trtllm.checks`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from deployc.contract.toolkit import Word
from deployc_trtllm.capability import BLACKWELL, HOPPER
from deployc_trtllm.commands import Command, flag_builder

if TYPE_CHECKING:
    from deployc.contract import Deployment, Pool

CONFIG_DIR = "/etc/deployc"  # where the container sees the options YAML (bind-mounted beside run.sh)
# CUDA graph batch sizes: powers of two up to the running-request limit, plus the limit itself.
# TorchLlmArgs captures one graph per size (CudaGraphConfig.batch_sizes; enable_padding rounds a
# batch up to the next captured size), so the list bounds graph memory and capture time.
GRAPH_SIZES_CAP = 512


def config_name(server_name: str) -> str:
    """The options file of a server, beside the scripts."""
    return f"extra-llm-api-options-{server_name}.yaml"


def attention_dp(pool: Pool) -> bool:
    """MoE with several data-parallel groups: attention data-parallel inside one TP × DP engine (experts sharded)."""
    return pool.layout.ep > 1 and pool.layout.dp > 1


def engine_gpus(pool: Pool) -> int:
    """GPUs of one trtllm-serve process: TP × PP, times DP when attention runs data-parallel inside it."""
    layout = pool.layout
    return layout.tp * layout.pp * (layout.dp if attention_dp(pool) else 1)


def graph_batch_sizes(max_num_seqs: int) -> list[int]:
    """1, 2, 4, … up to the running-request limit (capped), and the limit itself."""
    top = min(max_num_seqs, GRAPH_SIZES_CAP)
    sizes, size = [], 1
    while size < top:
        sizes.append(size)
        size *= 2
    return [*sizes, top]


def moe_backend(deployment: Deployment, pool: Pool) -> tuple[str, str] | None:
    """The MoE kernel backend when the model's deployment guide names one for this GPU, else None (AUTO)."""
    cc = deployment.gpu.compute_capability
    pair = (cc[0], cc[1]) if cc else (0, 0)
    if pool.knobs.weights_format == "mxfp4" and HOPPER <= pair < BLACKWELL:
        return "TRITON", ("gpt-oss's MXFP4 experts on Hopper run on the Triton MoE kernels (TensorRT-LLM gpt-oss "
                          "deployment guide, H100/H200 configuration)")
    return None


def serve_command(deployment: Deployment, pool: Pool, port: int, config_path: str) -> Command:
    """``trtllm-serve <model> --backend pytorch …`` for one server (all its ranks, however launched)."""
    k, layout = pool.knobs, pool.layout
    spec = deployment
    b = flag_builder(deployment, pool, "trtllm-serve")
    b.add((spec.model.id,), f"the Hugging Face model ({deployment.model.name}), loaded as it is: no conversion "
          "or engine build")
    b.add(("--backend", "pytorch"), "TensorRT-LLM 1.x's serving path (the default), stated so the flow is explicit")
    b.add(("--host", "0.0.0.0"), "listen on every interface of the container")  # noqa: S104
    b.add(("--port", str(port)), "the API port (operations.port)")
    tp = layout.tp * layout.dp if attention_dp(pool) else layout.tp
    b.add(("--tp_size", str(tp)), f"{layout.label()}: tensor parallelism" + (
        f" over the {layout.dp} attention-DP groups (enable_attention_dp in the YAML)" if attention_dp(pool) else ""),
        "parallelism")
    b.add(("--pp_size", str(layout.pp)), f"{layout.label()}: pipeline stages", "parallelism")
    if layout.ep > 1:
        b.add(("--ep_size", str(layout.ep)), f"{layout.label()}: MoE experts sharded across {layout.ep} GPUs",
              "parallelism")
    b.add(("--max_batch_size", str(k.max_num_seqs)), "requests batched per step", "max_num_seqs")
    b.add(("--max_num_tokens", str(k.max_num_batched_tokens)), "tokens per engine step", "max_num_batched_tokens")
    b.add(("--max_seq_len", str(k.max_model_len)), "prompt + output tokens per request", "max_model_len")
    if spec.model.revision:
        b.add(("--revision", spec.model.revision), "the model revision pinned in the spec (model.revision)")
    if spec.model.trust_remote_code:
        b.add(("--trust_remote_code",), "the spec allows the model repository's own code")
    b.add(("--config", config_path), "LLM API options (KV cache, chunked prefill, CUDA graphs, parallel "
          "settings); TrtLlmArgs/TorchLlmArgs fields, they override the command line")
    return Command(program=("trtllm-serve",), groups=tuple(b.groups), flags=tuple(b.flags))


def extra_options(deployment: Deployment, pool: Pool) -> dict[str, Any]:
    """The options YAML (TorchLlmArgs) of one server."""
    k = pool.knobs
    kv: dict[str, Any] = {"free_gpu_memory_fraction": round(k.memory_fraction, 2),
                          "enable_block_reuse": k.prefix_caching}
    if k.kv_cache_dtype == "fp8":
        kv["dtype"] = "fp8"
    doc: dict[str, Any] = {"kv_cache_config": kv, "enable_chunked_prefill": k.chunked_prefill}
    if k.cuda_graphs:
        doc["cuda_graph_config"] = {"enable_padding": True, "batch_sizes": graph_batch_sizes(k.max_num_seqs)}
    else:
        doc["cuda_graph_config"] = None
    if attention_dp(pool):
        doc["enable_attention_dp"] = True
    backend = moe_backend(deployment, pool)
    if backend is not None:
        doc["moe_config"] = {"backend": backend[0]}
    # The Prometheus endpoint (/prometheus/metrics) reports per-request latency only with perf metrics on,
    # and KV-cache usage only with iteration stats on (tensorrt_llm/serve/openai_server.py).
    doc["return_perf_metrics"] = True
    doc["enable_iter_perf_stats"] = True
    return doc


def yaml_reasons(deployment: Deployment, pool: Pool) -> list[tuple[str, str, str]]:
    """One line per YAML setting for EXPLAIN.md: (key, value as written, why)."""
    k = pool.knobs
    doc = extra_options(deployment, pool)
    kv = doc["kv_cache_config"]
    out = [("kv_cache_config.free_gpu_memory_fraction", str(kv["free_gpu_memory_fraction"]),
            "of the memory FREE after the model loaded and the warm-up peak (not of total memory)"),
           ("kv_cache_config.enable_block_reuse", _flag(kv["enable_block_reuse"]),
            "prefix caching " + ("on: the workload shares prefixes" if k.prefix_caching else "off")),
           ("enable_chunked_prefill", _flag(doc["enable_chunked_prefill"]),
            "long prompts are prefilled in chunks of the token budget" if k.chunked_prefill else "whole prompts")]
    if "dtype" in kv:
        out.append(("kv_cache_config.dtype", kv["dtype"], "FP8 KV cache"))
    graphs = doc["cuda_graph_config"]
    out.append(("cuda_graph_config", "null" if graphs is None else
                f"batch_sizes {graphs['batch_sizes']}, enable_padding true",
                "CUDA graphs for decode batches, a batch padded up to the next captured size" if graphs else
                "CUDA graphs off"))
    if doc.get("enable_attention_dp"):
        out.append(("enable_attention_dp", "true", "attention data-parallel: each DP rank keeps its own KV cache while "
                                                   "the experts are sharded across all of them"))
    backend = moe_backend(deployment, pool)
    if backend is not None:
        out.append(("moe_config.backend", backend[0], backend[1]))
    out.append(("return_perf_metrics, enable_iter_perf_stats", "true", "what /prometheus/metrics reports request "
                                                                         "latency and KV-cache usage from"))
    return out


def _flag(value: bool) -> str:
    return "true" if value else "false"


def argv_words(command: Command) -> tuple[Word, ...]:
    """The program and its arguments as words."""
    return (*command.program, *command.args)
