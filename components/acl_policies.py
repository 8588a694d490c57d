"""ACL policies (``sys/policies/acl/:name``): hand-written, declared, and generated per app."""

from __future__ import annotations

import pulumi
import pulumi_vault as vault

from components.environment import EnvironmentSpec, PolicyDocument
from components.environment.identity import DEPLOY_POLICY
from components.options import children_of
from components.render.acl import app_policy, declared_policies


class AclPolicies(pulumi.ComponentResource):
    """Uploads every policy the stack uses; an application's role refers to them by name."""

    names: pulumi.Output[list[str]]
    """Names of the uploaded policies."""
    iac_policy: vault.Policy
    """``vault-iac``, the policy ``pulumi up`` itself runs with (CI's deploy role): what every other
    Vault resource waits for, so that a grant added in the same change is in Vault before its call."""

    def __init__(self, name: str, spec: EnvironmentSpec, files: tuple[PolicyDocument, ...],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vault-platform:acl:AclPolicies", name, None, opts)
        child = children_of(self, opts)
        documents = [*files, *declared_policies(spec), *(app_policy(app, spec) for app in spec.declared_apps)]
        (iac,) = [document for document in documents if document.name == DEPLOY_POLICY]
        self.iac_policy = vault.Policy(f"{name}-{iac.name}", name=iac.name, policy=iac.hcl, opts=child)
        after_iac = pulumi.ResourceOptions(parent=self, depends_on=[self.iac_policy])
        for document in documents:
            if document is not iac:
                vault.Policy(f"{name}-{document.name}", name=document.name, policy=document.hcl, opts=after_iac)
        self.names = pulumi.Output.from_input([document.name for document in documents])
        self.register_outputs({"names": self.names})
