"""``platformctl oidc-audience <stack>``: the audience a workflow requests its GitHub OIDC token for,
read from the stack's ``githubActions`` config, so that the workflows and the Vault roles cannot
disagree. Exit 0 with the audience on standard output, 2 when the stack, its spec or the section is
missing."""

from __future__ import annotations

import argparse
import sys

from platformctl.adapters.stackfile import spec_or_report, stacks

NAME = "oidc-audience"
HELP = "print the audience of the stack's GitHub Actions login (what a workflow requests its OIDC token for)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stack", help=f"stack name ({', '.join(stacks())})")


def run(args: argparse.Namespace) -> int:
    spec = spec_or_report(args.stack)
    if spec is None:
        return 2
    if spec.github_actions is None:
        print(f"error: stack {spec.stack!r} declares no vault-platform:githubActions login", file=sys.stderr)
        return 2
    print(spec.github_actions.audience)
    return 0
