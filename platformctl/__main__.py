"""platformctl: the project's offline tools. ``python -m platformctl <command> --help``."""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Callable

from .commands import (
    access_command,
    audience_command,
    bootstrap_command,
    db_setup_command,
    diff_command,
    move_to_team_stacks_command,
    new_app_command,
    plan_command,
    preflight_command,
    resume_command,
    rollout_command,
    schema_command,
    snapshots_command,
    team_stacks_command,
    vault_login_command,
)

# Each command module has ``NAME``, ``HELP``, ``configure(parser)`` and ``run(args) -> exit code``.
COMMANDS = [plan_command, diff_command, access_command, new_app_command, preflight_command, bootstrap_command,
            rollout_command, snapshots_command, db_setup_command, audience_command, vault_login_command,
            team_stacks_command, move_to_team_stacks_command, resume_command, schema_command]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="platformctl", description=__doc__)
    subcommands = parser.add_subparsers(dest="command", required=True)
    runners: dict[str, Callable[[argparse.Namespace], int]] = {}
    for command in COMMANDS:
        command.configure(subcommands.add_parser(command.NAME, help=command.HELP, description=command.HELP))
        runners[command.NAME] = command.run
    args = parser.parse_args(argv)
    return runners[args.command](args)


def collect_for_a_short_run() -> None:
    """Tunes Python's cyclic garbage collector for a process that runs one command and exits.

    The Pulumi SDK allocates many short-lived objects per resource; with the default thresholds the
    collector took about 40% of a large plan, and its full collections grow faster than linearly
    with the stack. What import allocated is frozen (never scanned again) and young collections are
    500 times rarer, yet a long command (rollout) still collects. On a 1,000-app plan this halves the
    CPU time for a few percent more peak memory (README, "Scaling"; benchmarks/apps_scaling.py).
    """
    gc.freeze()
    gc.set_threshold(500_000, 100, 1000)


if __name__ == "__main__":
    collect_for_a_short_run()
    sys.exit(main())
