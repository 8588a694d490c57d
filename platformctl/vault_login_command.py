"""``platformctl vault-login <stack>``: in a CI job, exchanges the job's GitHub OIDC token (the
``TERRAFORM_VAULT_AUTH_JWT`` the workflow exported, as for the Vault provider) for a Vault token at
the stack's GitHub Actions login (``POST auth/<path>/login`` with the role the job names in
``VAULT_PLATFORM_CI_ROLE``), and prints it, for the steps that talk to Vault outside Pulumi
(``platformctl rollout``). The token lives as long as the role allows (the job's timeout).

Exit 0 with the token on standard output; 1 when Vault refuses the login; 2 when the stack, its login
or the OIDC token is missing."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass

import hvac  # type: ignore[import-untyped]
from hvac.exceptions import VaultError  # type: ignore[import-untyped]
from requests.exceptions import RequestException

from components.environment import CI_ROLE_VARIABLE, EnvironmentSpec, project_file

from .stackfile import spec_or_report, stacks

NAME = "vault-login"
HELP = "print a Vault token for this CI job, logged in with its GitHub OIDC token at the stack's JWT role"
JWT_VARIABLE = "TERRAFORM_VAULT_AUTH_JWT"
"""Where the workflow puts the job's OIDC token; the Vault provider reads it from there too."""


@dataclass(frozen=True)
class JwtLoginRequest:
    """What to send to Vault: ``POST <address>/v1/auth/<mount>/login`` with ``role`` and the JWT."""

    address: str
    """Vault's address (``vault:address``)."""
    ca_cert_file: str | None
    """The stack's CA file that verifies Vault's certificate (``vault:caCertFile``, resolved from the
    project's root as the provider resolves it), or ``None`` for the system's trust store."""
    mount: str
    """Mount path of the JWT auth method."""
    role: str
    """The role the job logs in with."""


def login_request(spec: EnvironmentSpec) -> JwtLoginRequest | str:
    """The login request for ``spec``, or why there is none (a stack that logs in with a token, or
    declares only the cluster)."""
    access = spec.vault
    if access is None or access.jwt_login is None:
        return (f"stack {spec.stack!r} has no GitHub Actions login (vault-platform:githubActions with "
                "vault:address, and no vault:token)")
    ca_cert_file = str(project_file(access.ca_cert_file)) if access.ca_cert_file is not None else None
    return JwtLoginRequest(address=access.address.rstrip("/"), ca_cert_file=ca_cert_file,
                           mount=access.jwt_login.mount, role=access.jwt_login.role)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stack", help=f"stack name ({', '.join(stacks())})")


def run(args: argparse.Namespace) -> int:
    jwt = os.environ.get(JWT_VARIABLE, "")
    spec = spec_or_report(args.stack, ci_role=os.environ.get(CI_ROLE_VARIABLE))
    if spec is None:
        return 2
    request = login_request(spec)
    if isinstance(request, str):
        print(f"error: {request}", file=sys.stderr)
        return 2
    if not jwt:
        print(f"error: {JWT_VARIABLE} is not set: request the job's OIDC token first (core.getIDToken with "
              "the stack's audience, `platformctl oidc-audience <stack>`)", file=sys.stderr)
        return 2
    client = hvac.Client(url=request.address, verify=request.ca_cert_file or True)
    try:
        response = client.auth.jwt.jwt_login(role=request.role, jwt=jwt, use_token=False, path=request.mount)
    except (VaultError, RequestException) as error:
        print(f"error: {spec.stack}: Vault refused the login at auth/{request.mount}/login as role "
              f"{request.role!r}: {error}", file=sys.stderr)
        return 1
    print(response["auth"]["client_token"])
    return 0
