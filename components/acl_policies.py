"""ACL policies (``sys/policies/acl/:name``): hand-written, declared, and generated per app."""

from __future__ import annotations

import pulumi
import pulumi_vault as vault

from components.environment import EnvironmentSpec
from components.options import children_of
from components.render.acl import PolicyDocument, app_policy, declared_policies


class AclPolicies(pulumi.ComponentResource):
    """Uploads every policy the stack uses; an application's role refers to them by name."""

    names: pulumi.Output[list[str]]
    """Names of the uploaded policies."""

    def __init__(self, name: str, spec: EnvironmentSpec, files: tuple[PolicyDocument, ...],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vault-platform:acl:AclPolicies", name, None, opts)
        child = children_of(self, opts)
        documents = [*files, *declared_policies(spec), *(app_policy(app, spec) for app in spec.apps)]
        for document in documents:
            vault.Policy(f"{name}-{document.name}", name=document.name, policy=document.hcl, opts=child)
        self.names = pulumi.Output.from_input([document.name for document in documents])
        self.register_outputs({"names": self.names})
