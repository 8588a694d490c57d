"""Bootstrap of one stack's Pulumi state backend in AWS, idempotently: a KMS key with an alias for
the stack's secrets provider, and an S3 bucket for the state encrypted with that key.

Every run re-applies the bucket's settings, so a second run also repairs drift:

* versioning on (``s3:PutBucketVersioning``);
* default encryption SSE-KMS with the stack's key, S3 Bucket Key on (``s3:PutBucketEncryption``);
* all four public access blocks on (``s3:PutPublicAccessBlock``);
* a bucket policy statement ``DenyInsecureTransport`` refusing requests with
  ``aws:SecureTransport`` false, merged into any other statements the policy has
  (``s3:GetBucketPolicy``, ``s3:PutBucketPolicy``).

Ownership: ``s3:CreateBucket`` answers ``BucketAlreadyOwnedByYou`` (or, in us-east-1, success) for
our own bucket, and ``BucketAlreadyExists`` for another account's; ``s3:HeadBucket`` with
``ExpectedBucketOwner`` then confirms the owner (403 otherwise) and gives the bucket's region.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from .aws_clients import AwsError, ClientError, error_code

SECURE_TRANSPORT_SID = "DenyInsecureTransport"
_BUCKET = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")


@dataclass(frozen=True)
class StateBackend:
    """Where a stack's state and secrets live, once bootstrapped."""

    stack: str
    """Stack name."""
    region: str
    """Region of the bucket and the key."""
    bucket: str
    """S3 bucket holding the Pulumi state."""
    bucket_created: bool
    """Whether this run created the bucket (else it existed, ours, and its settings were re-applied)."""
    key_alias: str
    """``alias/pulumi-<stack>``: the secrets provider's key."""
    key_arn: str
    """The key's ARN."""
    key_created: bool
    """Whether this run created the key."""

    @property
    def login_command(self) -> str:
        return f"pulumi login 's3://{self.bucket}?region={self.region}'"

    @property
    def stack_init_command(self) -> str:
        return (f"pulumi stack init {self.stack} "
                f"--secrets-provider 'awskms://{self.key_alias}?region={self.region}'")


def bucket_name(prefix: str, stack: str) -> str:
    """``<prefix>-<stack>``, refused unless a valid S3 bucket name without dots (dots break TLS to
    virtual-hosted bucket addresses)."""
    name = f"{prefix}-{stack}"
    if not _BUCKET.fullmatch(name) or "--" in name:
        raise AwsError(f"bucket name {name!r} (from --bucket-prefix {prefix!r}) is not valid: use 3-63 "
                       "lowercase letters, digits and single hyphens")
    return name


def key_alias(stack: str) -> str:
    return f"alias/pulumi-{stack}"


def bootstrap_state(stack: str, bucket: str, region: str, *, s3: Any, kms: Any, account: str) -> StateBackend:
    """Creates or re-applies the stack's key and bucket, with boto3 clients in ``region`` for the
    caller's ``account``; raises :class:`AwsError` on anything it cannot fix."""
    alias = key_alias(stack)
    bucket_created = ensure_bucket(bucket, region, account, s3, taken_fix="choose another --bucket-prefix")
    key_arn, key_created = ensure_key(
        alias, f"Pulumi secrets provider and state bucket encryption of stack {stack} (vault-platform)",
        stack, region, kms)
    secure_bucket(bucket, key_arn, account, s3)
    return StateBackend(stack, region, bucket, bucket_created, alias, key_arn, key_created)


