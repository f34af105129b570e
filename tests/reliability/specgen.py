"""Spec generators and the validation oracle, shared by the fuzz tests and ``bench/fuzz.py``.

Generated specs start from every sample (and the minimal spec) and are mutated as a careless
or hostile author would: values of the wrong type, missing and unknown tables and keys, huge,
negative and non-finite numbers, empty, very long, unicode and control-character strings,
deep nesting.  Raw-text mutations break the TOML itself.  The oracle says what ``deployc
validate`` must do with any of them: exit 0, or exit 1 with located diagnostics carrying a
rule id — never crash.
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import json
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import tomli_w
from hypothesis import strategies as st

from tests.reliability._support import FILE_LEVEL_RULES, RULE_ID, SAMPLES, CliRun

KeyPath = tuple[str | int, ...]
Table = dict[str, Any]

MINIMAL_SPEC = """\
version = 1
name = "tiny"

[model]
id = "meta-llama/Llama-3.1-8B-Instruct"

[hardware]
gpu = "H100 SXM"

[workload]
prompt_tokens = { mean = 1000, p99 = 4000 }
output_tokens = { mean = 200, p99 = 800 }
concurrency = 16
"""


def _absolute_config(raw: Table, spec: Path) -> Table:
    """Samples name local model configs relative to themselves; generated specs live elsewhere."""
    model = raw.get("model")
    if isinstance(model, dict) and isinstance(model.get("config"), str):
        model["config"] = str((spec.parent / model["config"]).resolve())
    return raw


def _load_bases() -> tuple[tuple[str, str, Table], ...]:
    bases = [("minimal", MINIMAL_SPEC, tomllib.loads(MINIMAL_SPEC))]
    for path in SAMPLES:
        text = path.read_text()
        bases.append((path.stem, text, _absolute_config(tomllib.loads(text), path)))
    return tuple(bases)


BASES = _load_bases()

# Strings that break naive quoting, parsing, terminals or regular expressions.
NASTY_STRINGS = (
    "", " ", "\t", "a\nb", "a\r\nb", "\x00", "\x1b[31mred\x1b[0m", "\x7f", "\x85", "\u2028", "\u202e",
    "\ufeff", "\u200b", "e\u0301" * 50, "🦙" * 10, "--trust-remote-code", "-", "--", "; rm -rf /",
    "$(touch /tmp/deployc-pwned)", "`id`", "'", '"', "'\"'\"", "\\", "\\n", "${HF_TOKEN}", "*", "~", "../../etc/passwd",
    "/", "a b", "nan", "inf", "1e999", "-1", "true", "null", "0x10", "{}", "[]", "=", "#", "a.b.c." * 20,
    "." * 1000, "'" * 1000, '"' * 1000, "\\" * 1000, "a" * 5000, "x" * 70_000,
    "hf_" + "a1B2c3D4e5" * 4,
    # Found by the adversarial review (issue 15): Python's $ matched before a final newline, C1 controls and
    # Unicode line breaks passed the control-character patterns, bidi controls disguise scripts, tokens hid
    # behind a glued prefix, AWS keys had no pattern, credentials rode in extra_args.
    "abc\n", "llama-8b\n", "HF_TOKEN\n", "main\n", "a\x85b", "\x9b31m", "\x90", "a\u2029b", "abc\u202e",
    "\u2066abc\u2069", "a\u200fb", "a\u200bb", "x" + "hf_" + "a1B2c3D4e5" * 4, "ASIA" + "Z7X6C5V4B3N2M1L0",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCY" + "9Qx2Lk8Zt3", "--api-key", "--middleware", '["*"]',
    "{{ '`<img src=x onerror=alert(1)>`' }}",
)
NASTY_NUMBERS = (
    0, -1, 1, -0.0, 0.5, 2**31, 2**63 - 1, -(2**63), 2**64, 10**30, -(10**30), 1e308, -1e308, 5e-324,
    float("nan"), float("inf"), float("-inf"), True, False,
)

_unicode = st.characters(exclude_categories=["Cs"])  # UTF-8 cannot encode lone surrogates
keys = st.one_of(
    st.sampled_from(["", "x", "id", "name", "mean", "gpu", "backends", "vllm", "model", "classes", "a.b", "é", "🦙"]),
    st.text(_unicode, max_size=12),
)
scalars = st.one_of(
    st.sampled_from(NASTY_STRINGS),
    st.sampled_from(NASTY_NUMBERS),
    st.text(_unicode, max_size=40),
    st.integers(),
    st.floats(),
    st.booleans(),
    st.datetimes(max_value=dt.datetime(9999, 1, 1)),
    st.dates(),
    st.times(),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=10,
)


def key_paths(node: Any, path: KeyPath = ()) -> Iterator[KeyPath]:
    """Every key path in a table (tables, arrays and leaves), depth first."""
    items: Any = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        yield (*path, key)
        yield from key_paths(value, (*path, key))


def leaf_paths(node: Any, path: KeyPath = ()) -> Iterator[KeyPath]:
    """Key paths of the scalar values only."""
    if isinstance(node, dict | list):
        items: Any = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in items:
            yield from leaf_paths(value, (*path, key))
    elif path:
        yield path


def get(node: Any, path: KeyPath) -> Any:
    """The value at ``path``."""
    for part in path:
        node = node[part]
    return node


def put(node: Any, path: KeyPath, value: Any) -> None:
    """Replace the value at ``path``."""
    get(node, path[:-1])[path[-1]] = value


def nested(depth: int, leaf: Any, as_list: bool) -> Any:
    """``leaf`` wrapped ``depth`` times in arrays or tables."""
    for _ in range(depth):
        leaf = [leaf] if as_list else {"a": leaf}
    return leaf


@st.composite
def mutated_tables(draw: st.DrawFn) -> Table:
    """A sample (or the minimal spec) with one to three structural or value mutations."""
    _, _, base = draw(st.sampled_from(BASES))
    doc: Table = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        paths = list(key_paths(doc))
        op = draw(st.sampled_from(["set", "set", "delete", "add", "retype", "nest"] if paths else ["add"]))
        if op == "add":
            tables = [()] + [p for p in paths if isinstance(get(doc, p), dict)]
            where = draw(st.sampled_from(tables))
            get(doc, where)[draw(keys)] = draw(values)
            continue
        path = draw(st.sampled_from(paths))
        old = get(doc, path)
        if op == "set":
            put(doc, path, draw(values))
        elif op == "delete":
            parent = get(doc, path[:-1])
            del parent[path[-1]]
        elif op == "retype":
            put(doc, path, draw(st.sampled_from([[old], {"value": old}, str(old), len(str(old)), None])))
            if get(doc, path) is None:  # TOML has no null: drop the key instead
                del get(doc, path[:-1])[path[-1]]
        else:
            put(doc, path, nested(draw(st.integers(1, 40)), old, draw(st.booleans())))
    return doc


def spec_text(doc: Table) -> str:
    """A generated table as TOML text (tomli-w writes any TOML value, NaN and huge integers included)."""
    return tomli_w.dumps(doc)


# TOML punctuation and look-alikes for raw-text mutations.
_TOKENS = ("[", "]", "[[", "]]", "{", "}", "=", ".", ",", '"', "'", '"""', "'''", "#", "\\", "\n", "\r", "\t",
           "\x00", "\ufeff", " = ", "[model]\n", "[[workload.classes]]\n", "x = 1\n", "inf", "nan", "1e99999",
           "0x", "1979-05-27T07:32:00Z", "true", "🦙")


