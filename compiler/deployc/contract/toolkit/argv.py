"""An engine command line built flag by flag, each flag with the reason EXPLAIN.md and the scripts give."""

from __future__ import annotations

from deployc.contract.backend import FlagReason
from deployc.contract.deployment import Deployment, Pool
from deployc.contract.toolkit import Word
from deployc.contract.toolkit.shell import ArgGroup


def first_sentence(text: str, limit: int = 160, mark: str = "…") -> str:
    """The first sentence of a reason, for a script comment (longer than ``limit``: cut, ending in ``mark``)."""
    cut = text.split(". ", maxsplit=1)[0].split("; ", maxsplit=1)[0].strip().rstrip(".")
    return cut if len(cut) <= limit else cut[: limit - len(mark)].rstrip() + mark


class FlagBuilder:
    """The argv of one server, grouped one flag per line, and why each flag is there.

    A flag's reason is the planner's Decision when the flag carries one (``decision_ids``, looked up in the
    pool: the first found), else the backend's own ``fallback`` sentence. A group whose first word is not a
    flag (a positional model argument) is recorded as the flag ``model``, unless ``positional_flags`` is
    False (then only flags are recorded).  ``tool`` prefixes each recorded flag's name (``trtllm-build
    --max_batch_size``) when one backend writes several programs' command lines; ``clip_mark`` ends a
    script comment cut at 160 characters.
    """

    def __init__(self, deployment: Deployment, pool: Pool, *, tool: str = "", positional_flags: bool = True,
                 clip_mark: str = "…") -> None:
        self.deployment, self.pool = deployment, pool
        self.tool, self.positional_flags, self.clip_mark = tool, positional_flags, clip_mark
        self.argv: list[Word] = []
        self.groups: list[ArgGroup] = []
        self.flags: list[FlagReason] = []

    def add(self, words: tuple[Word, ...], fallback: str, *decision_ids: str, note: str = "") -> None:
        """Append one flag (or positional argument) with its reason."""
        decision = self.pool.decision(*decision_ids) if decision_ids else None
        reason = (decision.reason if decision else fallback) + (f" ({note})" if note else "")
        self.argv += words
        self.groups.append(ArgGroup(words=words, why=first_sentence(reason, mark=self.clip_mark)))
        flag = words[0] if isinstance(words[0], str) and words[0].startswith("-") else "model"
        if flag == "model" and not self.positional_flags:
            return
        value = " ".join(w if isinstance(w, str) else f"${w.name}" for w in words[1:]) if flag != "model" \
            else str(words[0])
        self.flags.append(FlagReason(flag=f"{self.tool} {flag}" if self.tool else flag, value=value or None,
                                     reason=reason, decision=decision.id if decision else None))
