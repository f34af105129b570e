"""The engine flow's three commands of one pool: quantize.py, trtllm-build, trtllm-serve; and its options YAML.

Each flag comes with a :class:`~deployc.contract.backend.FlagReason` naming the plan Decision behind it.
TP and PP are fixed at quantization (``quantize.py --tp_size/--pp_size``; ``trtllm-build`` has
no such flags); the build limits come from the plan's knobs, and they size the run-time buffers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from attrs import frozen

from deployc.contract import FlagReason
from deployc.contract.toolkit.argv import FlagBuilder
from deployc.contract.toolkit.shell import ArgGroup
from deployc_trtllm.capability import ADA, QFORMAT

if TYPE_CHECKING:
    from deployc.contract import Deployment, Pool

ENGINES_IN_CONTAINER = "/engines"
EXAMPLES = "/app/tensorrt_llm/examples"  # where the NGC release image keeps TensorRT-LLM's examples


@frozen(kw_only=True)
class Command:
    """Program words, then argument groups with reasons, and the FlagReasons for EXPLAIN.md."""

    program: tuple[str, ...]
    groups: tuple[ArgGroup, ...]
    flags: tuple[FlagReason, ...]

    @property
    def args(self) -> tuple[str, ...]:
        """The arguments after the program words."""
        return tuple(str(w) for g in self.groups for w in g.words)


def flag_builder(deployment: Deployment, pool: Pool, tool: str) -> FlagBuilder:
    """The toolkit's flag builder for one of this backend's programs: flags named with the program, positional
    arguments not recorded as flags, long comments cut without a mark (as this backend's scripts always were)."""
    return FlagBuilder(deployment, pool, tool=tool, positional_flags=False, clip_mark="")


def pool_dir(pool: Pool) -> str:
    """The pool's directory under /engines in the container."""
    return f"{ENGINES_IN_CONTAINER}/{pool.name}"


def quantize_command(deployment: Deployment, pool: Pool, model_dir_word: str) -> Command:
    """``quantize.py``: the checkpoint for this TP × PP mapping, quantized when the plan quantizes."""
    k, layout = pool.knobs, pool.layout
    b = flag_builder(deployment, pool, "quantize.py")
    b.add(("--model_dir", model_dir_word), "the downloaded Hugging Face checkpoint")
    b.add(("--dtype", k.dtype), "activation dtype of the engine", "dtype")
    b.add(("--qformat", QFORMAT[k.weights_format]),
          f"{k.weights_format} weights (full_prec: no quantization)", "quantization")
    if k.kv_cache_dtype == "fp8":
        b.add(("--kv_cache_dtype", "fp8"), "FP8 KV cache, calibrated with the weights", "kv_cache_dtype")
    b.add(("--tp_size", str(layout.tp)), f"{layout.label()}: TP is fixed here, not at build or serve time",
          "parallelism")
    b.add(("--pp_size", str(layout.pp)), f"{layout.label()}: PP is fixed here", "parallelism")
    b.add(("--output_dir", f"{pool_dir(pool)}/checkpoint"), "the TensorRT-LLM checkpoint, one shard per rank")
    return Command(program=("python3", f"{EXAMPLES}/quantization/quantize.py"), groups=tuple(b.groups),
                   flags=tuple(b.flags))


def build_command(deployment: Deployment, pool: Pool) -> Command:
    """``trtllm-build``: the engine with limits from the workload (they size run-time memory)."""
    k, layout = pool.knobs, pool.layout
    b = flag_builder(deployment, pool, "trtllm-build")
    b.add(("--checkpoint_dir", f"{pool_dir(pool)}/checkpoint"), "the quantize.py output")
    b.add(("--output_dir", f"{pool_dir(pool)}/engine"), "one engine file per rank")
    b.add(("--max_batch_size", str(k.max_num_seqs)),
          "requests per step; build limit that sizes run-time buffers (USER-PAINS #17)", "max_num_seqs")
    b.add(("--max_input_len", str(k.max_model_len)), "the longest prompt (bounded by the context length)",
          "max_model_len")
    b.add(("--max_seq_len", str(k.max_model_len)), "prompt + output tokens per request", "max_model_len")
    b.add(("--max_num_tokens", str(k.max_num_batched_tokens)),
          "tokens per engine step; build limit that sizes activation buffers", "max_num_batched_tokens")
    b.add(("--kv_cache_type", "paged"), "paged KV cache (needed for in-flight batching and block reuse)")
    b.add(("--gemm_plugin", "fp8" if k.weights_format == "fp8" else "auto"),
          "FP8 GEMM plugin for FP8 weights" if k.weights_format == "fp8" else
          "GEMM plugin in the checkpoint's dtype (auto)", "quantization")
    b.add(("--gpt_attention_plugin", "auto"), "fused attention plugin in the checkpoint's dtype")
    b.add(("--use_paged_context_fmha", "enable"),
          "context attention reads the paged KV cache: chunked prefill and KV block reuse need it")
    fp8_fmha = k.kv_cache_dtype == "fp8" and deployment.gpu.compute_capability is not None \
        and tuple(deployment.gpu.compute_capability) >= ADA
    b.add(("--use_fp8_context_fmha", "enable" if fp8_fmha else "disable"),
          "FP8 context attention with the FP8 KV cache (SM89+)" if fp8_fmha else
          "FP8 context FMHA only with an FP8 KV cache", "kv_cache_dtype")
    b.add(("--workers", str(min(layout.tp * layout.pp, 8))), "build the rank engines in parallel")
    return Command(program=("trtllm-build",), groups=tuple(b.groups), flags=tuple(b.flags))


def serve_command(deployment: Deployment, pool: Pool, port: int) -> Command:
    """``trtllm-serve <engine dir>`` with underscore flags and the extra-options YAML."""
    k, layout = pool.knobs, pool.layout
    spec = deployment
    b = flag_builder(deployment, pool, "trtllm-serve")
    b.add((f"{pool_dir(pool)}/engine",), "the engine built by build-engine.sh")
    b.add(("--tokenizer", spec.model.id), "the tokenizer of the Hugging Face model (the engine has none)")
    b.add(("--backend", "tensorrt"),
          "serve the compiled engine: the build limits, quantization and plugins above are what runs "
          "(the PyTorch flow, trtllm-serve's default in 1.x, skips the build step)")
    b.add(("--host", "0.0.0.0"), "listen on every interface of the container")  # noqa: S104
    b.add(("--port", str(port)), "the API port (operations.port)")
    b.add(("--tp_size", str(layout.tp)), f"{layout.label()}: must match the engine's mapping", "parallelism")
    b.add(("--pp_size", str(layout.pp)), f"{layout.label()}: must match the engine's mapping", "parallelism")
    b.add(("--max_batch_size", str(k.max_num_seqs)), "at most the engine's build limit", "max_num_seqs")
    b.add(("--max_num_tokens", str(k.max_num_batched_tokens)), "at most the engine's build limit",
          "max_num_batched_tokens")
    b.add(("--max_seq_len", str(k.max_model_len)), "at most the engine's build limit", "max_model_len")
    b.add(("--kv_cache_free_gpu_memory_fraction", f"{k.memory_fraction:.2f}"),
          "fraction of the memory FREE after the engine loaded (not of total memory)", "memory_fraction")
    if spec.model.trust_remote_code:
        b.add(("--trust_remote_code",), "the spec allows the model repository's own code")
    b.add(("--config", f"{pool_dir(pool)}/extra-llm-api-options.yaml"), "LLM API options (chunked prefill, KV "
          "block reuse, CUDA graphs); the YAML overrides the command line")
    return Command(program=("trtllm-serve",), groups=tuple(b.groups), flags=tuple(b.flags))


def engine_extra_options(pool: Pool) -> dict[str, Any]:
    """The extra-options YAML (TrtLlmArgs, the engine flow)."""
    k = pool.knobs
    doc: dict[str, Any] = {
        "kv_cache_config": {"free_gpu_memory_fraction": round(k.memory_fraction, 2),
                            "enable_block_reuse": k.prefix_caching},
        "enable_chunked_prefill": k.chunked_prefill,
        "return_perf_metrics": True,  # what /prometheus/metrics reports request latency from
    }
    if k.cuda_graphs:
        doc["extended_runtime_perf_knob_config"] = {"cuda_graph_mode": True,
                                                    "cuda_graph_cache_size": min(k.max_num_seqs, 64)}
    return doc
