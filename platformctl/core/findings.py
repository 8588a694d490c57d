"""A problem ``platformctl preflight`` found: with the auto-unseal key (:mod:`platformctl.adapters.aws_preflight`)
or with what Vault reaches (:mod:`platformctl.core.reach`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Finding:
    """One problem found."""

    level: Literal["error", "warning"]
    """``error`` fails the preflight; ``warning`` is printed and does not."""
    message: str
    """Which stack, which key, what is wrong."""
    fix: str
    """How to fix it."""
