"""Who approves a change to a file: ``.github/CODEOWNERS``, read as GitHub reads it (GitHub's docs,
"About code owners"): each line a pattern and its owners, the last matching line wins, and one
approval from any owner it lists satisfies "Require review from Code Owners". GitHub takes the file
from the pull request's base branch, so a pull request cannot choose its own approvers.

Patterns follow the subset of gitignore's rules this repository uses: ``*`` alone (everything),
``/dir/`` (everything under a directory of the root), a path anchored by a leading or inner ``/``,
``*`` within a segment and ``**`` across segments; a pattern matching a directory matches what is
under it. Pure: text in, owners out."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from environment.apps import APPS_DIR

CODEOWNERS = Path(".github") / "CODEOWNERS"
"""Where the file is, in the repository."""
PLATFORM_TEAM = "@vault-platform/platform-team"
"""The team that owns the whole repository and approves every team's applications too."""


@dataclass(frozen=True)
class Rule:
    """One line of the file."""

    pattern: str
    """As written."""
    owners: tuple[str, ...]
    """Its owners, in order."""
    matches: re.Pattern[str]
    """Matches the paths (relative, ``/``-separated) the pattern covers."""


class CodeownersError(ValueError):
    """A line this reader does not understand (GitHub ignores such a line: nobody would own its paths)."""


def parse(text: str) -> tuple[Rule, ...]:
    """The rules of a CODEOWNERS file, in order."""
    rules = []
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        pattern, owners = words[0], tuple(words[1:])
        if pattern.startswith("!") or "[" in pattern or "\\" in pattern:
            raise CodeownersError(f"{CODEOWNERS}, line {number}: {pattern!r} uses a pattern syntax GitHub does not "
                                  "support in CODEOWNERS (negation, ranges, escapes)")
        rules.append(Rule(pattern, owners, _regex(pattern)))
    return tuple(rules)


def _regex(pattern: str) -> re.Pattern[str]:
    directory = pattern.endswith("/")
    body = pattern.strip("/")
    anchored = pattern.startswith("/") or "/" in body
    regex = ""
    for part in re.split(r"(\*\*/|/\*\*|\*\*|\*|\?)", body):
        regex += {"**/": "(?:.*/)?", "/**": "/.*", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(part, re.escape(part))
    last = body.rsplit("/", 1)[-1]
    # A directory pattern covers what is under it; so does a plain name, which may be a directory;
    # a wildcard in the last segment (docs/*) covers that level only.
    under = "/.*" if directory else "" if "*" in last and body != "*" else "(?:/.*)?"
    return re.compile(("" if anchored else "(?:.*/)?") + regex + under)


def owners_of(rules: Iterable[Rule], path: str) -> tuple[str, ...]:
    """The owners of ``path``: those of the last rule matching it (none when no rule does)."""
    found: tuple[str, ...] = ()
    for rule in rules:
        if rule.matches.fullmatch(path):
            found = rule.owners
    return found


def team_of(team: str) -> str:
    """The GitHub team an application folder's name stands for: ``payments`` -> ``@vault-platform/payments``."""
    return f"{PLATFORM_TEAM.split('/', 1)[0]}/{team}"


def unowned_team_folders(rules: Iterable[Rule], teams: Iterable[str]) -> list[str]:
    """Each team folder (``apps/<team>/``) whose files are not owned by exactly its team and the
    platform team, with what owns them instead."""
    rules = tuple(rules)
    problems = []
    for team in sorted(set(teams)):
        owners = owners_of(rules, f"{APPS_DIR}/{team}/{team}.yaml")
        if set(owners) != {team_of(team), PLATFORM_TEAM} or len(owners) != 2:
            problems.append(f"{APPS_DIR}/{team}/ is owned by {' '.join(owners) or 'nobody'}: add the line "
                            f"'/{APPS_DIR}/{team}/ {team_of(team)} {PLATFORM_TEAM}' to {CODEOWNERS}")
    return problems
