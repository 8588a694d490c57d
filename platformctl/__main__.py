"""Command line: ``python -m platformctl plan <stack>`` (what a stack declares, offline)."""

from __future__ import annotations

import argparse
import sys

from .engine import declare
from .plan import plan_json, plan_text
from .stackfile import read_stack, stacks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="platformctl", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    plan = commands.add_parser("plan", help="print what a stack declares, evaluated offline with Pulumi's mocks")
    plan.add_argument("stack", help=f"stack name ({', '.join(stacks())})")
    plan.add_argument("--json", action="store_true", help="machine-readable output")
    plan.add_argument("--cluster-only", action="store_true",
                      help="as before Vault is initialized (no vault:token): the cluster layer only")
    args = parser.parse_args(argv)
    if args.command == "plan":
        try:
            stack = read_stack(args.stack, configured=not args.cluster_only)
        except FileNotFoundError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        declaration = declare(stack.stack, stack.config, stack.secret_keys)
        sys.stdout.write(plan_json(declaration) if args.json else plan_text(declaration, stack))
        return 1 if declaration.error else 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