# Whole lines that tripped bugs the reliability suite found (now tested in test_limits.py and
# test_diagnostic_text.py): bench/fuzz.py mixes them in to keep them fixed; CI's fuzz does not need to.
HOSTILE_TOKENS = (*_TOKENS, "x = " + "9" * 4301 + "\n", "a." * 3000 + "a = 1\n", "[" + "a." * 3000 + "a]\n",
                  '"" = 1\n', '"\\u001b[2J" = 1\n', '"x\\n::error::forged" = 1\n', "\"hf_" + "aB3" * 12 + "\" = 1\n",
                  'name = "abc\\n"\n', 'served_name = "a\\u0085b"\n', 'x = "\\u202e"\n', '"\\u009b" = 1\n',
                  'extra_args = ["--api-key", "k"]\n')


@st.composite
def mutated_bytes(draw: st.DrawFn, tokens: tuple[str, ...] = _TOKENS) -> bytes:
    """A sample's text with raw edits: insertions, deletions, duplicated lines, bad encodings."""
    _, text, _ = draw(st.sampled_from(BASES))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["insert", "insert", "delete", "duplicate", "truncate"]))
        pos = draw(st.integers(0, len(text)))
        if draw(st.booleans()):  # at the start of a line, where a whole key = value line parses
            pos = text.rfind("\n", 0, pos) + 1
        if op == "insert":
            text = text[:pos] + draw(st.sampled_from(tokens) | st.text(_unicode, max_size=4)) + text[pos:]
        elif op == "delete":
            text = text[:pos] + text[pos + draw(st.integers(1, 20)):]
        elif op == "duplicate":
            lines = text.splitlines(keepends=True) or [""]
            index = draw(st.integers(0, len(lines) - 1))
            text = "".join([*lines[: index + 1], lines[index], *lines[index + 1:]])
        else:
            text = text[:pos]
    data = text.encode()
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8", "crlf", "bom", "latin-1-byte", "utf-16"]))
    if encoding == "crlf":
        data = data.replace(b"\n", b"\r\n")
    elif encoding == "bom":
        data = b"\xef\xbb\xbf" + data
    elif encoding == "latin-1-byte":
        cut = draw(st.integers(0, len(data)))
        data = data[:cut] + b"\xe9" + data[cut:]
    elif encoding == "utf-16":
        data = text.encode("utf-16")
    return data


