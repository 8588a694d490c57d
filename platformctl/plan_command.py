"""``platformctl plan <stack>``: what a stack declares, evaluated offline with Pulumi's mocks."""

from __future__ import annotations

import argparse
import sys

from .engine import declare
from .plan import plan_json, plan_text
from .stackfile import as_first_up, read_stack, stacks

NAME = "plan"
HELP = "print what a stack declares, evaluated offline by the real program with Pulumi's mock engine"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stack", help=f"stack name ({', '.join(stacks())})")
    parser.add_argument("--json", action="store_true", help="machine-readable output (secrets masked)")
    parser.add_argument("--cluster-only", action="store_true",
                        help="as on a new environment's first `up` (no Vault login, clusterOnly stated): "
                             "the cluster layer only")


def run(args: argparse.Namespace) -> int:
    try:
        stack = read_stack(args.stack)
        if args.cluster_only:
            stack = as_first_up(stack)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    declaration = declare(stack.stack, stack.config, stack.secret_keys)
    sys.stdout.write(plan_json(declaration) if args.json else plan_text(declaration, stack))
    if declaration.error:
        print(f"error: {declaration.error}", file=sys.stderr)
        return 1
    return 0
