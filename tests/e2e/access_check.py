"""Differential access: for every identity ``platformctl access --json`` reports, a token carrying exactly
that identity's policies is asked about in Vault (``sys/capabilities``) what it may do on every path of the
matrix and on paths outside it; the offline evaluator (:mod:`vaultmodel.vault_acl`), given the same
policies as Vault holds them, must answer the same. A disagreement is a bug in one of the two."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import hvac  # type: ignore[import-untyped]

from vaultmodel.vault_acl import DEFAULT_POLICY_NAME, Acl

OUTSIDE = ("sys/mounts", "sys/policies/acl/vault-iac", "sys/auth", "sys/audit", "sys/storage/raft/snapshot",
           "sys/raw/core", "auth/token/create", "auth/token/lookup-self", "auth/token/renew-self",
           "secret/metadata/", "secret/metadata/e2e-probe", "secret/data/e2e-elsewhere/e2e-probe",
           "database/config/postgres", "database/roles/e2e-probe", "transit/keys/e2e-probe",
           "pki/root/generate/internal", "identity/group", "cubbyhole/e2e-probe", "sys/capabilities-self")
"""Paths no application should reach, and a few every token does (its own cubbyhole, its lookup)."""
_PROBE = "e2e-probe"


def concrete(pattern: str) -> str:
    """A path the pattern matches: ``+`` and a trailing ``*`` filled in."""
    path = re.sub(r"(?<=/)\+(?=/|$)|^\+(?=/)", _PROBE, pattern)
    return path[:-1] + _PROBE if path.endswith("*") else path


def probe_paths(identity: Mapping[str, Any]) -> list[str]:
    paths = {concrete(grant["path"]) for grant in identity["grants"]}
    paths |= {reach["path"] for reach in identity["reaches"]}
    paths |= set(OUTSIDE)
    return sorted(paths)


def disagreements(root: hvac.Client, identities: Iterable[Mapping[str, Any]]) -> list[str]:
    """Every (identity, path) on which Vault and the evaluator differ, as readable lines."""
    found: list[str] = []
    for identity in identities:
        policies = list(identity["policies"])
        assert policies, f"{identity['subject']} has no policy: a token created without one would be root's child"
        # The texts Vault holds, the built-in default policy included: the evaluator reads what Vault reads.
        acl = Acl.of_texts({name: root.sys.read_acl_policy(name)["data"]["policy"] for name in policies},
                           default_policy=False)
        token = root.auth.token.create(policies=policies, no_default_policy=DEFAULT_POLICY_NAME not in policies,
                                       ttl="10m", no_parent=True)["auth"]["client_token"]
        paths = probe_paths(identity)
        # sys/capabilities (root asks for the token): a token without the default policy may not ask itself.
        answer = root.adapter.post("/v1/sys/capabilities", json={"token": token, "paths": paths})
        for path in paths:
            vault_says = set(answer[path]) - {"deny"}
            ours = set(acl.capabilities(path))
            if vault_says != ours:
                found.append(f"{identity['subject']} on {path!r}: Vault {sorted(vault_says)}, evaluator {sorted(ours)}")
        root.auth.token.revoke(token)
    return found
