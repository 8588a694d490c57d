"""ACL policies (``sys/policies/acl/:name``): hand-written, declared, and generated per app."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_vault as vault

from components.options import children_of
from environment import PolicyDocument
from environment.identity import DEPLOY_POLICY


class AclPolicies(pulumi.ComponentResource):
    """Uploads every policy the stack uses; an application's role refers to them by name."""

    names: pulumi.Output[list[str]]
    """Names of the uploaded policies."""
    iac_policy: vault.Policy
    """``vault-iac``, the policy ``pulumi up`` itself runs with (CI's deploy role): what every other
    Vault resource waits for, so that a grant added in the same change is in Vault before its call."""

    def __init__(self, name: str, documents: Sequence[PolicyDocument],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        """``documents``: every policy the stack uses, ``vault-iac`` among them (the hand-written files,
        the declared policies and the generated policy of each application this stack declares)."""
        super().__init__("vault-platform:acl:AclPolicies", name, None, opts)
        child = children_of(self, opts)
        (iac,) = [document for document in documents if document.name == DEPLOY_POLICY]
        self.iac_policy = vault.Policy(f"{name}-{iac.name}", name=iac.name, policy=iac.hcl, opts=child)
        after_iac = pulumi.ResourceOptions(parent=self, depends_on=[self.iac_policy])
        for document in documents:
            if document is not iac:
                vault.Policy(f"{name}-{document.name}", name=document.name, policy=document.hcl, opts=after_iac)
        self.names = pulumi.Output.from_input([document.name for document in documents])
        self.register_outputs({"names": self.names})
