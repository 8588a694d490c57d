"""Who logs in besides the applications: GitHub Actions jobs through a JWT auth method
(``sys/auth/github-actions``, roles at ``auth/github-actions/role/:name``) and people through an OIDC
auth method (``sys/auth/oidc``) whose groups claim maps to Vault identity groups
(``identity/group``, ``identity/group-alias``)."""

from __future__ import annotations

from collections.abc import Callable

import pulumi
import pulumi_vault as vault

from components.options import children_of
from environment import GithubActions, PeopleOidc
from render.identity import bound_claims

PEOPLE_ROLE = "people"
"""The OIDC method's only role, and its default: ``vault login -method=oidc`` needs no role name."""


class GithubActionsAuth(pulumi.ComponentResource):
    """A job logs in with the OIDC token GitHub issues it; each role admits exactly this repository's
    jobs in one GitHub Environment (and, to deploy, only for ``main``), and its token dies with the job."""

    path: pulumi.Output[str | None]
    """Mount path of the JWT auth method."""

    def __init__(self, name: str, github: GithubActions, keeps: Callable[[str], bool],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        """``github`` is the stack's ``githubActions`` section; ``keeps`` tells whether the auth method at
        a Vault path (``sys/auth/github-actions``) is protected from deletion (``EnvironmentSpec.keeps``)."""
        super().__init__("vault-platform:auth:GithubActionsAuth", name, None, opts)
        child = children_of(self, opts)
        backend = vault.jwt.AuthBackend(
            f"{name}-backend",
            path=github.path,
            type="jwt",
            description="GitHub Actions jobs log in with their OIDC token.",
            # Vault fetches the signing keys through discovery, and accepts no other issuer.
            oidc_discovery_url=github.issuer,
            oidc_discovery_ca_pem=github.issuer_ca_pem,
            bound_issuer=github.issuer,
            opts=child.merge(pulumi.ResourceOptions(protect=keeps(f"sys/auth/{github.path}"))),
        )
        for role in github.roles:
            vault.jwt.AuthBackendRole(
                f"{name}-{role.name}",
                backend=backend.path,
                role_name=role.name,
                role_type="jwt",
                bound_audiences=[github.audience],
                bound_claims_type="string",
                bound_claims=bound_claims(github, role),
                user_claim="sub",
                token_policies=list(role.policies),
                token_ttl=role.token_ttl,
                token_max_ttl=role.token_ttl,
                # A hard limit: no renewal takes the token past the job.
                token_explicit_max_ttl=role.token_ttl,
                token_type="service",
                opts=child,
            )
        self.path = backend.path
        self.register_outputs({"path": self.path})


class PeopleAuth(pulumi.ComponentResource):
    """People log in with the company's identity provider; what they may do comes only from the
    groups the provider says they are in, each an external Vault identity group with its policies."""

    path: pulumi.Output[str | None]
    """Mount path of the OIDC auth method."""

    def __init__(self, name: str, people: PeopleOidc, keeps: Callable[[str], bool],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        """``people`` is the stack's ``oidc`` section; ``keeps`` tells whether the auth method at a Vault
        path (``sys/auth/oidc``) is protected from deletion (``EnvironmentSpec.keeps``)."""
        super().__init__("vault-platform:auth:PeopleAuth", name, None, opts)
        child = children_of(self, opts)
        backend = vault.jwt.AuthBackend(
            f"{name}-backend",
            path=people.path,
            type="oidc",
            description="People log in with the company's identity provider.",
            # Vault checks the token's issuer against the discovered one.
            oidc_discovery_url=people.discovery_url,
            oidc_discovery_ca_pem=people.discovery_ca_pem,
            oidc_client_id=people.client_id,
            oidc_client_secret=pulumi.Config().require_secret(people.client_secret_key),
            default_role=PEOPLE_ROLE,
            opts=child.merge(pulumi.ResourceOptions(protect=keeps(f"sys/auth/{people.path}"))),
        )
        vault.jwt.AuthBackendRole(
            f"{name}-role",
            backend=backend.path,
            role_name=PEOPLE_ROLE,
            role_type="oidc",
            bound_audiences=[people.client_id],
            allowed_redirect_uris=list(people.allowed_redirect_uris),
            oidc_scopes=list(people.scopes),
            user_claim=people.user_claim,
            groups_claim=people.groups_claim,
            # No policy of its own: a person gets exactly what their groups carry.
            token_policies=[],
            token_ttl=people.token_ttl,
            token_max_ttl=people.token_max_ttl,
            token_type="service",
            opts=child,
        )
        for group in people.groups:
            identity_group = vault.identity.Group(
                f"{name}-group-{group.name}",
                name=group.name,
                type="external",
                policies=list(group.policies),
                metadata={"source": f"{people.groups_claim} claim of auth/{people.path}"},
                opts=child,
            )
            # Vault puts a person in the group at login when the groups claim names it.
            vault.identity.GroupAlias(
                f"{name}-alias-{group.name}",
                name=group.name,
                mount_accessor=backend.accessor,
                canonical_id=identity_group.id,
                opts=child,
            )
        self.path = backend.path
        self.register_outputs({"path": self.path})
