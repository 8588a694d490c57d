"""``platformctl preflight <stack>``: before ``pulumi up``, checks the stack's KMS auto-unseal key in
AWS (see :mod:`platformctl.aws_preflight`). Exit 0 when it is usable (warnings allowed) or the
stack has no auto-unseal, 1 on any failure, 2 when the stack or its spec cannot be read, or its Vault is
external (``vault-platform:externalVault``: no server of it is this stack's)."""

from __future__ import annotations

import argparse
import sys

from .aws_clients import client
from .aws_preflight import check_auto_unseal
from .stackfile import external_refusal, spec_or_report, stacks

NAME = "preflight"
HELP = "check in AWS that the stack's KMS auto-unseal key exists, is usable, and Vault's role may use it"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stack", help=f"stack name ({', '.join(stacks())})")


def run(args: argparse.Namespace) -> int:
    if (spec := spec_or_report(args.stack)) is None:
        return 2
    if spec.cluster is None:
        print(external_refusal(spec.stack, "its unseal is its operator's, and there is no auto-unseal key to "
                               "check"), file=sys.stderr)
        return 2
    unseal = spec.cluster.auto_unseal
    if unseal is None:
        print(f"{spec.stack}: no auto-unseal (Shamir unseal keys); nothing to check")
        return 0
    result = check_auto_unseal(spec.stack, unseal, client("kms", unseal.region))
    for finding in result.findings:
        print(f"{finding.level}: {finding.message}\n  fix: {finding.fix}", file=sys.stderr)
    if not result.ok:
        errors = sum(finding.level == "error" for finding in result.findings)
        print(f"{spec.stack}: preflight failed ({errors} error{'s' if errors > 1 else ''})", file=sys.stderr)
        return 1
    print(f"{spec.stack}: {result.key} ({result.key_arn}) is an enabled symmetric ENCRYPT_DECRYPT key "
          f"that {unseal.role_arn} may use"
          + (" (see warnings)" if result.findings else ""))
    return 0
