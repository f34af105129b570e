"""Finding a Hugging Face repo's ``config.json``: in the local hub cache, else (optionally) on the Hub.

The cache layout is huggingface_hub's: ``<cache>/models--<org>--<name>/refs/<revision>`` holds a
commit hash and ``snapshots/<hash>/config.json`` the file. The cache directory is
``HF_HUB_CACHE``, else ``HF_HOME/hub``, else ``~/.cache/huggingface/hub``. Nothing here touches the
network unless :func:`download_config` is called, and that imports huggingface_hub lazily.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from attrs import frozen

_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*/[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_TRUE = ("1", "true", "yes", "on")


@frozen(kw_only=True)
class Found:
    """A config.json located for a repo, and where it came from (for diagnostics and plan sources)."""

    path: Path
    description: str


def looks_like_repo_id(ref: str) -> bool:
    """True for ``org/name`` (one slash, Hub-legal characters)."""
    return bool(_REPO_ID.fullmatch(ref))


def hub_cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """The hub cache directory huggingface_hub would use."""
    env = os.environ if env is None else env
    if env.get("HF_HUB_CACHE"):
        return Path(env["HF_HUB_CACHE"]).expanduser()
    if env.get("HUGGINGFACE_HUB_CACHE"):  # the older spelling huggingface_hub still honours
        return Path(env["HUGGINGFACE_HUB_CACHE"]).expanduser()
    if env.get("HF_HOME"):
        return Path(env["HF_HOME"]).expanduser() / "hub"
    return Path.home() / ".cache" / "huggingface" / "hub"


def offline(env: Mapping[str, str] | None = None) -> bool:
    """True when HF_HUB_OFFLINE asks for no network access."""
    env = os.environ if env is None else env
    return env.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


def cached_config(repo_id: str, *, revision: str = "main", cache_dir: Path | None = None) -> Found | None:
    """The cached ``config.json`` of ``repo_id`` at ``revision`` (a branch, tag or commit), or None."""
    cache_dir = hub_cache_dir() if cache_dir is None else cache_dir
    repo_dir = cache_dir / ("models--" + repo_id.replace("/", "--"))
    ref_file = repo_dir / "refs" / revision
    if ref_file.is_file():
        commit = ref_file.read_text(encoding="utf-8").strip()
    elif _COMMIT.fullmatch(revision):
        commit = revision
    else:
        return None
    path = repo_dir / "snapshots" / commit / "config.json"
    if not path.is_file():
        return None
    return Found(path=path, description=f"Hugging Face cache {path} ({repo_id}@{commit[:12]})")


def download_config(repo_id: str, *, revision: str = "main") -> Found | str:
    """Fetch ``config.json`` from the Hub with huggingface_hub; the reason as a string when it cannot."""
    try:
        from huggingface_hub import hf_hub_download  # noqa: PLC0415  (optional dependency, imported on use)
    except ImportError:
        return "huggingface_hub is not installed (pip install 'deployc[hf]')"
    try:
        path = hf_hub_download(repo_id=repo_id, filename="config.json", revision=revision)
    except Exception as exc:  # any Hub failure becomes a diagnostic, not a traceback
        return f"download failed: {type(exc).__name__}: {exc}".splitlines()[0]
    return Found(path=Path(path), description=f"huggingface.co/{repo_id} config.json ({revision})")
