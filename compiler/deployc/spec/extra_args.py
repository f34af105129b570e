"""Engine flags passed through ``[backends.NAME] extra_args`` that deployc refuses, whatever the backend.

A backend checks that each pass-through flag exists in its pinned engine; this module checks what a
flag *does*.  Credentials on a command line end up in ``run.sh``, manifests and the process list
(DPC021, always refused).  Flags that load code into the server or widen who can reach it are
refused (DPC022) unless ``operations.trusted_extra_args`` names them: someone reviewing the spec
must see that choice as a key of its own, not as one item in a list of flags.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from deployc.diagnostics import Diagnostic
from deployc.spec.loader import SpecDocument
from deployc.spec.locate import KeyPath
from deployc.spec.model import Spec

# Flags whose value is a secret, with where the secret belongs instead.  Flag names from the pinned
# parsers: plugins/deployc_vllm/data/vllm-0.33.0.json and plugins/deployc_sglang/data/sglang-0.5.23.json.
CREDENTIAL_FLAGS = {
    "--api-key": "give the server its key through its environment where it runs (vLLM reads VLLM_API_KEY), "
                 "not on its command line",
    "--admin-api-key": "give the server its admin key through its environment where it runs, not on its command "
                       "line",
    "--hf-token": "deployc passes the Hugging Face token from the environment variable named by "
                  "operations.hf_token_env (default HF_TOKEN)",
    "--ssl-keyfile-password": "use an unencrypted key file readable only by the server, or decrypt it where the "
                              "server runs",
}
# Flags that load code into the server, or let requests reach beyond it (vLLM 0.33.0, SGLang 0.5.23 help texts).
RISKY_FLAGS = {
    "--middleware": "imports a Python object into the server",
    "--tool-parser-plugin": "loads a Python file into the server",
    "--reasoning-parser-plugin": "loads a Python file into the server",
    "--io-processor-plugin": "loads a plugin into the server",
    "--logits-processors": "imports Python classes into the server",
    "--worker-cls": "imports a Python class into every worker",
    "--worker-extension-cls": "imports a Python class into every worker",
    "--scheduler-cls": "imports a Python class into the scheduler",
    "--enable-custom-logit-processor": "lets requests send code to run as logit processors",
    "--allowed-local-media-path": "lets requests read files of the server's file system",
    "--trust-request-chat-template": "lets a request replace the chat template",
}
_ANY = ("--allowed-origins", "--allowed-methods", "--allowed-headers")  # refused with "*": any web page may call
_TEMPLATE_SUFFIXES = (".jinja", ".jinja2", ".j2")


def _flags(items: list[Any]) -> Iterator[tuple[int, str, str | None]]:
    """(index, flag, value) for each ``--flag``, ``--flag=value`` or ``--flag value`` item."""
    for index, item in enumerate(items):
        if not isinstance(item, str) or not item.startswith("--"):
            continue
        flag, eq, inline = item.partition("=")
        following = items[index + 1] if index + 1 < len(items) else None
        value = inline if eq else following if isinstance(following, str) and not following.startswith("-") else None
        yield index, flag, value


def _extra_args(raw: dict[str, Any]) -> Iterator[tuple[KeyPath, list[Any]]]:
    backends = raw.get("backends")
    if not isinstance(backends, dict):
        return
    for name, table in backends.items():
        if isinstance(table, dict) and isinstance(table.get("extra_args"), list):
            yield ("backends", name, "extra_args"), table["extra_args"]


def credential_diagnostics(document: SpecDocument) -> list[Diagnostic]:
    """A DPC021 for every credential flag among the extra_args of any backend (its value is never repeated)."""
    out = []
    for path, items in _extra_args(document.raw):
        for index, flag, _ in _flags(items):
            if flag in CREDENTIAL_FLAGS:
                out.append(document.diagnostic(
                    "DPC021", f"extra_args passes a credential on the command line ({flag}): it would be written "
                              "into the scripts and shown by ps", (*path, index), hint=CREDENTIAL_FLAGS[flag]))
    return out


def _risk(flag: str, value: str | None) -> str | None:
    if flag in RISKY_FLAGS:
        return RISKY_FLAGS[flag]
    if flag in _ANY and value is not None and "*" in value:
        return f"with {value!r} lets any web page call the server from a browser"
    if flag == "--chat-template" and value is not None and (
            value.startswith(("/", "~", "./", "../")) or value.endswith(_TEMPLATE_SUFFIXES)):
        return "reads a template from a file deployc does not ship with the model (the model's own template is " \
               "used without it)"
    return None


def risky_flag_diagnostics(document: SpecDocument, spec: Spec) -> Iterator[Diagnostic]:
    """A DPC022 for each code-loading or exposing flag not named in ``operations.trusted_extra_args``."""
    trusted = set(spec.operations.trusted_extra_args or ())  # None: not given (kept out of the lock file)
    for path, items in _extra_args(document.raw):
        for index, flag, value in _flags(items):
            risk = _risk(flag, value)
            if risk is not None and flag not in trusted:
                yield document.diagnostic(
                    "DPC022", f"extra_args flag {flag} {risk}", (*path, index), value=Diagnostic.value_repr(flag),
                    hint=f'if that is intended, say so: operations.trusted_extra_args = ["{flag}"]')
