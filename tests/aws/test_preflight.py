"""``platformctl preflight``, through the real CLI entry, against moto in-process and as a server:
one case per rule, on the committed staging stack (alias/vault-staging-unseal in eu-west-1)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.stub import Stubber  # type: ignore[import-untyped]

from platformctl.__main__ import main
from platformctl.adapters.aws_clients import client
from platformctl.adapters.aws_preflight import check_auto_unseal
from platformctl.core.findings import Finding
from tests.support import spec_of

from .conftest import REGION

ROLE = "arn:aws:iam::111111111111:role/vault-staging-unseal"
ALIAS = "alias/vault-staging-unseal"
WHERE = f"staging: KMS key {ALIAS} in {REGION}"
ALLOW_VAULT = {"Sid": "Vault", "Effect": "Allow", "Principal": {"AWS": ROLE},
               "Action": ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"], "Resource": "*"}
ADMIN_ONLY = {"Sid": "Admin", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111111111111:role/admin"},
              "Action": "kms:*", "Resource": "*"}


@pytest.fixture(autouse=True)
def kms_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests are about the KMS key; the issuers' reach from the cluster has its own (test_reach)."""
    monkeypatch.setattr("platformctl.commands.preflight_command.reach_findings", lambda spec: ((), ()))


def make_key(*statements: dict[str, Any], alias: str = ALIAS, **create: Any) -> dict[str, Any]:
    """A key behind ``alias``; with ``statements``, they are its whole key policy."""
    kms = client("kms", REGION)
    create.setdefault("KeyUsage", "ENCRYPT_DECRYPT")  # AWS's default; moto reports none when it is left out
    if statements:
        create["Policy"] = json.dumps({"Version": "2012-10-17", "Statement": list(statements)})
    metadata: dict[str, Any] = kms.create_key(**create)["KeyMetadata"]
    kms.create_alias(AliasName=alias, TargetKeyId=metadata["KeyId"])
    return metadata


def preflight(capsys: pytest.CaptureFixture[str], stack: str = "staging") -> tuple[int, str, str]:
    code = main(["preflight", stack])
    out, err = capsys.readouterr()
    return code, out, err


def ok_line(key: dict[str, Any], suffix: str = "") -> str:
    return (f"staging: KMS key {ALIAS} in {REGION} ({key['Arn']}) is an enabled symmetric ENCRYPT_DECRYPT key "
            f"that {ROLE} may use{suffix}\n")


# ---- passes


def test_a_key_whose_policy_names_the_role_passes(aws: str, capsys: pytest.CaptureFixture[str]) -> None:
    key = make_key(ADMIN_ONLY, ALLOW_VAULT)
    assert preflight(capsys) == (0, ok_line(key), "")


def test_a_grant_to_the_role_passes(aws: str, capsys: pytest.CaptureFixture[str]) -> None:
    key = make_key(ADMIN_ONLY)
    client("kms", REGION).create_grant(KeyId=key["KeyId"], GranteePrincipal=ROLE,
                                       Operations=["Encrypt", "Decrypt", "DescribeKey"])
    assert preflight(capsys) == (0, ok_line(key), "")


def test_the_default_key_policy_delegates_to_iam_and_warns(aws: str, capsys: pytest.CaptureFixture[str]) -> None:
    key = make_key()  # moto's default policy: "Enable IAM User Permissions" for the account root
    assert preflight(capsys) == (0, ok_line(key, " (see warnings)"), (
        f"warning: {WHERE}: kms:Encrypt, kms:Decrypt, kms:DescribeKey for {ROLE} delegated to IAM policies "
        '(key policy statement "Enable IAM User Permissions" (account root: IAM policies decide)); '
        "IAM policies are not checked here\n"
        f"  fix: make sure {ROLE}'s IAM policy allows kms:Encrypt, kms:Decrypt, kms:DescribeKey on {key['Arn']}, "
        "or name the role in the key policy (or a grant) to make this check conclusive\n"))


def test_a_stack_without_auto_unseal_has_nothing_to_check(capsys: pytest.CaptureFixture[str]) -> None:
    assert preflight(capsys, "dev") == (0, "dev: no auto-unseal (Shamir unseal keys); nothing to check\n", "")


# ---- failures, one per rule


