"""One team's applications, declared by a stack of their own (``<environment>.<team>``): each
application's policy (``sys/policies/acl/:name``) and role (``auth/<path>/role/:name``), and the
KV secrets and database roles its file declares, on the mounts the environment's stack declares."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pulumi
import pulumi_vault as vault

from components.database import dynamic_role
from components.kubernetes_auth import app_role
from components.kv import static_secret
from components.options import children_of, known_as
from components.platform import moved_from_platform
from components.vault_provider import vault_provider
from environment import PROJECT, App, Database, Kv, PolicyDocument, VaultAccess


@dataclass(frozen=True)
class TeamAppsArgs:
    """What :class:`TeamApps` declares."""

    apps: tuple[App, ...]
    """The team's applications (``EnvironmentSpec.declared_apps`` of the team's stack)."""
    app_policies: Mapping[str, PolicyDocument]
    """Each application's generated policy (``render.acl.app_policy``), by application name."""
    vault: VaultAccess | None
    """How the stack reaches Vault; ``None`` in a stack stating clusterOnly, which configures no Vault yet."""
    kubernetes_auth_path: str
    """Mount path of the Kubernetes auth method the environment's stack declares (the roles go there)."""
    kv: Kv
    """The environment's KV section: its mount, and the secrets the applications' files declare."""
    database: Database | None
    """The environment's database section (its mount, the roles the files declare), or ``None``."""
    declares: Callable[[str | None], bool]
    """Whether this stack declares the secrets and database roles of an application
    (``EnvironmentSpec.declares``)."""


class TeamApps(pulumi.ComponentResource):
    """What one team's application files declare in one environment. The environment's stack runs
    first (the workflows run it before the teams'), so the mounts, the auth method and the
    ``vault-iac`` grants these calls need are in Vault already; a team's stack never changes them.

    Each resource (``<name>-<kind>-<object>``) keeps two former identities: its name in a team's stack
    before each kind of object got a name of its own (``<name>-<object>``), and where
    ``platformctl move-to-team-stacks`` leaves what the environment's stack declared before it stated
    teamStacks (:func:`components.platform.moved_from_platform`)."""

    def __init__(self, name: str, args: TeamAppsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vault-platform:apps:TeamApps", name, None, opts)

        def formerly(kind: str, object_name: str) -> list[pulumi.Alias]:
            return [pulumi.Alias(name=f"{name}-{object_name}"), moved_from_platform(kind, object_name)]

        if args.vault is not None:  # a stack stating clusterOnly configures no Vault yet
            provider = vault_provider(f"{name}-vault", args.vault, known_as(
                [moved_from_platform(None, "vault")], children_of(self, opts)))
            on_vault = pulumi.ResourceOptions(parent=self, providers={"vault": provider})
            for app in args.apps:
                document = args.app_policies[app.name]
                policy = vault.Policy(f"{name}-policies-{document.name}", name=document.name, policy=document.hcl,
                                      opts=known_as(formerly("policies", document.name), on_vault))
                # A new role's login works from its first use: its policy is in Vault before it.
                after_policy = on_vault.merge(pulumi.ResourceOptions(depends_on=[policy]))
                app_role(f"{name}-kubernetes-auth-{app.name}", args.kubernetes_auth_path, app,
                         known_as(formerly("kubernetes-auth", app.name), after_policy))
            config = pulumi.Config(PROJECT)
            for secret in args.kv.secrets:
                if args.declares(secret.owner):
                    static_secret(f"{name}-kv-{secret.name}", args.kv.mount, secret, args.kv, config, on_vault,
                                  formerly=formerly("kv", secret.name))
            if args.database is not None:
                for role in args.database.roles:
                    if args.declares(role.owner):
                        dynamic_role(f"{name}-database-{role.name}", args.database.mount, role, args.database,
                                     known_as(formerly("database", role.name), on_vault))
        self.register_outputs({})
