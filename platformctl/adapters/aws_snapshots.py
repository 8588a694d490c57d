"""The stack's Raft snapshot bucket in S3: its bootstrap (idempotent, like the state backend's) and
reading the snapshots back for a restore.

The bucket gets the state bucket's settings (:func:`platformctl.adapters.aws_bootstrap.secure_bucket`:
versioning, SSE-KMS by default with a key of its own, ``alias/vault-snapshots-<stack>``, public
access blocked, TLS only) and a lifecycle rule expiring snapshots after the spec's retention
(``s3:PutLifecycleConfiguration``). Every read names our account as ``ExpectedBucketOwner``, so a
bucket of the same name in another account answers 403 instead of handing us its objects.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from environment import EnvironmentSpec, Snapshots
from render.snapshots import key_prefix, lifecycle_rules

from .aws_bootstrap import ensure_bucket, ensure_key, secure_bucket
from .aws_clients import AwsError, ClientError, error_code


def snapshot_key_alias(stack: str) -> str:
    return f"alias/vault-snapshots-{stack}"


@dataclass(frozen=True)
class SnapshotBucket:
    """A stack's snapshot bucket, once bootstrapped."""

    bucket: str
    """Bucket name (the spec's ``snapshots.bucket``)."""
    region: str
    """Its region."""
    created: bool
    """Whether this run created it (else it was ours and its settings were re-applied)."""
    key_alias: str
    """``alias/vault-snapshots-<stack>``: the bucket's default encryption key."""
    key_arn: str
    """That key's ARN."""
    key_created: bool
    """Whether this run created the key."""


@dataclass(frozen=True)
class Snapshot:
    """One snapshot object."""

    id: str
    """Its file name, ``vault-<stack>-<UTC time>.snap``: what ``fetch`` takes."""
    key: str
    """Its object key, ``<stack>/<id>``."""
    size: int
    """Bytes."""
    modified: datetime
    """When it was uploaded."""


def bootstrap_snapshot_bucket(spec: EnvironmentSpec, *, s3: Any, kms: Any, account: str) -> SnapshotBucket:
    """Creates or re-applies the stack's snapshot bucket and key; raises :class:`AwsError`."""
    snapshots = _snapshots(spec)
    created = ensure_bucket(snapshots.bucket, snapshots.region, account, s3,
                            taken_fix=f"choose another vault-platform:snapshots.bucket for stack {spec.stack}")
    alias = snapshot_key_alias(spec.stack)
    key_arn, key_created = ensure_key(alias, f"Raft snapshots of Vault stack {spec.stack} (vault-platform)",
                                      spec.stack, snapshots.region, kms)
    secure_bucket(snapshots.bucket, key_arn, account, s3)
    s3.put_bucket_lifecycle_configuration(Bucket=snapshots.bucket, ExpectedBucketOwner=account,
                                          LifecycleConfiguration={"Rules": lifecycle_rules(snapshots, spec.stack)})
    return SnapshotBucket(snapshots.bucket, snapshots.region, created, alias, key_arn, key_created)


def list_snapshots(spec: EnvironmentSpec, *, s3: Any, account: str) -> list[Snapshot]:
    """The stack's snapshots, newest first (``s3:ListBucket``)."""
    snapshots = _snapshots(spec)
    prefix = key_prefix(spec.stack)
    found = []
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(
                Bucket=snapshots.bucket, Prefix=prefix, ExpectedBucketOwner=account):
            for item in page.get("Contents", []):
                found.append(Snapshot(id=item["Key"][len(prefix):], key=item["Key"], size=int(item["Size"]),
                                      modified=item["LastModified"]))
    except ClientError as error:
        raise _read_error(spec, snapshots, error) from error
    return sorted(found, key=lambda snapshot: (snapshot.modified, snapshot.id), reverse=True)


def fetch_snapshot(spec: EnvironmentSpec, snapshot_id: str | None, output: Path | None, *, s3: Any,
                   account: str) -> tuple[Snapshot, Path, str]:
    """Downloads ``snapshot_id`` (the newest when ``None``) to ``output`` (default: its id in the
    working directory), never over an existing file; S3 checks the SHA-256 checksum the job stored
    (``ChecksumMode``), botocore refuses a body that does not match it. Returns the snapshot, the
    file and its SHA-256."""
    snapshots = _snapshots(spec)
    if snapshot_id is None:
        listed = list_snapshots(spec, s3=s3, account=account)
        if not listed:
            raise AwsError(f"no snapshot of stack {spec.stack} in s3://{snapshots.bucket}/{key_prefix(spec.stack)}")
        snapshot_id = listed[0].id
    if "/" in snapshot_id or snapshot_id in ("", ".", ".."):
        raise AwsError(f"{snapshot_id!r} is not a snapshot id: use a name `platformctl snapshots list "
                       f"{spec.stack}` prints")
    target = output if output is not None else Path(snapshot_id)
    if target.exists():
        raise AwsError(f"{target} already exists: remove it or pass --output")
    key = f"{key_prefix(spec.stack)}{snapshot_id}"
    try:
        response = s3.get_object(Bucket=snapshots.bucket, Key=key, ExpectedBucketOwner=account,
                                 ChecksumMode="ENABLED")
    except ClientError as error:
        if error_code(error) in ("NoSuchKey", "404"):
            raise AwsError(f"no snapshot {snapshot_id!r} of stack {spec.stack}: `platformctl snapshots list "
                           f"{spec.stack}` prints the ids") from error
        raise _read_error(spec, snapshots, error) from error
    digest = hashlib.sha256()
    partial = target.with_name(f".{target.name}.partial")
    with partial.open("xb") as file:
        for chunk in response["Body"].iter_chunks(1 << 20):
            digest.update(chunk)
            file.write(chunk)
    partial.rename(target)
    snapshot = Snapshot(id=snapshot_id, key=key, size=int(response["ContentLength"]),
                        modified=response["LastModified"])
    return snapshot, target, digest.hexdigest()


def _snapshots(spec: EnvironmentSpec) -> Snapshots:
    if spec.snapshots is None:
        raise AwsError(f"stack {spec.stack} declares no snapshots (vault-platform:snapshots)")
    return spec.snapshots


def _read_error(spec: EnvironmentSpec, snapshots: Snapshots, error: Any) -> AwsError:
    code = error_code(error)
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if code == "NoSuchBucket":
        return AwsError(f"S3 bucket {snapshots.bucket} does not exist: run `platformctl bootstrap-state "
                        f"{spec.stack} ...` to create it")
    if status == 403 or code in ("AccessDenied", "403"):
        return AwsError(f"S3 bucket {snapshots.bucket} belongs to another AWS account, or these credentials may "
                        "not read it (s3:ListBucket, s3:GetObject and kms:Decrypt on "
                        f"{snapshot_key_alias(spec.stack)})")
    return AwsError(f"cannot read S3 bucket {snapshots.bucket}: {error}")
