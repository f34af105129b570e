"""The Hugging Face token, by name only: the spec's ``operations.hf_token_env`` and the ``HF_TOKEN`` engines read.

Every artifact that starts a container takes the token from the environment of the shell that runs it,
never its value: scripts export ``HF_TOKEN`` from the spec's variable when it has another name, Compose
interpolates it from that variable, and Kubernetes reads a Secret.
"""

from __future__ import annotations

from deployc.contract.deployment import Deployment
from deployc.contract.toolkit import EnvRef
from deployc.contract.toolkit.shell import ScriptBuilder

HF_TOKEN = "HF_TOKEN"  # noqa: S105  (the variable's name; its value is never written)


def token_variable(deployment: Deployment) -> str:
    """The caller's variable holding the token (validated as a variable name)."""
    name = deployment.operations.hf_token_env
    EnvRef(name)  # raises on anything but a shell variable name
    return name


def token_export(deployment: Deployment) -> str | None:
    """``export HF_TOKEN=...`` when the spec names another variable for the token (None when it is HF_TOKEN)."""
    name = token_variable(deployment)
    if name == HF_TOKEN:
        return None
    return f'export {HF_TOKEN}="${{{name}:-}}"  # the token is read from {name} (operations.hf_token_env)'


def token_preamble(script: ScriptBuilder, deployment: Deployment) -> None:
    """A script's token lines: the export when the variable has another name, a note when it is unset."""
    export = token_export(deployment)
    if export is not None:
        script.raw(export)
    script.raw('[ -n "${HF_TOKEN:-}" ] || echo "note: HF_TOKEN is not set; gated models will fail to download" >&2')


def token_renamed(deployment: Deployment) -> tuple[tuple[str, str], ...]:
    """``DockerRun.env_renamed`` for the token: HF_TOKEN taken from the spec's variable when it has another name."""
    name = token_variable(deployment)
    return () if name == HF_TOKEN else ((HF_TOKEN, name),)


def token_source(deployment: Deployment) -> str:
    """Where a Compose file's HF_TOKEN comes from, for its header."""
    name = token_variable(deployment)
    if name == HF_TOKEN:
        return "HF_TOKEN is read from the environment of that shell"
    return f"HF_TOKEN is taken from {name} in the environment of that shell (operations.hf_token_env)"
