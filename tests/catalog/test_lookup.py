"""Name normalisation and did-you-mean, shared by every catalog."""

from __future__ import annotations

import pytest

from deployc.catalog.lookup import CatalogLookupError, NameIndex, normalise, suggest, without_vendor


@pytest.mark.parametrize(("name", "key"), [
    ("H100 SXM", "h100sxm"),
    ("h100-sxm", "h100sxm"),
    ("  H100__SXM ", "h100sxm"),
    ("meta-llama/Llama-3.1-8B", "metallama/llama3.18b"),
])
def test_normalise_ignores_case_spaces_dashes_underscores(name: str, key: str) -> None:
    assert normalise(name) == key


def test_vendor_words_are_dropped_from_the_front_only() -> None:
    assert without_vendor("NVIDIA GeForce RTX 4090") == "rtx4090"
    assert without_vendor("Tesla T4") == "t4"
    assert without_vendor("AMD Instinct MI300X") == "mi300x"
    assert without_vendor("RTX 4090 NVIDIA") == "rtx4090nvidia"


def test_suggest_puts_prefix_matches_first_then_close_matches() -> None:
    names = ["A100 40GB SXM", "A100 80GB SXM", "A10", "H100 SXM"]
    assert suggest("A100 80", names)[0] == "A100 80GB SXM"
    assert suggest("H10 SXM", names)[0] == "H100 SXM"
    assert suggest("", names) == ()
    assert suggest("zzzz", names) == ()


def test_suggest_returns_catalog_spelling_once() -> None:
    assert suggest("h100sx", ["H100 SXM", "h100-sxm"]) == ("H100 SXM",)


def test_lookup_error_message_names_kind_and_suggestions() -> None:
    err = CatalogLookupError("GPU", "H10 SXM", ("H100 SXM",))
    assert str(err) == "unknown GPU 'H10 SXM'; did you mean 'H100 SXM'?"
    assert (err.kind, err.name, err.suggestions) == ("GPU", "H10 SXM", ("H100 SXM",))
    assert str(CatalogLookupError("model", "x")) == "unknown model 'x'"


def test_name_index_first_registration_wins() -> None:
    index = NameIndex("thing", [("a", "A-1"), ("b", "a 1")], lambda item: (item[1],))
    assert index.get("A_1") == ("a", "A-1")
    with pytest.raises(CatalogLookupError) as exc:
        index.get("B-2")
    assert exc.value.kind == "thing"
