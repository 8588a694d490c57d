"""The explicit Vault provider a stack configures Vault through, and how it logs in."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_vault as vault

from environment import VaultAccess


def vault_provider(name: str, access: VaultAccess, opts: pulumi.ResourceOptions) -> vault.Provider:
    """The provider of the environment's stack and of each team's (they log in alike)."""
    return vault.Provider(name, address=access.address, ca_cert_file=access.ca_cert_file, **_login(access),
                          opts=opts)


def _login(access: VaultAccess) -> dict[str, Any]:
    """The provider's login settings: the stack's token (the bootstrap run, break-glass), or the CI job's.

    The provider logs in at its first Vault call (terraform-provider-vault v5.10.1,
    internal/provider/meta.go: ``GetClient`` -> ``setClient``), which comes after the Helm release,
    since every Vault resource waits for it. A GitHub OIDC token lives 5 minutes (Vault takes it 60 s
    past its ``exp``: hashicorp/cap jwt/jwt.go, the role's ``clock_skew_leeway`` of 0) and an upgrade of
    the release up to 15, so a job logs in before that, with
    ``platformctl vault-login``, and hands the provider the Vault token (the deploy role's lives an
    hour) in a file the provider reads (internal/provider/auth_token_file.go). Without such a file
    the provider logs in with the OIDC token itself (``TERRAFORM_VAULT_AUTH_JWT``,
    internal/provider/auth_jwt.go). Neither token passes through the program or the state."""
    if access.jwt_login is not None and access.jwt_login.token_file is not None:
        return {
            "auth_login_token_file": vault.ProviderAuthLoginTokenFileArgs(filename=access.jwt_login.token_file),
            "skip_child_token": True,
        }
    if access.jwt_login is not None:
        return {
            "auth_login_jwt": vault.ProviderAuthLoginJwtArgs(role=access.jwt_login.role, mount=access.jwt_login.mount),
            # The login token already lives only as long as the job; a child token would add nothing.
            "skip_child_token": True,
        }
    assert access.token_key is not None
    token_namespace, _, token_key = access.token_key.partition(":")
    return {
        "token": pulumi.Config(token_namespace).require_secret(token_key),
        # Each run works through a child token that expires with it: long enough to outlast a rolling
        # upgrade of the release (its timeout is 15 minutes) and the rest of the run.
        "skip_child_token": False,
        "max_lease_ttl_seconds": 3600,
    }
