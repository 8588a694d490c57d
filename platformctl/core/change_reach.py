"""Which of an environment's team stacks a change can change, so that a pull request previews those and
no other (``platformctl team-stacks --changed-since``). Pure: paths and plan fingerprints in, teams out.

- A team's application files (``apps/<team>/<file>``) change that team's stack.
- The program's code changes the stacks whose offline plan it changes: the plans of the branch and of
  its base, each by its own code, tell which (:func:`platformctl.core.plan.fingerprint`).
- A file no stack reads changes none.
- Any other file may change every stack, as the offline plan cannot see its effect: the stack file
  (every team's stack is a copy of it, secrets included), the requirements and ``Pulumi.yaml`` (the
  providers), the guardrails pack, the workflows (the CLI's version), ``platformctl`` (the plan
  itself), and whatever is added to the repository later."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from environment import stack_parts
from environment.apps import APPS_DIR

PROGRAM = ("__main__.py", "components/", "environment/", "render/", "vaultmodel/", "policies/acl/")
"""The program's code, all of which the offline plan runs as the CLI would (the application files and
the stack file aside): ``tests/test_team_stacks.py`` checks that every module the program imports is
here."""
READ_BY_NO_STACK = ("docs/", "tests/", "benchmarks/", "schema/", "README.md", "mkdocs.yml",
                    ".github/CODEOWNERS")
"""What neither the program, the CLI nor the guardrails pack reads."""


def changed_teams(changed: Iterable[str], plan_changes: Callable[[], Iterable[str] | None],
                  environment: str) -> set[str] | None:
    """The teams of ``environment`` whose stacks the files ``changed`` (paths from the repository's root)
    can change; ``None`` for every team. ``plan_changes`` is called only when the program's code is
    among them: the stacks whose plan it changes (:func:`stacks_whose_plan_changed`), or ``None`` when
    that cannot be told (a base's plan without fingerprints): every team."""
    teams: set[str] = set()
    program = False
    for path in changed:
        parts = path.split("/")
        if len(parts) == 3 and parts[0] == APPS_DIR:
            teams.add(parts[1])
        elif path.startswith(PROGRAM):
            program = True
        elif not path.startswith(READ_BY_NO_STACK):
            return None
    if program:
        stacks = plan_changes()
        if stacks is None:
            return None
        teams |= {team for named, team in map(stack_parts, stacks) if team is not None and named == environment}
    return teams


def stacks_whose_plan_changed(base: Mapping[str, str], head: Mapping[str, str]) -> set[str]:
    """The stacks whose fingerprint differs between the base's plan and the branch's: a stack only one
    side declares is one of them."""
    return {stack for stack in base.keys() | head.keys() if base.get(stack) != head.get(stack)}

