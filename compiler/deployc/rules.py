"""The stable rule ids: ``DPC###`` for diagnostics, ``DPD###`` for the planner's decisions.

Ids never change meaning once released; ``docs/rules.md`` is generated from these
tables and a test fails when it is stale.  Diagnostic ranges: 0xx loading and schema,
1xx resolving names, 2xx semantic checks, 3xx planning, 4xx backend constraints,
5xx plugins, 6xx output.  Decision ranges: 1xx what runs where, 2xx precision and memory,
3xx serving knobs, 4xx the outcome (simulated serving, cost, power), 5xx a backend's own choices.  A decision never
carries a diagnostic id: a diagnostic says something is wrong, a decision says what was chosen.
"""

from __future__ import annotations

from attrs import frozen


@frozen
class Rule:
    """A documented check: its id, a title, and what to do when it fires."""

    id: str
    title: str
    explanation: str


_RULES: tuple[Rule, ...] = (
    Rule("DPC001", "spec file cannot be read", "The path does not exist, is not a file, or is not UTF-8."),
    Rule("DPC002", "TOML syntax error", "The file is not valid TOML; the message gives line and column."),
    Rule("DPC003", "spec too large or too deeply nested",
         "Specs are limited to 1 MiB and 32 levels of nesting so validation stays fast."),
    Rule("DPC010", "unknown key", "A key the spec language does not define; usually a typo (a suggestion is given)."),
    Rule("DPC011", "wrong type", "A value of the wrong TOML type (a string where a number is expected, ...)."),
    Rule("DPC012", "value not allowed", "A value outside the documented choices."),
    Rule("DPC013", "value out of range", "A number below the minimum or above the maximum."),
    Rule("DPC014", "missing key", "A required key or table is absent."),
    Rule("DPC015", "malformed value", "A string that does not match the required pattern or length."),
    Rule("DPC016", "unsupported spec version", "Only `version = 1` exists."),
    Rule("DPC020", "unsafe characters",
         "A control character (C0 or C1: newline, tab, escape, NEL...), a Unicode line or paragraph separator, a "
         "bidirectional-text control or an invisible character in a key or value, or a value that would read "
         "as a flag."),
    Rule("DPC021", "secret in spec",
         "A key or value that looks like an access token or secret key, or an `extra_args` flag that takes a "
         "credential (`--api-key`, `--hf-token`...). Specs are committed to git: reference secrets by the name "
         "of an environment variable (`operations.hf_token_env`) instead."),
    Rule("DPC022", "extra_args flag loads code or exposes the server",
         "A pass-through engine flag that imports code (`--middleware`, `--tool-parser-plugin`...), reads a chat "
         "template from a file, or lets any origin call the server (`--allowed-origins \"*\"`). Name it in "
         "`operations.trusted_extra_args` if that is intended."),
    Rule("DPC101", "unknown GPU", "The GPU is not in the catalog (names, aliases and nvidia-smi names resolve)."),
    Rule("DPC102", "model not found",
         "The model is neither a catalog name, a local config.json, nor a repo id in the Hugging Face cache."),
    Rule("DPC103", "unsupported model architecture",
         "deployc cannot compute memory for this architecture; the message names what is missing."),
    Rule("DPC104", "interconnect or node layout not available on this GPU",
         "E.g. NVLink on a GPU that has none, Infinity Fabric on an NVIDIA GPU, more than 8 Instinct GPUs per node."),
    Rule("DPC105", "unknown backend", "No installed backend plugin has this name (see `deployc backends`)."),
    Rule("DPC106", "custom GPU not usable",
         "`[hardware.custom]` describes a GPU the catalog already has, or facts that contradict each other."),
    Rule("DPC201", "context longer than the model supports",
         "`model.max_context_tokens` exceeds the model's max_position_embeddings."),
    Rule("DPC202", "dtype not supported by the GPU", "BF16 on Turing/Volta: deployc uses FP16 instead."),
    Rule("DPC203", "precision not supported by the GPU", "E.g. NVFP4 outside Blackwell."),
    Rule("DPC204", "load given twice or not at all",
         "Give exactly one of `workload.concurrency` and `workload.request_rate_per_s`."),
    Rule("DPC205", "inconsistent distribution", "A p99 or max below the mean."),
    Rule("DPC206", "several nodes without a network", "`hardware.nodes > 1` needs `hardware.network`."),
    Rule("DPC207", "memory reserved by other processes exceeds the GPU", "`hardware.reserved_memory_gib` too large."),
    Rule("DPC208", "request classes do not add up", "The shares of `workload.classes` must sum to 1."),
    Rule("DPC209", "latency percentiles inverted",
         "A lower-percentile target above a higher one (p50 above p90, p95 or p99; p95 above p99)."),
    Rule("DPC210", "quantization conflicts with the checkpoint",
         "The checkpoint is already quantized in another format."),
    Rule("DPC211", "prompt plus output longer than the context", "A request class cannot fit the context length."),
    Rule("DPC212", "pinned layout does not split the model",
         "A `[plan]` tp/pp/dp/ep the model cannot take: TP not dividing the attention or KV heads, more pipeline "
         "stages than layers, EP on a dense model or not dividing the experts, FP8 blocks split by TP."),
    Rule("DPC213", "pinned layout does not fit the hardware",
         "`[plan]` tp × pp × dp is above the GPUs given, or TP would span nodes or leave its NVLink domain."),
    Rule("DPC214", "pinned precision cannot run here",
         "`[plan].quantization` or `kv_cache_dtype` that the GPU, the checkpoint or the backend cannot run."),
    Rule("DPC215", "pinned serving knob out of bounds",
         "`[plan].max_model_len` above the model's limit, or a token budget below `max_num_seqs`."),
    Rule("DPC216", "pin contradicts another key",
         "A `[plan]` value disagrees with the same setting elsewhere (`model.quantization`, `model.kv_cache_dtype`, "
         "`model.max_context_tokens`, `operations.backend`): give it once."),
    Rule("DPC220", "power limit outside the board's range",
         "`environment.power_limit_w` below the GPU's minimum or above its maximum power limit: nvidia-smi "
         "refuses it."),
    Rule("DPC301", "does not fit", "The model and the minimum KV cache do not fit the GPUs; ranked fixes follow."),
    Rule("DPC302", "no valid parallelism", "No (TP, PP, DP, EP) layout is valid for this model on these GPUs."),
    Rule("DPC303", "context capped by KV capacity",
         "The KV cache cannot hold one sequence of the requested context; max model length is capped."),
    Rule("DPC304", "latency target missed",
         "The simulated TTFT or inter-token latency, at the percentile the target names, is above it."),
    Rule("DPC305", "concurrency above KV capacity",
         "The requested concurrency at the typical request does not fit in the KV cache; requests will queue."),
    Rule("DPC306", "thermal risk", "Passive cooling or a hot site: cap the power limit."),
    Rule("DPC307", "pinned plan cannot be served",
         "The `[plan]` pins are valid but the plan they force does not fit or the engine refuses it; the hint "
         "gives what deployc would choose without them."),
    Rule("DPC320", "cannot keep up",
         "The request rate is above what the pool completes (simulated capacity); the queue grows without bound."),
    Rule("DPC321", "GPUs left idle", "The chosen layout uses fewer GPUs than the spec gives; the decision says why."),
    Rule("DPC322", "requests queue",
         "More clients than the engine runs at once: the rest wait in the queue (simulated wait shown)."),
    Rule("DPC323", "cost", "What the pool's GPUs cost per hour and per million tokens at the simulated rate."),
    Rule("DPC324", "no deployment serves the traffic",
         "`deployc size` found no GPU type and count in its search that serves the workload within the SLO; "
         "the closest is named with its misses and the planner's fixes."),
    Rule("DPC325", "requests longer than max_model_len",
         "The engine refuses requests whose prompt + max_tokens is above max_model_len (the model's context limit, "
         "or a pinned or KV-capped length): those requests are not served."),
    Rule("DPC326", "requests longer than the KV cache",
         "The engine refuses requests that do not fit the whole KV cache of a replica: those requests are not "
         "served."),
    Rule("DPC401", "engine cannot run this on this GPU",
         "The backend vetoes a precision, feature or GPU (capability matrix of the pinned engine version)."),
    Rule("DPC402", "engine constraint violated", "A cross-flag invariant of the pinned engine version."),
    Rule("DPC501", "plugin failed to load", "A backend entry point raised on import."),
    Rule("DPC502", "plugin hook raised", "A backend plugin raised inside a hook."),
    Rule("DPC503", "plugin returned the wrong type", "A hook result does not match its documented type."),
    Rule("DPC504", "duplicate backend name", "Two plugins claim the same backend name."),
    Rule("DPC505", "plugin wrote outside the output directory", "An artifact path is absolute or escapes with `..`."),
    Rule("DPC506", "plugin timed out", "A plugin's import or a hook did not finish within the time limit."),
    Rule("DPC507", "plugin time limit invalid",
         "`DEPLOYC_PLUGIN_TIMEOUT_S` must be a number of seconds above 0 and at most 86400."),
    Rule("DPC508", "a built-in backend is broken",
         "`backend = \"auto\"` refuses to choose while vllm, sglang or trtllm failed to load or is claimed by "
         "another plugin; name a backend explicitly or fix the installation."),
    Rule("DPC601", "output directory not owned by deployc",
         "The directory is not empty and has no valid deployc manifest (use --force to replace it), or it is a "
         "mount point, a system directory, or holds the current directory, home or the spec (never replaced)."),
    Rule("DPC602", "output cannot be written", "Permission denied, read-only or full file system."),
    Rule("DPC603", "output directory busy",
         "Another deployc build has held the lock on the output's parent directory for a minute; builds into one "
         "place take turns."),
)

