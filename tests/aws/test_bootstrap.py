"""``platformctl bootstrap-state``, through the real CLI entry, against moto in-process and as a
server: what a first run creates, that a second run is a no-op that repairs drift, and refusals."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.stub import Stubber  # type: ignore[import-untyped]

from platformctl.__main__ import main
from platformctl.adapters.aws_bootstrap import bootstrap_state
from platformctl.adapters.aws_clients import AwsError, client
from platformctl.adapters.stackfile import read_stack, stacks
from tests.support import spec_of_config

from .conftest import ACCOUNT, OTHER_ACCOUNT, REGION
from .test_snapshots import snapshot_report

BUCKET = "acme-vault-state-staging"
ALIAS = "alias/pulumi-staging"
USE = ("\nUse it:\n"
       f"  pulumi login 's3://{BUCKET}?region={REGION}'\n"
       f"  pulumi stack init staging --secrets-provider 'awskms://{ALIAS}?region={REGION}'\n")
SECURE_TRANSPORT = {
    "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
    "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"],
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}


def bootstrap(capsys: pytest.CaptureFixture[str], *extra: str, stack: str = "staging",
              prefix: str = "acme-vault-state") -> tuple[int, str, str]:
    code = main(["bootstrap-state", stack, "--bucket-prefix", prefix, "--region", REGION, *extra])
    out, err = capsys.readouterr()
    return code, out, err


def key_arn() -> str:
    return str(client("kms", REGION).describe_key(KeyId=ALIAS)["KeyMetadata"]["Arn"])


def report(bucket: str, key: str) -> str:
    """The whole output; the committed staging stack declares snapshots, whose bucket and key the
    same run bootstraps (tests/aws/test_snapshots.py)."""
    return (f"staging: S3 bucket {BUCKET} in {REGION}: {bucket}; versioning on, SSE-KMS with {ALIAS}, "
            "public access blocked, HTTPS only\n"
            f"staging: KMS key {ALIAS} ({key_arn()}): {key}; rotation on\n"
            + snapshot_report(spec_of_config(read_stack("staging")), bucket, key) + USE)


def bucket_settings() -> dict[str, Any]:
    s3 = client("s3", REGION)
    encryption = s3.get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"]["Rules"]
    return {
        "region": s3.head_bucket(Bucket=BUCKET)["BucketRegion"],
        "versioning": s3.get_bucket_versioning(Bucket=BUCKET).get("Status"),
        "encryption": [{key: rule[key] for key in ("ApplyServerSideEncryptionByDefault", "BucketKeyEnabled")}
                       for rule in encryption],
        "public_access": s3.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"],
        "policy": json.loads(s3.get_bucket_policy(Bucket=BUCKET)["Policy"])["Statement"],
    }


def expected_settings(*other_statements: dict[str, Any]) -> dict[str, Any]:
    return {
        "region": REGION,
        "versioning": "Enabled",
        "encryption": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn()},
                        "BucketKeyEnabled": True}],
        "public_access": {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
                          "RestrictPublicBuckets": True},
        "policy": [*other_statements, SECURE_TRANSPORT],
    }


# ---- a first run, then a second


def test_a_first_run_creates_the_bucket_and_key(aws: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert bootstrap(capsys) == (0, report("created", "created"), "")
    assert bucket_settings() == expected_settings()
    kms = client("kms", REGION)
    key = kms.describe_key(KeyId=ALIAS)["KeyMetadata"]
    assert (key["KeySpec"], key["KeyUsage"], key["KeyState"], key["AWSAccountId"]) == (
        "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT", "Enabled", ACCOUNT)
    assert kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"] is True
    assert kms.list_resource_tags(KeyId=key["KeyId"])["Tags"] == [{"TagKey": "pulumi-stack", "TagValue": "staging"}]


def test_a_second_run_keeps_our_bucket_and_key_and_repairs_drift(aws: str,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert bootstrap(capsys)[0] == 0
    first_key = key_arn()
    s3 = client("s3", REGION)
    audit = {"Sid": "Audit", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/audit"},
             "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{BUCKET}/*"}
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Suspended"})
    s3.delete_public_access_block(Bucket=BUCKET)
    s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps({"Version": "2012-10-17", "Statement": [audit]}))

    assert bootstrap(capsys) == (0, report("exists, ours", "exists"), "")
    assert key_arn() == first_key
    assert bucket_settings() == expected_settings(audit)
    assert len(client("kms", REGION).list_keys()["Keys"]) == 2  # the state's and the snapshots'



def test_each_stack_gets_its_own_bucket_and_key(aws: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert bootstrap(capsys)[0] == 0
    code, out, _ = bootstrap(capsys, stack="prod")
    assert code == 0
    assert out.endswith("\nUse it:\n"
                        f"  pulumi login 's3://acme-vault-state-prod?region={REGION}'\n"
                        f"  pulumi stack init prod --secrets-provider 'awskms://alias/pulumi-prod?region={REGION}'\n")
    snapshot_buckets = [spec.snapshots.bucket for stack in ("prod", "staging")
                        if (spec := spec_of_config(read_stack(stack))).snapshots is not None]
    assert sorted(b["Name"] for b in client("s3", REGION).list_buckets()["Buckets"]) == sorted([
        "acme-vault-state-prod", BUCKET, *snapshot_buckets])


# ---- refusals


def test_a_bucket_of_another_account_is_refused(aws: str, capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as other:
        other.setenv("MOTO_ACCOUNT_ID", OTHER_ACCOUNT)
        client("s3", REGION).create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    assert bootstrap(capsys) == (1, "", (
        f"error: staging: S3 bucket {BUCKET} already exists and belongs to another AWS account (bucket names are "
        "global): choose another --bucket-prefix\n"))
    assert client("kms", REGION).list_keys()["Keys"] == []  # nothing created before the refusal


def test_our_bucket_in_another_region_is_refused(aws: str, capsys: pytest.CaptureFixture[str]) -> None:
    elsewhere = {"LocationConstraint": "us-west-2"}
    client("s3", "us-west-2").create_bucket(Bucket=BUCKET, CreateBucketConfiguration=elsewhere)
    assert bootstrap(capsys) == (1, "", (
        f"error: staging: S3 bucket {BUCKET} is ours but in us-west-2, not {REGION}: pass --region us-west-2\n"))


def test_a_key_alias_on_a_disabled_key_is_refused(aws: str, capsys: pytest.CaptureFixture[str]) -> None:
    kms = client("kms", REGION)
    key = kms.create_key(KeySpec="SYMMETRIC_DEFAULT", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]
    kms.create_alias(AliasName=ALIAS, TargetKeyId=key["KeyId"])
    kms.disable_key(KeyId=key["KeyId"])
    assert bootstrap(capsys) == (1, "", (
        f"error: staging: KMS key {ALIAS} in {REGION} ({key['Arn']}) is a Disabled SYMMETRIC_DEFAULT key, not an "
        "enabled SYMMETRIC_DEFAULT one: enable it, or point the alias at a usable key (aws kms update-alias)\n"))


@pytest.mark.parametrize(("prefix", "name"), [
    ("Acme", "Acme-staging"), ("acme.state", "acme.state-staging"), ("acme-", "acme--staging"), ("a" * 60, None),
])
def test_a_bad_bucket_prefix_is_a_usage_error(capsys: pytest.CaptureFixture[str], prefix: str,
                                              name: str | None) -> None:
    name = name or f"{prefix}-staging"
    assert bootstrap(capsys, prefix=prefix) == (2, "", (
        f"error: bucket name {name!r} (from --bucket-prefix {prefix!r}) is not valid: use 3-63 lowercase letters, "
        "digits and single hyphens\n"))


def test_an_unknown_stack_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    # Whichever stacks the repository has, sorted.
    assert bootstrap(capsys, stack="qa") == (2, "", f"error: no stack 'qa' (stacks: {', '.join(sorted(stacks()))})\n")


def test_a_403_on_head_bucket_means_not_ours() -> None:
    """moto does not enforce ``ExpectedBucketOwner`` on HeadBucket, so S3's 403 for a bucket owned by
    another account is replayed here through botocore's Stubber, on a client that sends nothing."""
    s3 = client("s3", REGION)
    with Stubber(s3) as stub:
        stub.add_client_error("create_bucket", "BucketAlreadyOwnedByYou", http_status_code=409)
        stub.add_client_error("head_bucket", "403", "Forbidden", http_status_code=403,
                              expected_params={"Bucket": BUCKET, "ExpectedBucketOwner": ACCOUNT})
        with pytest.raises(AwsError) as raised:
            bootstrap_state("staging", BUCKET, REGION, s3=s3, kms=None, account=ACCOUNT)
    assert str(raised.value) == (
        f"S3 bucket {BUCKET} already exists and belongs to another AWS account (bucket names are global): choose "
        f"another --bucket-prefix, or these credentials of account {ACCOUNT} may not read it")


# ---- the endpoint comes from the standard variable


def test_the_server_backend_is_reached_through_aws_endpoint_url(aws: str, moto_server: str) -> None:
    expected = moto_server if aws == "server" else f"https://kms.{REGION}.amazonaws.com"
    assert client("kms", REGION).meta.endpoint_url == expected
