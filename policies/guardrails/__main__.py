"""The guardrails policy pack, as the Pulumi CLI loads it:
``pulumi preview --policy-pack policies/guardrails`` (see README, "Delivery")."""

import sys
from pathlib import Path

# The checks share their rules with the program (vaultmodel/rules.py): the repository root is importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pulumi_policy import EnforcementLevel, PolicyPack

from policies.guardrails.checks import POLICIES

PolicyPack(
    name="vault-platform-guardrails",
    description="What no vault-platform stack may deploy: HA and TLS outside dev, tight bindings and TTLs, "
                "no plaintext credentials, least-privilege ACL policies, protected state in prod.",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=list(POLICIES),
)
