"""Fixtures of the guardrails tests: the committed stacks' tags, and what each declares before Vault
is configured."""

from __future__ import annotations

import pytest

from platformctl.core.declaration import Declaration
from tests.support import STACKS, declare_stack, edited


@pytest.fixture(scope="session")
def tags() -> dict[str, dict[str, str]]:
    """Each committed stack's ``pulumi:tags``."""
    return {stack: dict(edited(stack).tags) for stack in STACKS}


@pytest.fixture(scope="session")
def cluster_only() -> dict[str, Declaration]:
    """What each committed stack declares on its first ``pulumi up``: no Vault login yet and
    ``clusterOnly`` stated, so the cluster only."""
    return {stack: declare_stack(stack, configured=False) for stack in STACKS}
