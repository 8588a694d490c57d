"""Fixtures shared across test modules."""

from __future__ import annotations

import pytest

from platformctl.engine import Declaration
from tests.support import STACKS, declare_stack


@pytest.fixture(scope="session")
def declared() -> dict[str, Declaration]:
    """What each committed stack declares once Vault is initialized, run once per test session."""
    return {stack: declare_stack(stack) for stack in STACKS}
