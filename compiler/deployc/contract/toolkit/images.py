"""What artifact headers say about the container image (the reference itself is :attr:`Deployment.image`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from deployc.contract.deployment import Deployment


def pinned_tag_note(deployment: Deployment, checked: str, otherwise: str) -> str | None:
    """Said in artifact headers when the spec pins an image tag other than the one the backend checked against.

    ``checked`` says what was checked against the pinned version (``every flag here was checked against vLLM
    0.33.0's flag set``); ``otherwise`` what to do if the pinned tag is another version.
    """
    tag = deployment.image.tag_override
    if tag is None:
        return None
    return (f"The spec pins image tag {tag!r}; {checked} (image tag {deployment.backend.image_tag}). "
            f"If {tag!r} is {otherwise}.")
