"""platformctl: the project's offline tools. ``python -m platformctl <command> --help``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from . import bootstrap_command, diff_command, plan_command, preflight_command

# Each command module has ``NAME``, ``HELP``, ``configure(parser)`` and ``run(args) -> exit code``.
COMMANDS = [plan_command, diff_command, preflight_command, bootstrap_command]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="platformctl", description=__doc__)
    subcommands = parser.add_subparsers(dest="command", required=True)
    runners: dict[str, Callable[[argparse.Namespace], int]] = {}
    for command in COMMANDS:
        command.configure(subcommands.add_parser(command.NAME, help=command.HELP, description=command.HELP))
        runners[command.NAME] = command.run
    args = parser.parse_args(argv)
    return runners[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
