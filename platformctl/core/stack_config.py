"""One stack's config as the program receives it (:mod:`platformctl.adapters.stackfile` reads it from the stack
file): the value the plan, the diff and the outside checklist are computed from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from environment.apps import Apps


@dataclass(frozen=True)
class StackConfig:
    """One stack's config, ready for :func:`platformctl.adapters.engine.declare`."""

    stack: str
    """Stack name."""
    config: Mapping[str, Any]
    """Full key -> value."""
    secret_keys: frozenset[str]
    """Keys that hold secrets."""
    placeholders: tuple[str, ...]
    """Keys whose value is a placeholder, not the stack's real secret."""
    tags: Mapping[str, str]
    """The stack's ``pulumi:tags``."""
    stored_secrets: frozenset[str] = frozenset()
    """Keys the stack file holds as encrypted (``secure:``) values, i.e. set with ``pulumi config set
    --secret``; a referenced secret missing here exists only where someone set it by hand, or not at all."""
    apps: Apps = field(kw_only=True)
    """The project's application files (``apps/``), which the program reads beside the config."""
