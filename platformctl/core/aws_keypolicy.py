"""Whether an IAM role may use a KMS key for Vault's ``awskms`` seal, judged from the key's own
policy (``kms:GetKeyPolicy``) and grants (``kms:ListGrants``). Pure: no AWS calls.

The model, kept small on purpose:

* Per action (``kms:Encrypt``, ``kms:Decrypt``, ``kms:DescribeKey``) the result is ``denied``,
  ``allowed``, ``delegated`` or ``missing``, in that order of precedence.
* ``denied``: a Deny statement without a ``Condition`` whose principal covers the role (the role's
  ARN, its account's root or bare account id, or ``*``) and whose ``Action`` covers the action.
* ``allowed``: an Allow statement without a ``Condition`` naming the role's ARN (or ``*``), or a
  grant (without ``Constraints``) whose ``GranteePrincipal`` is the role's ARN.
* ``delegated``: only an Allow for the role's account root (``arn:aws:iam::<account>:root``, as in
  the default key policy). That lets the account's IAM policies decide; they are not read here, so
  this is reported as a warning, not as proof.
* Statements with a ``Condition``, ``NotPrincipal`` or ``NotAction``, and grants with
  ``Constraints`` (Vault's seal sends no encryption context), are not evaluated: they come back as
  notes, reported as warnings.

``Action`` patterns match case-insensitively with IAM's wildcards ``*`` and ``?`` (``kms:*``, ``*``,
``kms:De*``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

VAULT_ACTIONS = ("kms:Encrypt", "kms:Decrypt", "kms:DescribeKey")
"""What Vault's ``awskms`` seal calls on its key."""

Access = Literal["denied", "allowed", "delegated", "missing"]


@dataclass(frozen=True)
class ActionAccess:
    """The verdict on one action."""

    action: str
    """``kms:Encrypt``, ``kms:Decrypt`` or ``kms:DescribeKey``."""
    access: Access
    """``denied``, ``allowed``, ``delegated`` (to IAM policies) or ``missing``."""
    sources: tuple[str, ...]
    """What decided it, e.g. ``key policy statement "AllowVault"`` or ``grant 1a2b``; empty when missing."""


@dataclass(frozen=True)
class KeyAccess:
    """A role's access to one key."""

    actions: tuple[ActionAccess, ...]
    """One verdict per action of :data:`VAULT_ACTIONS`, in that order."""
    notes: tuple[str, ...]
    """Statements and grants that were not evaluated, and why."""

    def of(self, access: Access) -> tuple[ActionAccess, ...]:
        return tuple(action for action in self.actions if action.access == access)


def role_account(role_arn: str) -> str:
    """The account id in ``arn:aws:iam::<account>:role/<name>``."""
    return role_arn.split(":")[4]


def evaluate(policy: str, grants: Iterable[Mapping[str, Any]], role_arn: str) -> KeyAccess:
    """Judges ``role_arn``'s access from a key policy document (JSON text) and the key's grants."""
    document = json.loads(policy)
    statements = document.get("Statement", [])
    if isinstance(statements, Mapping):
        statements = [statements]
    found: dict[str, dict[Access, list[str]]] = {action: {} for action in VAULT_ACTIONS}
    notes: list[str] = []
    for index, statement in enumerate(statements):
        sid = statement.get("Sid")
        label = f'key policy statement "{sid}"' if sid else f"key policy statement #{index}"
        effect = statement.get("Effect")
        if "NotPrincipal" in statement or "NotAction" in statement:
            notes.append(f"{label} uses NotPrincipal or NotAction, which this check does not evaluate")
            continue
        principal = _principal_match(statement.get("Principal"), role_arn)
        actions = [action for action in VAULT_ACTIONS if _covers(statement.get("Action"), action)]
        if principal is None or not actions:
            continue
        if "Condition" in statement:
            verb = "denies" if effect == "Deny" else "allows"
            notes.append(f"{label} {verb} {', '.join(actions)} only under a condition, "
                         "which this check does not evaluate")
            continue
        if effect == "Deny":
            verdict: Access = "denied"
        elif effect == "Allow":
            verdict = "delegated" if principal == "account" else "allowed"
        else:
            continue
        source = f"{label} (account root: IAM policies decide)" if verdict == "delegated" else label
        for action in actions:
            found[action].setdefault(verdict, []).append(source)
    for grant in grants:
        if grant.get("GranteePrincipal") != role_arn:
            continue
        label = f"grant {grant.get('GrantId', '?')}"
        if grant.get("Constraints"):
            notes.append(f"{label} has encryption context constraints, which Vault's seal does not send")
            continue
        operations = {f"kms:{operation}".lower() for operation in grant.get("Operations", [])}
        for action in VAULT_ACTIONS:
            if action.lower() in operations:
                found[action].setdefault("allowed", []).append(label)
    verdicts = []
    for action in VAULT_ACTIONS:
        access: Access = next((a for a in ("denied", "allowed", "delegated") if a in found[action]), "missing")
        verdicts.append(ActionAccess(action, access, tuple(found[action].get(access, ()))))
    return KeyAccess(tuple(verdicts), tuple(notes))


def _principal_match(principal: Any, role_arn: str) -> Literal["role", "account"] | None:
    """``role`` when ``principal`` names the role itself (or everyone), ``account`` when it names
    the role's account, else ``None``."""
    if principal == "*":
        return "role"
    if not isinstance(principal, Mapping):
        return None
    names = principal.get("AWS", [])
    names = [names] if isinstance(names, str) else list(names)
    if "*" in names or role_arn in names:
        return "role"
    account = role_account(role_arn)
    partition = role_arn.split(":")[1]
    if account in names or f"arn:{partition}:iam::{account}:root" in names:
        return "account"
    return None


def _covers(patterns: Any, action: str) -> bool:
    """Whether ``Action`` (a string or a list) covers ``action``, with ``*`` and ``?`` wildcards."""
    if isinstance(patterns, str):
        patterns = [patterns]
    if not isinstance(patterns, list):
        return False
    return any(_wildcard(pattern).fullmatch(action) for pattern in patterns if isinstance(pattern, str))


def _wildcard(pattern: str) -> re.Pattern[str]:
    return re.compile(re.escape(pattern).replace(r"\*", ".*").replace(r"\?", "."), re.IGNORECASE)
