"""Secrets in specs: reported wherever they appear (key or value), and never repeated in any message.

Specs are committed to git and their values reach emitted scripts, so a token pasted into
any field is an error (DPC021). The scan runs on the raw table before the schema, so a token
is reported even next to other errors, and every other diagnostic is redacted.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Any

from attrs import evolve

from deployc.diagnostics import Diagnostic
from deployc.spec.extra_args import credential_diagnostics
from deployc.spec.loader import SpecDocument
from deployc.spec.locate import walk_strings

# Token formats of the hosts users paste from (Hugging Face, GitHub, OpenAI-style, AWS, Slack).  The
# distinctive prefixes match even with something glued in front (`xhf_...`, `tokenghp_...`); `sk-` stays
# anchored on the left, or words merely ending in it ("risk-assessment-...") would match.
_START = r"(?<![A-Za-z0-9])"
SECRET_PATTERNS = (
    re.compile(r"hf_[A-Za-z0-9]{30,}"),
    re.compile(r"gh[pousr]_[A-Za-z0-9]{30,}"),
    re.compile(_START + r"sk-(?:proj-|ant-)?[A-Za-z0-9_]{32,}"),
    re.compile(r"(?:AKIA|ASIA)[0-9A-Z]{16}(?![0-9A-Z])"),  # AWS access key ids: long-term and temporary (STS)
    re.compile(r"xox[baprs]-[A-Za-z0-9-]{10,}"),
)
# AWS secret access keys have no prefix: 40 characters of base64 (30 random bytes).  A run of exactly 40
# with upper case, lower case and digits, and the character spread of random data (Shannon entropy at
# least 4.35 bits per character: 99.9% of random keys, while 40-character paths and words score 4.2-4.3).
_AWS_SECRET = re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")
_AWS_SECRET_ENTROPY_BITS = 4.35
REDACTED = "<redacted>"
DEFAULT_TOKEN_ENV = "HF_TOKEN"  # noqa: S105  (the name of a variable, not a secret)


def _random_looking(candidate: str) -> bool:
    if not (any(c.isupper() for c in candidate) and any(c.islower() for c in candidate)
            and any(c.isdigit() for c in candidate)):
        return False
    counts = Counter(candidate)
    entropy = -sum(n / len(candidate) * math.log2(n / len(candidate)) for n in counts.values())
    return entropy >= _AWS_SECRET_ENTROPY_BITS


def _aws_secrets(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in _AWS_SECRET.finditer(text) if _random_looking(m.group())]


def looks_secret(text: str) -> bool:
    """True when the text contains something shaped like an access token or secret key."""
    return any(p.search(text) for p in SECRET_PATTERNS) or bool(_aws_secrets(text))


def redact_text(text: str) -> str:
    """The text with every token-shaped substring replaced."""
    for start, end in reversed(_aws_secrets(text)):
        text = text[:start] + REDACTED + text[end:]
    for pattern in SECRET_PATTERNS:
        text = pattern.sub(REDACTED, text)
    return text


def redact(diagnostic: Diagnostic) -> Diagnostic:
    """A diagnostic with no token in its message, value, hint, key path or file name."""
    def clean(text: str | None) -> str | None:
        return None if text is None else redact_text(text)

    return evolve(diagnostic, message=redact_text(diagnostic.message), value=clean(diagnostic.value),
                  hint=clean(diagnostic.hint), key_path=clean(diagnostic.key_path), file=clean(diagnostic.file))



def _token_env(raw: dict[str, Any]) -> str:
    operations = raw.get("operations")
    name = operations.get("hf_token_env") if isinstance(operations, dict) else None
    return name if isinstance(name, str) and name.isidentifier() and not looks_secret(name) else DEFAULT_TOKEN_ENV


def secret_diagnostics(document: SpecDocument) -> list[Diagnostic]:
    """A DPC021 for every key or value that looks like a token (redacted)."""
    env = _token_env(document.raw)
    out = []
    for path, text, is_key in walk_strings(document.raw):
        if looks_secret(text):
            where = "a key" if is_key else "a value"
            out.append(redact(document.diagnostic(
                "DPC021", f"{where} looks like an access token; secrets must not be written in a spec", path,
                value=REDACTED, hint=f"remove it and export it as ${env} where deployc's output runs")))
    return out + [redact(d) for d in credential_diagnostics(document)]