_DECISIONS: tuple[Rule, ...] = (
    Rule("DPD101", "activation dtype",
         "BF16 where the GPU and the checkpoint have it, FP16 otherwise (or the spec's)."),
    Rule("DPD102", "backend", "The engine: set in the spec, or chosen by the backend rules over what each installed "
         "backend declares (vendors, lock-in, engine builds, the traffic it suits), then its own vetoes."),
    Rule("DPD103", "network", "The fabric between nodes and the all-reduce bandwidth the plan assumes over it."),
    Rule("DPD104", "pools", "One pool for uniform traffic, or one per request class with the GPUs split by load."),
    Rule("DPD105", "parallel layout", "TP, PP, DP and EP: every valid layout simulated under the load and ranked "
         "against the SLO and the goal."),
    Rule("DPD106", "pipeline layer split", "Layers per pipeline stage."),
    Rule("DPD107", "idle GPUs", "Why the chosen layout leaves some of the GPUs given unused."),
    Rule("DPD201", "weights format",
         "Unquantized, FP8 or the checkpoint's format: what fits and what the engine runs."),
    Rule("DPD202", "KV-cache dtype", "The activation dtype, or FP8 when the cache must hold more."),
    Rule("DPD203", "memory fraction", "The share of GPU memory the engine takes, in the engine's own accounting."),
    Rule("DPD301", "max model length", "The longest sequence: what the spec or workload needs, within the model's "
         "limit and the KV capacity."),
    Rule("DPD302", "max running requests", "Sequences per step: the load's demand, bounded by the KV cache and the "
         "ITL target."),
    Rule("DPD303", "token budget", "Tokens per engine step with chunked prefill: prefill speed against ITL."),
    Rule("DPD304", "chunked prefill", "Long prompts split into chunks that share steps with running decodes."),
    Rule("DPD305", "prefix caching", "On when prompts share a prefix of at least one KV block or turns re-send "
         "history."),
    Rule("DPD306", "CUDA graphs", "On when their memory fits; eager otherwise."),
    Rule("DPD307", "custom all-reduce", "The one-shot all-reduce kernel, off over PCIe beyond two GPUs."),
    Rule("DPD401", "simulated serving", "The pool's simulated latency and throughput under the load, against the SLO."),
    Rule("DPD402", "cost", "What the pool's GPUs cost per hour and per million tokens at the simulated rate."),
    Rule("DPD403", "power limit", "The power limit to apply where cooling or the site's temperature calls for one."),
    Rule("DPD501", "backend's own choice",
         "A choice a backend makes when it emits (image, launcher, shared memory, data-parallel ranks, ROCm build)."),
)

RULES: dict[str, Rule] = {rule.id: rule for rule in _RULES}
DECISION_RULES: dict[str, Rule] = {rule.id: rule for rule in _DECISIONS}


def rule(rule_id: str) -> Rule:
    """The rule with this id, a diagnostic's or a decision's (KeyError for an id that was never registered)."""
    return RULES.get(rule_id) or DECISION_RULES[rule_id]
