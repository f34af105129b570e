"""Token-shaped strings anywhere in a spec are errors, and never repeated in any message."""

from __future__ import annotations

from pathlib import Path

import pytest

from deployc.api import load_spec
from deployc.diagnostics import SpecError
from tests.conftest import MINIMAL_SPEC

TOKEN = "hf_" + "a1B2c3D4e5" * 4


def _messages(path: Path) -> list[str]:
    with pytest.raises(SpecError) as exc:
        load_spec(path, display_name="spec.toml")
    return [d.format_text() for d in exc.value.diagnostics]


def test_token_in_a_value(write_spec):  # type: ignore[no-untyped-def]
    messages = _messages(write_spec(MINIMAL_SPEC.replace("[model]\n", f'[model]\nserved_name = "{TOKEN}"\n')))
    assert messages == [
        "spec.toml:5: error: model.served_name: a value looks like an access token; secrets must not be written in a "
        "spec [DPC021]\n  hint: remove it and export it as $HF_TOKEN where deployc's output runs",
    ]


def test_token_as_a_key_next_to_schema_errors_is_reported_and_redacted(write_spec):  # type: ignore[no-untyped-def]
    messages = _messages(write_spec(MINIMAL_SPEC.replace("[model]\n", f'[model]\n{TOKEN} = 1\ndtype = "{TOKEN}"\n')))
    text = "\n".join(messages)
    assert TOKEN not in text
    assert "spec.toml:5: error: model.<redacted>: a key looks like an access token" in text
    assert "spec.toml:6: error: model.dtype: a value looks like an access token" in text
    assert "'<redacted>' is not one of: auto, bfloat16, float16 [DPC012]" in text