def validate_problems(run: CliRun) -> list[str]:
    """What is wrong with one ``deployc validate --format json`` run (empty when it behaved)."""
    from deployc.rules import RULES

    problems: list[str] = []
    if run.code not in (0, 1):
        problems.append(f"exit code {run.code}")
    if "Traceback" in run.out + run.err or "internal error" in run.err:
        problems.append("a crash: " + run.err[-500:])
    try:
        records = json.loads(run.out)
    except ValueError:
        return [*problems, f"stdout is not JSON: {run.out[:200]!r}"]
    if run.err:
        problems.append(f"stderr in JSON mode: {run.err[:200]!r}")
    for record in records:
        rule = record.get("rule") or ""
        if not RULE_ID.fullmatch(rule) or rule not in RULES:
            problems.append(f"diagnostic without a registered rule id: {record}")
        if rule not in FILE_LEVEL_RULES and not record.get("key_path"):
            problems.append(f"{rule} diagnostic without a key path: {record}")
        if not record.get("message"):
            problems.append(f"{rule} diagnostic without a message")
    errors = [r for r in records if r.get("severity") == "error"]
    if run.code == 1 and not errors:
        problems.append("exit 1 without an error diagnostic")
    if run.code == 0 and errors:
        problems.append("exit 0 with error diagnostics")
    return problems


_C0_C1 = frozenset(chr(c) for c in [*range(0x20), *range(0x7F, 0xA0)]) - {"\n"}
_TEXT_LINE = r"(?:\S.*: (?:error|warning|note): .*\[DPC\d{3}\]|  hint: .*)"


def terminal_problems(err: str, diagnostics: int) -> list[str]:
    """Text-mode output must be safe for a terminal or CI log: no control characters, one line per item.

    ``diagnostics`` is how many diagnostics (JSON mode) the same spec produced; text mode prints one
    line each, plus one line per hint.
    """
    import re

    problems = []
    bad = sorted({repr(ch) for ch in err if ch in _C0_C1})
    if bad:
        problems.append(f"control characters in terminal output: {', '.join(bad)}")
    heads = [line for line in err.splitlines() if not line.startswith("  hint: ")]
    if len(heads) != diagnostics:
        problems.append(f"{diagnostics} diagnostics printed on {len(heads)} lines")
    strays = [line for line in err.split("\n") if line and not re.fullmatch(_TEXT_LINE, line)]
    if strays:
        problems.append(f"line that is not a diagnostic or a hint: {strays[0][:120]!r}")
    return problems



# A valid spec with every optional string field present, so each can be corrupted in place.
FULL_SPEC: Table = {
    "version": 1,
    "name": "full",
    "model": {"id": "meta-llama/Llama-3.1-8B-Instruct", "served_name": "llama-8b", "revision": "main"},
    "hardware": {"gpu": "H100 SXM", "gpus_per_node": 2, "network_interface": "eth0", "ib_hcas": ["mlx5_0"]},
    "workload": {
        "prompt_tokens": {"mean": 1000, "p99": 4000}, "output_tokens": {"mean": 200, "p99": 800},
        "concurrency": 16,
        "classes": [{"name": "all", "share": 1.0, "prompt_tokens": {"mean": 1000}, "output_tokens": {"mean": 200}}],
    },
    "operations": {"backend": "auto", "image": "registry.example.com/vllm/vllm-openai", "image_tag": "v0.33.0",
                   "model_cache": "/data/hf-cache", "hf_token_env": "HF_TOKEN"},
}


def string_fields(schema: dict[str, Any], path: KeyPath = ()) -> Iterator[KeyPath]:
    """Key paths of every string-valued field a schema defines (array items as index 0)."""
    for key, sub in schema.get("properties", {}).items():
        kind = sub.get("type")
        if kind == "string":
            yield (*path, key)
        elif kind == "object":
            yield from string_fields(sub, (*path, key))
        elif kind == "array":
            items = sub.get("items", {})
            if items.get("type") == "string":
                yield (*path, key, 0)
            elif items.get("type") == "object":
                yield from string_fields(items, (*path, key, 0))


def with_value(doc: Table, path: KeyPath, value: Any) -> Table:
    """A copy of ``doc`` with ``value`` at ``path``, creating the tables and arrays on the way."""
    out = copy.deepcopy(doc)
    node: Any = out
    for part, nxt in itertools.pairwise(path):
        if isinstance(node, dict):
            node = node.setdefault(part, [] if isinstance(nxt, int) else {})
        else:
            while len(node) <= int(part):
                node.append([] if isinstance(nxt, int) else {})
            node = node[int(part)]
    last = path[-1]
    if isinstance(node, list):
        while len(node) <= int(last):
            node.append(value)
        node[int(last)] = value
    else:
        node[last] = value
    return out


def _string_fields_with_plugin_options() -> tuple[KeyPath, ...]:
    from deployc.plugins import default_registry
    from deployc.spec.schema import spec_schema

    return tuple(string_fields(spec_schema(default_registry().option_schemas())))


# Every string field of the spec language, including the options of the installed backends.
STRING_FIELDS = _string_fields_with_plugin_options()
