"""``platformctl access <stack>``: the effective access of every identity a stack declares, computed
offline (the program under Pulumi's mocks, then Vault's ACL rules on what it declares)."""

from __future__ import annotations

import argparse
import json
import sys

from platformctl.adapters.engine import declare_environment
from platformctl.adapters.stackfile import read_stack, stacks
from platformctl.core.access_graph import stack_graph
from platformctl.core.declaration import access_of
from vaultmodel.access import matrix_document, matrix_text

NAME = "access"
HELP = ("print who can reach what: each Kubernetes service account -> auth role -> policies -> paths and "
        "capabilities -> the KV secrets, database roles, transit keys and PKI roles it reaches")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stack", help=f"stack name ({', '.join(stacks())})")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--format", choices=("text", "json", "mermaid"), default="text",
                        help="text (for people, the default), json (for tools) or mermaid (a flowchart: "
                             "identity -> auth role -> policy -> what it reaches; GitHub draws it in a "
                             "```mermaid block)")
    output.add_argument("--json", dest="format", action="store_const", const="json", help="the same as --format json")


def run(args: argparse.Namespace) -> int:
    try:
        stack = read_stack(args.stack)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    declaration = declare_environment(stack.stack, stack.config, stack.secret_keys, stack.apps)
    if declaration.error:
        print(f"error: {declaration.error}", file=sys.stderr)
        return 1
    matrix = access_of(declaration)
    if args.format == "json":
        sys.stdout.write(json.dumps({"stack": stack.stack, **matrix_document(matrix)}, indent=2) + "\n")
    elif args.format == "mermaid":
        sys.stdout.write(stack_graph(matrix))
    else:
        sys.stdout.write(matrix_text(matrix, stack.stack))
    return 0
