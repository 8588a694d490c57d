"""One team's applications, declared by a stack of their own (``<environment>.<team>``): each
application's policy (``sys/policies/acl/:name``) and role (``auth/<path>/role/:name``), and the
KV secrets and database roles its file declares, on the mounts the environment's stack declares."""

from __future__ import annotations

import pulumi
import pulumi_vault as vault

from components.database import dynamic_role
from components.environment import PROJECT, EnvironmentSpec
from components.kubernetes_auth import app_role
from components.kv import static_secret
from components.options import children_of
from components.render.acl import app_policy
from components.render.annotations import injector_annotations
from components.vault_provider import vault_provider


class TeamApps(pulumi.ComponentResource):
    """What one team's application files declare in one environment. The environment's stack runs
    first (the workflows run it before the teams'), so the mounts, the auth method and the
    ``vault-iac`` grants these calls need are in Vault already; a team's stack never changes them."""

    annotations: dict[str, dict[str, str]]
    """Vault Agent injector annotations per application of the team."""

    def __init__(self, name: str, spec: EnvironmentSpec, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vault-platform:apps:TeamApps", name, None, opts)
        apps = spec.declared_apps
        self.annotations = {app.name: injector_annotations(app, spec) for app in apps}
        if spec.vault is not None:  # a stack stating clusterOnly configures no Vault yet
            provider = vault_provider(f"{name}-vault", spec.vault, children_of(self, opts))
            on_vault = pulumi.ResourceOptions(parent=self, providers={"vault": provider})
            for app in apps:
                document = app_policy(app, spec)
                policy = vault.Policy(f"{name}-{document.name}", name=document.name, policy=document.hcl,
                                      opts=on_vault)
                # A new role's login works from its first use: its policy is in Vault before it.
                app_role(f"{name}-{app.name}", spec.kubernetes_auth_path, app,
                         on_vault.merge(pulumi.ResourceOptions(depends_on=[policy])))
            config = pulumi.Config(PROJECT)
            for secret in spec.kv.secrets:
                if spec.declares(secret.owner):
                    static_secret(f"{name}-{secret.name}", spec.kv.mount, secret, spec.kv, config, on_vault)
            if spec.database is not None:
                for role in spec.database.roles:
                    if spec.declares(role.owner):
                        dynamic_role(f"{name}-{role.name}", spec.database.mount, role, spec.database, on_vault)
        self.register_outputs({})
