"""EXPLAIN.md quotes spec values: no value can close its code span or start HTML or a link (Markdown injection)."""

from __future__ import annotations

from pathlib import Path

import pytest

from deployc.render.explain import code, prose
from tests.reliability import specgen
from tests.reliability._support import run_cli


@pytest.mark.parametrize(("text", "expected"), [
    ("plain", "`plain`"),
    ("a`b", "``a`b``"),
    ("``x``", "``` ``x`` ```"),
    ("`<img src=x onerror=alert(1)>`", "`` `<img src=x onerror=alert(1)>` ``"),
    ("two\nlines", "`two lines`"),
])
def test_a_code_span_no_content_can_close(text: str, expected: str) -> None:
    assert code(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("<script>alert(1)</script>", "&lt;script>alert(1)&lt;/script>"),
    ("see [the fix](https://evil.example)", "see [the fix]\\(https://evil.example)"),
    ("<https://evil.example>", "&lt;https://evil.example>"),
    ("ITL 74.7 ms > target 60 ms, TTFT < 1 s (`--enforce-eager`)", "ITL 74.7 ms > target 60 ms, TTFT < 1 s "
                                                                   "(`--enforce-eager`)"),
    ("a\nb", "a b"),
])
def test_prose_cannot_start_html_or_links(text: str, expected: str) -> None:
    assert prose(text) == expected


def test_a_flag_value_with_backticks_and_html_stays_inside_its_code_span(tmp_path: Path) -> None:
    value = "{{ '``<img src=x onerror=alert(1)>`' }}|x"
    base = next(raw for name, _, raw in specgen.BASES if name == "qwen7b-awq-t4-edge")
    doc = specgen.with_value(base, ("backends", "vllm", "extra_args"), ["--chat-template", value])
    doc = specgen.with_value(doc, ("operations", "backend"), "vllm")
    spec = tmp_path / "spec.toml"
    spec.write_text(specgen.spec_text(doc))
    run = run_cli(["build", str(spec), "-o", str(tmp_path / "out")])
    assert run.code == 0, run.err
    lines = (tmp_path / "out" / "EXPLAIN.md").read_text().splitlines()
    rows = [line for line in lines if "<img" in line]
    assert rows == ["| `--chat-template` | ```{{ '``<img src=x onerror=alert(1)>`' }}\\|x``` | passed through from "
                    "[backends.vllm] extra_args (checked against the vLLM 0.33.0 flag set) |  |"]
