from __future__ import annotations

import tomllib

import pytest

from deployc.spec.locate import format_path, locate_keys

DOC = '''\
# comment with [brackets] and = signs
version = 1
name = "x" # trailing [comment]

[model]
id = """multi
[not.a.table]
line"""
"quoted.key" = 3
a.b.c = [1,
  2, {x = 1, y = "a]"},
]

[[workload.classes]]
name = "a"
[workload.classes.prompt_tokens]
mean = 3

[[workload.classes]]
name = "b"
prompt_tokens = { mean = 5, p99 = 7 }
'''


@pytest.fixture(scope="module")
def locator():  # type: ignore[no-untyped-def]
    tomllib.loads(DOC)  # the scanner only runs on text tomllib accepted
    return locate_keys(DOC)


@pytest.mark.parametrize(
    ("path", "line"),
    [
        (("version",), 2),
        (("name",), 3),
        (("model",), 5),
        (("model", "id"), 6),
        (("model", "quoted.key"), 9),  # the multi-line string's fake table header is not a table
        (("model", "a", "b", "c", 1), 11),
        (("model", "a", "b", "c", 2, "y"), 11),
        (("workload", "classes", 0, "name"), 15),
        (("workload", "classes", 0, "prompt_tokens", "mean"), 17),
        (("workload", "classes", 1), 19),
        (("workload", "classes", 1, "prompt_tokens", "p99"), 21),
    ],
)
def test_line_of_each_key(locator, path, line):  # type: ignore[no-untyped-def]
    assert locator.line_of(path) == line


def test_missing_key_falls_back_to_its_table(locator):  # type: ignore[no-untyped-def]
    assert locator.line_of(("workload", "classes", 1, "output_tokens")) == 19
    assert locator.line_of(("nowhere",)) is None


def test_format_path():
    assert format_path(("workload", "classes", 1, "share")) == "workload.classes[1].share"
    assert format_path(()) == ""
