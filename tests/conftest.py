"""Fixtures shared across test modules."""

from __future__ import annotations

import pytest

from platformctl.__main__ import collect_for_a_short_run
from platformctl.core.declaration import Declaration
from tests.support import ANY_STACK, STACKS, any_stack, declare_config, declare_stack


def pytest_collection_finish(session: pytest.Session) -> None:
    """The session runs the program under the mock engine about a hundred times, on top of every module
    the tests import: the CLI's collector tuning (what is loaded by now is never scanned again, young
    collections much rarer) takes about a third off the suite's CPU time, as it does for a long plan."""
    collect_for_a_short_run()


@pytest.fixture(scope="session")
def declared() -> dict[str, Declaration]:
    """What each test stack (``tests/stacks/``) declares once Vault is initialized, run once per test
    session: exact shapes are asserted on these."""
    return {stack: declare_stack(stack) for stack in STACKS}


@pytest.fixture(scope="session")
def any_declared() -> dict[str, Declaration]:
    """What each committed stack, and each with an application onboarded, declares once Vault is
    initialized: only properties that hold for any valid stack are asserted on these."""
    return {name: declare_config(any_stack(name)) for name in ANY_STACK}