def test_a_missing_key_fails(aws: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert preflight(capsys) == (1, "", (
        f"error: {WHERE} does not exist\n"
        "  fix: create it (aws kms create-key --key-spec SYMMETRIC_DEFAULT --key-usage ENCRYPT_DECRYPT "
        f"--region {REGION}, then aws kms create-alias --alias-name {ALIAS} --target-key-id <key-id> "
        f"--region {REGION}), or correct vault-platform:cluster.autoUnseal (kmsKeyId, region) "
        "in stacks/Pulumi.staging.yaml\n"
        "staging: preflight failed (1 error)\n"))


def test_a_disabled_key_fails(aws: str, capsys: pytest.CaptureFixture[str]) -> None:
    key = make_key(ALLOW_VAULT)
    client("kms", REGION).disable_key(KeyId=key["KeyId"])
    assert preflight(capsys) == (1, "", (
        f"error: {WHERE} is Disabled, not Enabled: Vault cannot unseal with it\n"
        f"  fix: aws kms enable-key --key-id {key['KeyId']} --region {REGION}\n"
        "staging: preflight failed (1 error)\n"))


def test_a_key_pending_deletion_fails(aws: str, capsys: pytest.CaptureFixture[str]) -> None:
    key = make_key(ALLOW_VAULT)
    client("kms", REGION).schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    code, _, err = preflight(capsys)
    assert (code, err.splitlines()[:2]) == (1, [
        f"error: {WHERE} is PendingDeletion, not Enabled: Vault cannot unseal with it",
        f"  fix: aws kms cancel-key-deletion --key-id {key['KeyId']} --region {REGION}, "
        f"then aws kms enable-key --key-id {key['KeyId']} --region {REGION}"])


@pytest.mark.parametrize(("key_spec", "usage"), [("RSA_2048", "SIGN_VERIFY"), ("RSA_2048", "ENCRYPT_DECRYPT"),
                                                 ("ECC_NIST_P256", "SIGN_VERIFY"), ("HMAC_256", "GENERATE_VERIFY_MAC")])
def test_an_asymmetric_or_hmac_key_fails(aws: str, capsys: pytest.CaptureFixture[str], key_spec: str,
                                         usage: str) -> None:
    make_key(ALLOW_VAULT, KeySpec=key_spec, KeyUsage=usage)
    assert preflight(capsys) == (1, "", (
        f"error: {WHERE} is a {key_spec} {usage} key; Vault's awskms seal needs a symmetric encryption key "
        "(KeySpec SYMMETRIC_DEFAULT, KeyUsage ENCRYPT_DECRYPT)\n"
        "  fix: a key's spec and usage cannot change: create a key with aws kms create-key --key-spec "
        f"SYMMETRIC_DEFAULT --key-usage ENCRYPT_DECRYPT --region {REGION} and point kmsKeyId at it\n"
        "staging: preflight failed (1 error)\n"))


@pytest.mark.parametrize(("statements", "missing"), [
    ([ADMIN_ONLY], "kms:Encrypt, kms:Decrypt, kms:DescribeKey"),
    ([ADMIN_ONLY, {**ALLOW_VAULT, "Action": ["kms:Encrypt", "kms:Decrypt"]}], "kms:DescribeKey"),
    ([ADMIN_ONLY, {**ALLOW_VAULT, "Principal": {"AWS": "arn:aws:iam::999999999999:root"}}],
     "kms:Encrypt, kms:Decrypt, kms:DescribeKey"),
])
def test_a_role_without_permission_fails(aws: str, capsys: pytest.CaptureFixture[str],
                                         statements: list[dict[str, Any]], missing: str) -> None:
    key = make_key(*statements)
    assert preflight(capsys) == (1, "", (
        f"error: {WHERE}: {ROLE} may not use it for {missing}: no key policy statement, account-root "
        "delegation or grant allows it\n"
        f'  fix: add to the key policy {{"Effect": "Allow", "Principal": {{"AWS": "{ROLE}"}}, '
        '"Action": ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"], "Resource": "*"}, or aws kms create-grant '
        f"--key-id {key['KeyId']} --grantee-principal {ROLE} --operations Encrypt Decrypt DescribeKey "
        f"--region {REGION}\n"
        "staging: preflight failed (1 error)\n"))


def test_a_grant_for_part_of_the_actions_is_not_enough(aws: str, capsys: pytest.CaptureFixture[str]) -> None:
    key = make_key(ADMIN_ONLY)
    client("kms", REGION).create_grant(KeyId=key["KeyId"], GranteePrincipal=ROLE, Operations=["Decrypt"])
    code, _, err = preflight(capsys)
    assert (code, err.splitlines()[0]) == (
        1, f"error: {WHERE}: {ROLE} may not use it for kms:Encrypt, kms:DescribeKey: no key policy statement, "
           "account-root delegation or grant allows it")


def test_a_matching_deny_fails(aws: str, capsys: pytest.CaptureFixture[str]) -> None:
    key = make_key(ADMIN_ONLY, ALLOW_VAULT, {"Sid": "NoDecrypt", "Effect": "Deny", "Principal": {"AWS": ROLE},
                                             "Action": "kms:Decrypt", "Resource": "*"})
    assert preflight(capsys) == (1, "", (
        f'error: {WHERE}: the key policy denies {ROLE} kms:Decrypt (key policy statement "NoDecrypt")\n'
        "  fix: remove or narrow that Deny statement (aws kms get-key-policy / put-key-policy "
        f"--key-id {key['KeyId']} --policy-name default --region {REGION})\n"
        "staging: preflight failed (1 error)\n"))


def test_every_failure_is_reported_at_once(aws: str, capsys: pytest.CaptureFixture[str]) -> None:
    key = make_key(ADMIN_ONLY, KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")
    client("kms", REGION).disable_key(KeyId=key["KeyId"])
    code, _, err = preflight(capsys)
    assert code == 1
    assert [line for line in err.splitlines() if not line.startswith("  fix:")] == [
        f"error: {WHERE} is Disabled, not Enabled: Vault cannot unseal with it",
        f"error: {WHERE} is a RSA_2048 SIGN_VERIFY key; Vault's awskms seal needs a symmetric encryption key "
        "(KeySpec SYMMETRIC_DEFAULT, KeyUsage ENCRYPT_DECRYPT)",
        f"error: {WHERE}: {ROLE} may not use it for kms:Encrypt, kms:Decrypt, kms:DescribeKey: no key policy "
        "statement, account-root delegation or grant allows it",
        "staging: preflight failed (3 errors)",
    ]


def test_an_unknown_stack_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = preflight(capsys, "qa")
    assert (code, out) == (2, "")
    assert err.startswith("error: no stack 'qa': stacks/Pulumi.qa.yaml does not exist")


# ---- how the spec names the key


@pytest.mark.parametrize("name", ["KeyId", "Arn", "alias"])
def test_the_key_is_found_by_id_arn_or_alias(aws: str, name: str) -> None:
    key = make_key(ALLOW_VAULT, alias="alias/by-any-name")
    key_id = "alias/by-any-name" if name == "alias" else key[name]
    unseal = spec_of("staging", {"vault-platform:cluster.autoUnseal.kmsKeyId": key_id}).deployed.auto_unseal
    assert unseal is not None
    result = check_auto_unseal("staging", unseal, client("kms", REGION))
    assert (result.key_arn, result.findings) == (key["Arn"], ())


def test_an_alias_of_another_key_name_is_not_found(aws: str) -> None:
    make_key(ALLOW_VAULT, alias="alias/something-else")
    unseal = spec_of("staging").deployed.auto_unseal
    assert unseal is not None
    result = check_auto_unseal("staging", unseal, client("kms", REGION))
    assert (result.ok, result.key_arn, [f.message for f in result.findings]) == (
        False, None, [f"{WHERE} does not exist"])


def test_a_key_in_another_region_is_not_found(aws: str) -> None:
    make_key(ALLOW_VAULT)
    unseal = spec_of("staging", {"vault-platform:cluster.autoUnseal.region": "us-east-1"}).deployed.auto_unseal
    assert unseal is not None
    result = check_auto_unseal("staging", unseal, client("kms", unseal.region))
    assert result.findings[0] == Finding(
        "error", f"staging: KMS key {ALIAS} in us-east-1 does not exist",
        "create it (aws kms create-key --key-spec SYMMETRIC_DEFAULT --key-usage ENCRYPT_DECRYPT --region us-east-1, "
        f"then aws kms create-alias --alias-name {ALIAS} --target-key-id <key-id> --region us-east-1), "
        "or correct vault-platform:cluster.autoUnseal (kmsKeyId, region) in stacks/Pulumi.staging.yaml")


def test_a_key_we_may_not_read_fails() -> None:
    """moto allows every call, so KMS's AccessDeniedException is replayed through botocore's
    Stubber, on a client that sends nothing."""
    kms = client("kms", REGION)
    unseal = spec_of("staging").deployed.auto_unseal
    assert unseal is not None
    with Stubber(kms) as stub:
        stub.add_client_error("describe_key", "AccessDeniedException", "not authorized", http_status_code=400,
                              expected_params={"KeyId": ALIAS})
        result = check_auto_unseal("staging", unseal, kms)
    assert result.findings == (Finding(
        "error", f"{WHERE} could not be read: An error occurred (AccessDeniedException) when calling the "
                 "DescribeKey operation: not authorized",
        "run with AWS credentials (AWS_PROFILE, ...) that may call kms:DescribeKey on the key"),)
