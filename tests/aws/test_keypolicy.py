"""The key policy and grant evaluation, without AWS: one case per rule."""

from __future__ import annotations

import json
from typing import Any

import pytest

from platformctl.core.aws_keypolicy import ActionAccess, evaluate

ROLE = "arn:aws:iam::111111111111:role/vault-staging-unseal"
ROOT = "arn:aws:iam::111111111111:root"


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(principal: Any, action: Any, **extra: Any) -> dict[str, Any]:
    return {"Sid": "S", "Effect": "Allow", "Principal": principal, "Action": action, "Resource": "*", **extra}


def verdicts(document: str, grants: list[dict[str, Any]] | None = None) -> list[str]:
    return [action.access for action in evaluate(document, grants or [], ROLE).actions]


ALL = ["allowed", "allowed", "allowed"]
NONE = ["missing", "missing", "missing"]


@pytest.mark.parametrize(("principal", "action", "expected"), [
    ({"AWS": ROLE}, ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"], ALL),
    ({"AWS": ROLE}, "kms:*", ALL),
    ({"AWS": ROLE}, "*", ALL),
    ({"AWS": ROLE}, ["KMS:ENCRYPT", "kms:decrypt", "kms:Describe*"], ALL),
    ({"AWS": ROLE}, "kms:*crypt", ["allowed", "allowed", "missing"]),
    ({"AWS": ROLE}, "kms:?ncrypt", ["allowed", "missing", "missing"]),
    ({"AWS": ROLE}, ["kms:Encrypt", "kms:GenerateDataKey"], ["allowed", "missing", "missing"]),
    ({"AWS": [ROOT, "arn:aws:iam::111111111111:role/admin", ROLE]}, "kms:*", ALL),
    ({"AWS": "*"}, "kms:*", ALL),
    ("*", "kms:*", ALL),
    ({"AWS": ROOT}, "kms:*", ["delegated"] * 3),
    ({"AWS": "111111111111"}, "kms:*", ["delegated"] * 3),
    ({"AWS": "arn:aws:iam::999999999999:root"}, "kms:*", NONE),
    ({"AWS": "arn:aws:iam::111111111111:role/vault-staging-unseal-other"}, "kms:*", NONE),
    ({"Service": "logs.amazonaws.com"}, "kms:*", NONE),
])
def test_allow_statements(principal: Any, action: Any, expected: list[str]) -> None:
    assert verdicts(policy(allow(principal, action))) == expected


def test_a_single_statement_object_is_read() -> None:
    document = json.dumps({"Statement": allow({"AWS": ROLE}, "kms:*")})
    assert verdicts(document) == ALL


@pytest.mark.parametrize("principal", [{"AWS": ROLE}, {"AWS": ROOT}, "*"])
def test_a_matching_deny_wins_over_any_allow(principal: Any) -> None:
    deny = {"Sid": "NoDecrypt", "Effect": "Deny", "Principal": principal, "Action": "kms:Decrypt", "Resource": "*"}
    access = evaluate(policy(allow({"AWS": ROLE}, "kms:*"), deny), [], ROLE)
    assert access.actions[1] == ActionAccess("kms:Decrypt", "denied", ('key policy statement "NoDecrypt"',))
    assert [action.access for action in access.actions] == ["allowed", "denied", "allowed"]


def test_a_direct_allow_outranks_delegation_and_sources_are_named() -> None:
    access = evaluate(policy({**allow({"AWS": ROOT}, "kms:*"), "Sid": "Root"},
                             {**allow({"AWS": ROLE}, "kms:Encrypt"), "Sid": "Vault"}), [], ROLE)
    assert access.actions == (
        ActionAccess("kms:Encrypt", "allowed", ('key policy statement "Vault"',)),
        ActionAccess("kms:Decrypt", "delegated", ('key policy statement "Root" (account root: IAM policies decide)',)),
        ActionAccess("kms:DescribeKey", "delegated",
                     ('key policy statement "Root" (account root: IAM policies decide)',)),
    )


@pytest.mark.parametrize(("statement", "note"), [
    ({"Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": "kms:*", "Resource": "*",
      "Condition": {"StringEquals": {"kms:ViaService": "ec2.eu-west-1.amazonaws.com"}}},
     "key policy statement #0 allows kms:Encrypt, kms:Decrypt, kms:DescribeKey only under a condition, "
     "which this check does not evaluate"),
    ({"Effect": "Deny", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*",
      "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
     "key policy statement #0 denies kms:Decrypt only under a condition, which this check does not evaluate"),
    ({"Effect": "Allow", "Principal": {"AWS": ROLE}, "NotAction": "kms:ScheduleKeyDeletion", "Resource": "*"},
     "key policy statement #0 uses NotPrincipal or NotAction, which this check does not evaluate"),
    ({"Effect": "Deny", "NotPrincipal": {"AWS": ROOT}, "Action": "kms:*", "Resource": "*"},
     "key policy statement #0 uses NotPrincipal or NotAction, which this check does not evaluate"),
])
def test_statements_not_evaluated_become_notes(statement: dict[str, Any], note: str) -> None:
    access = evaluate(policy(statement), [], ROLE)
    assert access.notes == (note,)
    assert [action.access for action in access.actions] == NONE


@pytest.mark.parametrize(("grants", "expected"), [
    ([{"GrantId": "g1", "GranteePrincipal": ROLE, "Operations": ["Encrypt", "Decrypt", "DescribeKey"]}], ALL),
    ([{"GrantId": "g1", "GranteePrincipal": ROLE, "Operations": ["Encrypt"]},
      {"GrantId": "g2", "GranteePrincipal": ROLE, "Operations": ["Decrypt", "DescribeKey"]}], ALL),
    ([{"GrantId": "g1", "GranteePrincipal": ROLE, "Operations": ["Decrypt", "GenerateDataKey"]}],
     ["missing", "allowed", "missing"]),
    ([{"GrantId": "g1", "GranteePrincipal": "arn:aws:iam::111111111111:role/other",
       "Operations": ["Encrypt", "Decrypt", "DescribeKey"]}], NONE),
])
def test_grants(grants: list[dict[str, Any]], expected: list[str]) -> None:
    assert verdicts(policy(), grants) == expected


def test_a_constrained_grant_is_a_note_not_an_allow() -> None:
    grant = {"GrantId": "g1", "GranteePrincipal": ROLE, "Operations": ["Encrypt", "Decrypt", "DescribeKey"],
             "Constraints": {"EncryptionContextEquals": {"app": "x"}}}
    access = evaluate(policy(), [grant], ROLE)
    assert [action.access for action in access.actions] == NONE
    assert access.notes == ("grant g1 has encryption context constraints, which Vault's seal does not send",)
