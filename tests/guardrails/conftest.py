"""Fixtures of the guardrails tests: the committed stacks' tags."""

from __future__ import annotations

import pytest

from tests.support import STACKS, edited


@pytest.fixture(scope="session")
def tags() -> dict[str, dict[str, str]]:
    """Each committed stack's ``pulumi:tags``."""
    return {stack: dict(edited(stack).tags) for stack in STACKS}
