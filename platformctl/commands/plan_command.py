"""``platformctl plan <stack>``: what a stack declares, evaluated offline with Pulumi's mocks."""

from __future__ import annotations

import argparse
import sys

from platformctl.adapters.engine import declare_environment
from platformctl.adapters.stackfile import StackFileError, as_first_up, read_stack, stack_spec, stacks
from platformctl.core.app_view import UnknownApp, app_text
from platformctl.core.outside import checklist, checklist_text, needs_of
from platformctl.core.plan import plan_json, plan_text

NAME = "plan"
HELP = "print what a stack declares, evaluated offline by the real program with Pulumi's mock engine"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stack", help=f"stack name ({', '.join(stacks())})")
    parser.add_argument("--json", action="store_true", help="machine-readable output (secrets masked)")
    parser.add_argument("--cluster-only", action="store_true",
                        help="as on a new environment's first `up` (no Vault login, clusterOnly stated): "
                             "the cluster layer only")
    parser.add_argument("--app", metavar="NAME",
                        help="one application only: its identity, policies, reach and injector annotations")


def run(args: argparse.Namespace) -> int:
    try:
        stack = read_stack(args.stack)
        if args.cluster_only:
            stack = as_first_up(stack)
    except (FileNotFoundError, StackFileError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    declaration = declare_environment(stack.stack, stack.config, stack.secret_keys, stack.apps)
    if args.app and declaration.error is None:
        try:
            sys.stdout.write(app_text(declaration, args.app))
        except UnknownApp as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        return 0
    if args.json:
        sys.stdout.write(plan_json(declaration))
    else:
        sys.stdout.write(plan_text(declaration, stack))
        if declaration.error is None:
            # What `pulumi up` cannot do, last: where a person reading the terminal looks first.
            needs = checklist(needs_of(stack, stack_spec(stack)))
            sys.stdout.write("\n" + "\n".join(checklist_text(needs)) + "\n")
    if declaration.error:
        print(f"error: {declaration.error}", file=sys.stderr)
        return 1
    return 0