def secure_bucket(bucket: str, key_arn: str, account: str, s3: Any) -> None:
    """(Re-)applies versioning, default SSE-KMS encryption with ``key_arn``, the public access
    blocks and the TLS-only policy statement to our ``bucket``."""
    s3.put_bucket_versioning(Bucket=bucket, ExpectedBucketOwner=account,
                             VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(Bucket=bucket, ExpectedBucketOwner=account, ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn},
                   "BucketKeyEnabled": True}]})
    s3.put_public_access_block(Bucket=bucket, ExpectedBucketOwner=account, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    s3.put_bucket_policy(Bucket=bucket, ExpectedBucketOwner=account, Policy=json.dumps(_policy(bucket, s3, account)))


def ensure_key(alias: str, description: str, stack: str, region: str, kms: Any) -> tuple[str, bool]:
    """The key behind ``alias``, created with the alias when missing (``kms:DescribeKey``,
    ``kms:CreateKey``, ``kms:CreateAlias``); rotation is (re-)enabled (``kms:EnableKeyRotation``)."""
    try:
        metadata = kms.describe_key(KeyId=alias)["KeyMetadata"]
        created = False
    except ClientError as error:
        if error_code(error) != "NotFoundException":
            raise AwsError(f"cannot read KMS key {alias} in {region}: {error}") from error
        metadata = kms.create_key(
            Description=description,
            KeySpec="SYMMETRIC_DEFAULT", KeyUsage="ENCRYPT_DECRYPT",
            Tags=[{"TagKey": "pulumi-stack", "TagValue": stack}])["KeyMetadata"]
        kms.create_alias(AliasName=alias, TargetKeyId=metadata["KeyId"])
        created = True
    if metadata.get("KeyState") != "Enabled" or metadata.get("KeySpec") != "SYMMETRIC_DEFAULT":
        raise AwsError(f"KMS key {alias} in {region} ({metadata['Arn']}) is a {metadata.get('KeyState')} "
                       f"{metadata.get('KeySpec')} key, not an enabled SYMMETRIC_DEFAULT one: enable it, or point "
                       "the alias at a usable key (aws kms update-alias)")
    kms.enable_key_rotation(KeyId=metadata["KeyId"])
    return str(metadata["Arn"]), created


def ensure_bucket(bucket: str, region: str, account: str, s3: Any, *, taken_fix: str) -> bool:
    """Creates ``bucket`` or makes sure it is ours and in ``region``; whether it was created.
    ``taken_fix`` says what to do when the name belongs to another account."""
    other = (f"S3 bucket {bucket} already exists and belongs to another AWS account (bucket names are "
             f"global): {taken_fix}")
    create: dict[str, Any] = {"Bucket": bucket}
    if region != "us-east-1":
        create["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        s3.create_bucket(**create)
        created = True
    except ClientError as error:
        code = error_code(error)
        if code == "BucketAlreadyExists":
            raise AwsError(other) from error
        if code != "BucketAlreadyOwnedByYou":
            raise AwsError(f"cannot create S3 bucket {bucket} in {region}: {error}") from error
        created = False
    try:
        head = s3.head_bucket(Bucket=bucket, ExpectedBucketOwner=account)
    except ClientError as error:
        if error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 403:
            raise AwsError(f"{other}, or these credentials of account {account} may not read it") from error
        raise AwsError(f"cannot read S3 bucket {bucket}: {error}") from error
    actual = head.get("BucketRegion", region)
    if actual != region:
        raise AwsError(f"S3 bucket {bucket} is ours but in {actual}, not {region}: pass --region {actual}")
    return created


def _policy(bucket: str, s3: Any, account: str) -> dict[str, Any]:
    """The bucket's policy with ``DenyInsecureTransport`` added or replaced, other statements kept."""
    try:
        policy: dict[str, Any] = json.loads(s3.get_bucket_policy(Bucket=bucket, ExpectedBucketOwner=account)["Policy"])
    except ClientError as error:
        if error_code(error) != "NoSuchBucketPolicy":
            raise AwsError(f"cannot read the policy of S3 bucket {bucket}: {error}") from error
        policy = {"Version": "2012-10-17", "Statement": []}
    statements = policy.get("Statement", [])
    statements = [statements] if isinstance(statements, dict) else statements
    policy["Statement"] = [s for s in statements if s.get("Sid") != SECURE_TRANSPORT_SID] + [{
        "Sid": SECURE_TRANSPORT_SID,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }]
    return policy
