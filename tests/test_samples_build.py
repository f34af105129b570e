"""Every sample builds; its plan.json follows the documented schema; artifacts match the golden files.

Golden files live in tests/golden/<sample>/<backend>/ and are rewritten only with
``pytest --update-golden``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import pytest

from deployc.api import build
from deployc.diagnostics import DeploycError
from deployc.emit import MANIFEST_NAME
from deployc.plugins import default_registry
from tests.conftest import REPO, SAMPLES

GOLDEN = REPO / "tests" / "golden"
PLAN_SCHEMA = json.loads((REPO / "schemas" / "plan.schema.json").read_text())
BACKENDS = ("auto", "vllm", "sglang", "trtllm")


def _build(sample: Path, out: Path, backend: str | None = None) -> dict[str, bytes]:
    rel = str(sample.relative_to(REPO)) if sample.is_relative_to(REPO) else sample.name
    # A forced backend's artifacts are checked whatever its simulated verdict (SGLang's prefill steps miss some
    # samples' ITL targets); the sample's own choice (auto) must serve its traffic.
    build(sample, out, backend=backend, display_name=rel, accept_slo_miss=backend is not None)
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("sample", SAMPLES, ids=[p.stem for p in SAMPLES])
def test_sample_builds_with_valid_plan_json(sample: Path, tmp_path: Path) -> None:
    files = _build(sample, tmp_path / "out")
    plan = json.loads(files["plan.json"])
    jsonschema.validate(plan, PLAN_SCHEMA)
    assert {"plan.json", "EXPLAIN.md", "deployc.lock.toml", MANIFEST_NAME} <= set(files)
    assert plan["backend"]["artifacts"], "the backend emitted nothing"
    for artifact in plan["backend"]["artifacts"]:
        assert artifact in files


@pytest.mark.parametrize("sample", SAMPLES, ids=[p.stem for p in SAMPLES])
def test_two_builds_are_byte_identical(sample: Path, tmp_path: Path) -> None:
    assert _build(sample, tmp_path / "a") == _build(sample, tmp_path / "b")


@pytest.mark.parametrize("sample", SAMPLES, ids=[p.stem for p in SAMPLES])
def test_lock_file_rebuilds_the_same_plan(sample: Path, tmp_path: Path) -> None:
    first = _build(sample, tmp_path / "a")
    lock = tmp_path / "lock" / sample.name
    lock.parent.mkdir()
    lock.write_bytes(first["deployc.lock.toml"])
    # A model.config path is relative to the spec: the lock keeps it, so give it the same neighbours.
    if (sample.parent / "models").is_dir():
        shutil.copytree(sample.parent / "models", lock.parent / "models")
    again = _build(lock, tmp_path / "b")
    a, b = json.loads(first["plan.json"]), json.loads(again["plan.json"])
    # Only what names the input file may differ: its name, its text's hash, where a local config was read.
    for plan in (a, b):
        plan.pop("spec")
        plan["target"]["model"].pop("source")
        for diag in plan["diagnostics"]:
            diag.pop("file")
    assert a == b


def _golden_cases() -> list[tuple[Path, str]]:
    names = default_registry().names()
    return [(s, b) for s in SAMPLES for b in BACKENDS if b == "auto" or b in names]


# With backend = "auto" only what depends on the choice is kept; the engine's artifacts must equal the
# golden files of the backend it chose (tests/golden/<sample>/<backend>/).
AUTO_OWN_FILES = frozenset({"plan.json", "EXPLAIN.md", "deployc.lock.toml", MANIFEST_NAME})


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _write_tree(root: Path, files: dict[str, bytes]) -> None:
    shutil.rmtree(root, ignore_errors=True)
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)


def check_error_golden(golden: Path, case: str, text: str, *, update: bool, accepted: frozenset[str]) -> None:
    """A build that failed passes only when its golden is that failure (ERROR.txt) with the same text.

    ``--update-golden`` rewrites an ERROR.txt that exists, but records a new failure (a case whose golden
    is a successful build, or a new case) only when ``--accept-golden-error SAMPLE/BACKEND`` names it:
    otherwise a regression would become its own golden.
    """
    error_file = golden / "ERROR.txt"
    if update and (error_file.is_file() or case in accepted):
        _write_tree(golden, {"ERROR.txt": text.encode()})
    if not error_file.is_file():
        pytest.fail(f"{case} failed; its golden is not a failure (to record a backend now meant to refuse it: "
                    f"--update-golden --accept-golden-error {case}):\n{text}", pytrace=False)
    assert text == error_file.read_text()


@pytest.mark.parametrize(("sample", "backend"), _golden_cases(), ids=lambda v: getattr(v, "stem", v))
def test_golden_artifacts(sample: Path, backend: str, tmp_path: Path, update_golden: bool,
                          accepted_golden_errors: frozenset[str]) -> None:
    golden = GOLDEN / sample.stem / backend
    try:
        files = _build(sample, tmp_path / "out", None if backend == "auto" else backend)
    except DeploycError as exc:
        text = "\n".join(d.format_text() for d in exc.diagnostics) + "\n"
        check_error_golden(golden, f"{sample.stem}/{backend}", text, update=update_golden,
                           accepted=accepted_golden_errors)
        return
    if backend == "auto":
        chosen = json.loads(files["plan.json"])["backend"]["name"]
        engine_files = {k: v for k, v in files.items() if k not in AUTO_OWN_FILES}
        assert engine_files == {k: v for k, v in _tree(GOLDEN / sample.stem / chosen).items()
                                if k not in AUTO_OWN_FILES}, f"auto chose {chosen}; its artifacts differ"
        files = {k: v for k, v in files.items() if k in AUTO_OWN_FILES}
    if update_golden:
        _write_tree(golden, files)
    expected = _tree(golden)
    assert sorted(files) == sorted(expected)
    for name, data in files.items():
        assert data == expected[name], f"{name} differs from tests/golden/{sample.stem}/{backend}/{name}"


@pytest.mark.parametrize("sample", [s for s in SAMPLES if "config =" in s.read_text()], ids=lambda p: p.stem)
def test_build_does_not_depend_on_where_the_specs_live(sample: Path, tmp_path: Path) -> None:
    outputs = []
    for place in ("a", "b/deeper"):
        tree = tmp_path / place / "samples"
        shutil.copytree(REPO / "samples", tree)
        out = tmp_path / f"out-{len(outputs)}"
        build(tree / sample.name, out, display_name=f"samples/{sample.name}")
        outputs.append({str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()})
    assert outputs[0] == outputs[1]


def test_update_golden_does_not_record_a_new_failure(tmp_path: Path) -> None:
    golden = tmp_path / "sample" / "vllm"
    _write_tree(golden, {"run.sh": b"docker run ...\n"})
    with pytest.raises(pytest.fail.Exception) as failed:
        check_error_golden(golden, "sample/vllm", "boom\n", update=True, accepted=frozenset())
    assert str(failed.value) == ("sample/vllm failed; its golden is not a failure (to record a backend now meant to "
                                 "refuse it: --update-golden --accept-golden-error sample/vllm):\nboom\n")
    assert _tree(golden) == {"run.sh": b"docker run ...\n"}  # the golden build is still the golden
    with pytest.raises(pytest.fail.Exception):  # a new case that fails is not recorded either
        check_error_golden(tmp_path / "new" / "vllm", "new/vllm", "boom\n", update=True, accepted=frozenset())
    assert not (tmp_path / "new").exists()


def test_update_golden_records_an_accepted_or_known_failure(tmp_path: Path) -> None:
    golden = tmp_path / "sample" / "sglang"
    _write_tree(golden, {"run.sh": b"docker run ...\n"})
    check_error_golden(golden, "sample/sglang", "refused\n", update=True, accepted=frozenset({"sample/sglang"}))
    assert _tree(golden) == {"ERROR.txt": b"refused\n"}
    check_error_golden(golden, "sample/sglang", "refused, reworded\n", update=True, accepted=frozenset())
    assert _tree(golden) == {"ERROR.txt": b"refused, reworded\n"}
    with pytest.raises(AssertionError):  # without --update-golden a different message fails
        check_error_golden(golden, "sample/sglang", "refused again\n", update=False, accepted=frozenset())


def test_every_golden_directory_belongs_to_a_sample_and_a_backend() -> None:
    """Golden files of a removed or renamed sample, backend or fixture are stale: they fail here."""
    from tests.plugins.vllm.test_golden import GOLDEN as VLLM_FIXTURES
    from tests.plugins.vllm.test_golden import NAMES as VLLM_FIXTURE_NAMES

    samples = {s.stem for s in SAMPLES}
    entries = {p.name for p in GOLDEN.iterdir()}
    assert entries - samples - {VLLM_FIXTURES.name} == set(), "golden directories without a sample"
    assert samples - entries == set(), "samples without golden files (pytest --update-golden)"
    for sample in sorted(samples):
        backends = {p.name for p in (GOLDEN / sample).iterdir()}
        assert backends == set(BACKENDS), f"tests/golden/{sample}/ holds {sorted(backends)}"
    assert {p.name for p in VLLM_FIXTURES.iterdir()} == set(VLLM_FIXTURE_NAMES), "stale vllm-fixtures"


def test_every_expected_message_belongs_to_an_invalid_sample() -> None:
    invalid = REPO / "samples" / "invalid"
    stale = [p.name for p in sorted(invalid.glob("*.expected")) if not p.with_suffix(".toml").is_file()]
    assert stale == []
