"""Preflight of a stack's KMS auto-unseal key, before ``pulumi up``: the key exists, is enabled, is
a symmetric ``ENCRYPT_DECRYPT`` key, and Vault's role may use it (see :mod:`platformctl.core.aws_keypolicy`).

AWS calls, all read-only: ``kms:DescribeKey`` (also resolves ``alias/...``), ``kms:GetKeyPolicy``,
``kms:ListGrants``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from environment import AutoUnseal
from platformctl.core.aws_keypolicy import VAULT_ACTIONS, ActionAccess, KeyAccess, evaluate
from platformctl.core.findings import Finding

from .aws_clients import BotoCoreError, ClientError, error_code

SYMMETRIC = ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT")
"""The ``KeySpec`` and ``KeyUsage`` Vault's seal needs."""


@dataclass(frozen=True)
class Preflight:
    """The outcome for one stack."""

    stack: str
    """Stack name."""
    key: str
    """The key as the spec names it (id, ARN or ``alias/...``), with its region."""
    key_arn: str | None
    """The key's ARN once resolved; ``None`` when it could not be read."""
    findings: tuple[Finding, ...]
    """Every problem found; empty when all is well."""

    @property
    def ok(self) -> bool:
        return not any(finding.level == "error" for finding in self.findings)


def check_auto_unseal(stack: str, unseal: AutoUnseal, kms: Any) -> Preflight:
    """Checks ``unseal``'s key through ``kms``, a boto3 KMS client in the key's region."""
    key = f"KMS key {unseal.kms_key_id} in {unseal.region}"
    where = f"{stack}: {key}"
    region = f"--region {unseal.region}"
    try:
        metadata = kms.describe_key(KeyId=unseal.kms_key_id)["KeyMetadata"]
    except ClientError as error:
        if error_code(error) == "NotFoundException":
            create = (f"aws kms create-key --key-spec SYMMETRIC_DEFAULT --key-usage ENCRYPT_DECRYPT {region}"
                      + (f", then aws kms create-alias --alias-name {unseal.kms_key_id} --target-key-id <key-id> "
                         f"{region}" if unseal.kms_key_id.startswith("alias/") else ""))
            return _failed(stack, key, Finding(
                "error", f"{where} does not exist",
                f"create it ({create}), or correct vault-platform:cluster.autoUnseal "
                f"(kmsKeyId, region) in stacks/Pulumi.{stack}.yaml"))
        return _failed(stack, key, _unreadable(where, "kms:DescribeKey", error))
    except BotoCoreError as error:
        return _failed(stack, key, _unreadable(where, "kms:DescribeKey", error))
    key_id, key_arn = metadata["KeyId"], metadata["Arn"]
    findings: list[Finding] = []
    state = metadata.get("KeyState", "Enabled" if metadata.get("Enabled") else "Disabled")
    if state != "Enabled":
        fix = {
            "Disabled": f"aws kms enable-key --key-id {key_id} {region}",
            "PendingDeletion": f"aws kms cancel-key-deletion --key-id {key_id} {region}, "
                               f"then aws kms enable-key --key-id {key_id} {region}",
        }.get(state, f"bring the key back to Enabled (aws kms describe-key --key-id {key_id} {region})")
        findings.append(Finding("error", f"{where} is {state}, not Enabled: Vault cannot unseal with it", fix))
    spec = (metadata.get("KeySpec", metadata.get("CustomerMasterKeySpec")), metadata.get("KeyUsage"))
    if spec != SYMMETRIC:
        findings.append(Finding(
            "error", f"{where} is a {spec[0]} {spec[1]} key; Vault's awskms seal needs a symmetric "
                     "encryption key (KeySpec SYMMETRIC_DEFAULT, KeyUsage ENCRYPT_DECRYPT)",
            "a key's spec and usage cannot change: create a key with aws kms create-key --key-spec "
            f"SYMMETRIC_DEFAULT --key-usage ENCRYPT_DECRYPT {region} and point kmsKeyId at it"))
    try:
        policy = kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]
        grants = [grant for page in kms.get_paginator("list_grants").paginate(KeyId=key_id)
                  for grant in page["Grants"]]
    except (ClientError, BotoCoreError) as error:
        findings.append(_unreadable(where, "kms:GetKeyPolicy and kms:ListGrants", error))
        return Preflight(stack, key, key_arn, tuple(findings))
    findings.extend(_access_findings(where, unseal.role_arn, key_id, key_arn, region,
                                     evaluate(policy, grants, unseal.role_arn)))
    return Preflight(stack, key, key_arn, tuple(findings))


def _access_findings(where: str, role: str, key_id: str, key_arn: str, region: str,
                     access: KeyAccess) -> list[Finding]:
    findings = []
    actions = ", ".join(VAULT_ACTIONS)
    denied = access.of("denied")
    if denied:
        findings.append(Finding(
            "error", f"{where}: the key policy denies {role} {_names(denied)} ({_sources(denied)})",
            "remove or narrow that Deny statement (aws kms get-key-policy / put-key-policy "
            f"--key-id {key_id} --policy-name default {region})"))
    missing = access.of("missing")
    if missing:
        statement = json.dumps({"Effect": "Allow", "Principal": {"AWS": role}, "Action": list(VAULT_ACTIONS),
                                "Resource": "*"})
        findings.append(Finding(
            "error", f"{where}: {role} may not use it for {_names(missing)}: no key policy statement, "
                     "account-root delegation or grant allows it",
            f"add to the key policy {statement}, or aws kms create-grant --key-id {key_id} "
            f"--grantee-principal {role} --operations Encrypt Decrypt DescribeKey {region}"))
    delegated = access.of("delegated")
    if delegated:
        findings.append(Finding(
            "warning", f"{where}: {_names(delegated)} for {role} delegated to IAM policies "
                       f"({_sources(delegated)}); IAM policies are not checked here",
            f"make sure {role}'s IAM policy allows {actions} on {key_arn}, or name the role in the key "
            "policy (or a grant) to make this check conclusive"))
    findings.extend(Finding("warning", f"{where}: {note}", "check it by hand") for note in access.notes)
    return findings


def _names(actions: tuple[ActionAccess, ...]) -> str:
    return ", ".join(action.action for action in actions)


def _sources(actions: tuple[ActionAccess, ...]) -> str:
    return "; ".join(dict.fromkeys(source for action in actions for source in action.sources))


def _unreadable(where: str, calls: str, error: Any) -> Finding:
    return Finding("error", f"{where} could not be read: {error}",
                   f"run with AWS credentials (AWS_PROFILE, ...) that may call {calls} on the key")


def _failed(stack: str, key: str, finding: Finding) -> Preflight:
    return Preflight(stack, key, None, (finding,))
