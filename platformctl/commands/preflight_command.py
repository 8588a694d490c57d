"""``platformctl preflight <stack>``: before ``pulumi up``, checks the stack's KMS auto-unseal key in
AWS (see :mod:`platformctl.adapters.aws_preflight`), and, from inside the cluster where the kubeconfig
reaches it, that Vault reaches the issuers of its JWT/OIDC logins (see :mod:`platformctl.core.reach`).
Exit 0 when all is usable (warnings allowed: no auto-unseal, no cluster access, no server running
yet), 1 on any failure, 2 when the stack or its spec cannot be read, or its Vault is external
(``vault-platform:externalVault``: no server of it is this stack's)."""

from __future__ import annotations

import argparse
import sys

from environment import EnvironmentSpec
from platformctl.adapters.aws_clients import client
from platformctl.adapters.aws_preflight import check_auto_unseal
from platformctl.adapters.reach_io import pod_exec, server_pods
from platformctl.adapters.rollout_io import ApiException, ConfigException, kubernetes_api
from platformctl.adapters.stackfile import external_refusal, spec_or_report, stacks
from platformctl.core.findings import Finding
from platformctl.core.reach import check_reach, issuers

NAME = "preflight"
HELP = ("check in AWS that the stack's KMS auto-unseal key exists, is usable, and Vault's role may use it; "
        "and, from a Vault server pod, that Vault reaches its logins' issuers")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stack", help=f"stack name ({', '.join(stacks())})")


def run(args: argparse.Namespace) -> int:
    if (spec := spec_or_report(args.stack)) is None:
        return 2
    if spec.cluster is None:
        print(external_refusal(spec.stack, "its unseal is its operator's, and there is no auto-unseal key to "
                               "check"), file=sys.stderr)
        return 2
    failed = False
    unseal = spec.cluster.auto_unseal
    if unseal is None:
        print(f"{spec.stack}: no auto-unseal (Shamir unseal keys); nothing to check")
    else:
        result = check_auto_unseal(spec.stack, unseal, client("kms", unseal.region))
        report(result.findings)
        if result.ok:
            print(f"{spec.stack}: {result.key} ({result.key_arn}) is an enabled symmetric ENCRYPT_DECRYPT key "
                  f"that {unseal.role_arn} may use" + (" (see warnings)" if result.findings else ""))
        else:
            errors = sum(finding.level == "error" for finding in result.findings)
            print(f"{spec.stack}: preflight failed ({errors} error{'s' if errors > 1 else ''})", file=sys.stderr)
            failed = True
    problems, reached = reach_findings(spec)
    report(problems)
    for line in reached:
        print(line)
    return 1 if failed or any(finding.level == "error" for finding in problems) else 0


def report(findings: tuple[Finding, ...]) -> None:
    for finding in findings:
        print(f"{finding.level}: {finding.message}\n  fix: {finding.fix}", file=sys.stderr)


def reach_findings(spec: EnvironmentSpec) -> tuple[tuple[Finding, ...], tuple[str, ...]]:
    """:func:`platformctl.core.reach.check_reach` through the kubeconfig's cluster; without access to it,
    one warning: the check is then the deploy's, not this machine's."""
    if not issuers(spec):
        return (), ()
    try:
        api = kubernetes_api()
        return check_reach(spec, server_pods(api, spec), pod_exec(api, spec.deployed.namespace))
    except (ConfigException, ApiException, OSError) as error:
        reason = f"{error.status} {error.reason}" if isinstance(error, ApiException) else (
            str(error) or type(error).__name__)
        return (Finding("warning", f"{spec.stack}: whether Vault reaches its logins' issuers is not checked: no "
                        f"access to the cluster's server pods ({reason.strip()})",
                        "run the preflight with a kubeconfig for the stack's cluster that may list and exec into "
                        f"pods in namespace {spec.deployed.namespace}"),), ()
