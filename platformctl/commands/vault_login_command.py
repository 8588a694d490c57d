"""``platformctl vault-login <stack>``: in a CI job, exchanges the job's GitHub OIDC token (the
``TERRAFORM_VAULT_AUTH_JWT`` the workflow exported) for a Vault token at the stack's GitHub Actions
login (``POST auth/<path>/login`` with the role the job names in ``VAULT_PLATFORM_CI_ROLE``), and
prints it. The job writes it to the file ``TERRAFORM_VAULT_TOKEN_FILENAME`` names, which the Vault
provider (``pulumi preview``, ``up``) and ``platformctl rollout`` read: the OIDC token lives minutes,
the Vault token as long as the role allows (the job's timeout).

``--revoke``, the job's last step, revokes that token (``POST auth/token/revoke-self``, which Vault's
default policy grants), so that it dies with the job.

Exit 0 with the token on standard output (or revoked, or none to revoke); 1 when Vault refuses the
login or the revocation; 2 when the stack, its login or the OIDC token is missing."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import hvac  # type: ignore[import-untyped]
from hvac.exceptions import VaultError  # type: ignore[import-untyped]
from requests.exceptions import RequestException

from environment import CI_ROLE_VARIABLE, EnvironmentSpec, project_file
from environment.vault_access import TOKEN_FILE_VARIABLE
from platformctl.adapters.stackfile import spec_or_report, stacks

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
    parser.add_argument("--revoke", action="store_true",
                        help=f"revoke the token in the file {TOKEN_FILE_VARIABLE} names (the job's last step)")


def run(args: argparse.Namespace) -> int:
    jwt = os.environ.get(JWT_VARIABLE, "")
    spec = spec_or_report(args.stack, ci_role=os.environ.get(CI_ROLE_VARIABLE))
    if spec is None:
        return 2
    request = login_request(spec)
    if isinstance(request, str):
        print(f"error: {request}", file=sys.stderr)
        return 2
    if args.revoke:
        return _revoke(spec.stack, request, os.environ.get(TOKEN_FILE_VARIABLE, ""))
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


def _revoke(stack: str, request: JwtLoginRequest, token_file: str) -> int:
    """Revokes the job's token; none (the login step failed, or this job logged in with no file) is fine."""
    token = Path(token_file).read_text().strip() if token_file and Path(token_file).is_file() else ""
    if not token:
        print(f"{stack}: no Vault token to revoke ({TOKEN_FILE_VARIABLE} names no file holding one)", file=sys.stderr)
        return 0
    client = hvac.Client(url=request.address, token=token, verify=request.ca_cert_file or True)
    try:
        client.auth.token.revoke_self()
    except (VaultError, RequestException) as error:
        print(f"error: {stack}: Vault refused to revoke the job's token (auth/token/revoke-self): {error}",
              file=sys.stderr)
        return 1
    print(f"{stack}: the job's Vault token is revoked", file=sys.stderr)
    return 0
