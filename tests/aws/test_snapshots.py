"""The snapshot bucket (created by ``platformctl bootstrap-state``) and ``platformctl snapshots list``
and ``fetch``, through the real CLI entry, against moto in-process and as a server on loopback:
what the bootstrap sets, an upload as the CronJob makes it, listing, fetching with the checksum
checked, the retention rule, encryption, a missing bucket and a bucket that is not ours.

The committed stacks are read for their bucket, region and retention: nothing here names them; a stack
without snapshots is the test stack dev (tests/stacks/)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from botocore.stub import Stubber  # type: ignore[import-untyped]

from environment import EnvironmentSpec, Snapshots
from platformctl.__main__ import main
from platformctl.adapters.aws_clients import AwsError, client
from platformctl.adapters.aws_snapshots import bootstrap_snapshot_bucket, list_snapshots, snapshot_key_alias
from platformctl.adapters.stackfile import read_stack, stacks
from platformctl.commands import bootstrap_command
from render.snapshots import iam_trust_condition, lifecycle_rules, uploader_iam_policy
from tests.support import TEST_STACKS, spec_of, spec_of_config

from .conftest import ACCOUNT, OTHER_ACCOUNT

STACK = "staging"


@pytest.fixture(scope="module")
def spec() -> EnvironmentSpec:
    spec = spec_of_config(read_stack(STACK))
    assert spec.snapshots is not None
    return spec


def snapshots_of(spec: EnvironmentSpec) -> Snapshots:
    assert spec.snapshots is not None
    return spec.snapshots


def bootstrap(capsys: pytest.CaptureFixture[str], stack: str = STACK) -> tuple[int, str, str]:
    code = main(["bootstrap-state", stack, "--bucket-prefix", "acme-vault-state", "--region", "eu-west-1"])
    out, err = capsys.readouterr()
    return code, out, err


def command(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["snapshots", *args])
    out, err = capsys.readouterr()
    return code, out, err


def snapshot_key_arn(spec: EnvironmentSpec) -> str:
    kms = client("kms", snapshots_of(spec).region)
    return str(kms.describe_key(KeyId=snapshot_key_alias(spec.stack))["KeyMetadata"]["Arn"])


def snapshot_report(spec: EnvironmentSpec, bucket: str, key: str) -> str:
    """What bootstrap-state prints about the snapshot bucket (see tests/aws/test_bootstrap.py)."""
    snapshots = snapshots_of(spec)
    trust = iam_trust_condition(spec)
    return (f"{spec.stack}: S3 bucket {snapshots.bucket} in {snapshots.region}: {bucket}; versioning on, SSE-KMS with "
            f"{snapshot_key_alias(spec.stack)} ({key}), public access blocked, HTTPS only, snapshots expire after "
            f"{snapshots.retention_days} days\n"
            f"\nThe snapshot job's IAM role {snapshots.role_arn} needs this policy (and nothing else):\n"
            + json.dumps(uploader_iam_policy(snapshots, spec.stack, snapshot_key_arn(spec)), indent=2) + "\n"
            f"and a trust policy for the cluster's OIDC provider (IRSA) requiring <issuer>:sub = {trust['sub']} "
            f"and <issuer>:aud = {trust['aud']}.\n")


def bootstrap_for_objects(spec: EnvironmentSpec) -> None:
    """The bootstrap, then its bucket policy set aside for object reads and writes: moto evaluates
    a bucket policy's conditions without the request's context (it does not know
    ``aws:SecureTransport``), so it takes the TLS-only Deny to match every object request, where S3
    denies only plain-HTTP ones. The statement itself is asserted in the bootstrap test."""
    snapshots = snapshots_of(spec)
    bootstrap_snapshot_bucket(spec, s3=client("s3", snapshots.region), kms=client("kms", snapshots.region),
                              account=ACCOUNT)
    client("s3", snapshots.region).delete_bucket_policy(Bucket=snapshots.bucket)


def upload(spec: EnvironmentSpec, name: str, body: bytes) -> None:
    """What the job's ``aws s3 cp --checksum-algorithm SHA256`` sends: no encryption header."""
    snapshots = snapshots_of(spec)
    client("s3", snapshots.region).put_object(Bucket=snapshots.bucket, Key=f"{spec.stack}/{name}", Body=body,
                                              ChecksumAlgorithm="SHA256")


# ---- the bucket


def test_bootstrap_creates_the_snapshot_bucket(aws: str, spec: EnvironmentSpec,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = bootstrap(capsys)
    assert (code, err) == (0, "")
    assert snapshot_report(spec, "created", "created") in out
    snapshots = snapshots_of(spec)
    s3 = client("s3", snapshots.region)
    assert s3.get_bucket_versioning(Bucket=snapshots.bucket)["Status"] == "Enabled"
    (rule,) = s3.get_bucket_encryption(Bucket=snapshots.bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms",
                                                          "KMSMasterKeyID": snapshot_key_arn(spec)}
    assert all(s3.get_public_access_block(Bucket=snapshots.bucket)["PublicAccessBlockConfiguration"].values())
    (statement,) = json.loads(s3.get_bucket_policy(Bucket=snapshots.bucket)["Policy"])["Statement"]
    assert (statement["Sid"], statement["Effect"], statement["Condition"]) == (
        "DenyInsecureTransport", "Deny", {"Bool": {"aws:SecureTransport": "false"}})
    # Its own key, not the state's: the job may encrypt with it and nothing else.
    assert snapshot_key_arn(spec) != client("kms", snapshots.region).describe_key(
        KeyId=f"alias/pulumi-{spec.stack}")["KeyMetadata"]["Arn"]


def test_the_retention_is_the_buckets_lifecycle_rule(aws: str, spec: EnvironmentSpec,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert bootstrap(capsys)[0] == 0
    snapshots = snapshots_of(spec)
    (rule,) = client("s3", snapshots.region).get_bucket_lifecycle_configuration(Bucket=snapshots.bucket)["Rules"]
    assert rule["Expiration"] == {"Days": snapshots.retention_days}
    assert rule["Filter"] == {"Prefix": f"{spec.stack}/"}
    assert rule["NoncurrentVersionExpiration"]["NoncurrentDays"] == 7
    assert rule["Status"] == "Enabled"
    assert [rule] == lifecycle_rules(snapshots, spec.stack)


def test_a_second_run_repairs_drift(aws: str, spec: EnvironmentSpec, capsys: pytest.CaptureFixture[str]) -> None:
    assert bootstrap(capsys)[0] == 0
    snapshots = snapshots_of(spec)
    s3 = client("s3", snapshots.region)
    s3.delete_bucket_lifecycle(Bucket=snapshots.bucket)
    s3.delete_bucket_encryption(Bucket=snapshots.bucket)
    code, out, _ = bootstrap(capsys)
    assert code == 0
    assert snapshot_report(spec, "exists, ours", "exists") in out
    assert s3.get_bucket_lifecycle_configuration(Bucket=snapshots.bucket)["Rules"][0]["Expiration"] == {
        "Days": snapshots.retention_days}
    assert s3.get_bucket_encryption(Bucket=snapshots.bucket)["ServerSideEncryptionConfiguration"]["Rules"][0][
        "ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"


def test_a_snapshot_bucket_name_taken_by_another_account_is_refused(
        aws: str, spec: EnvironmentSpec, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    snapshots = snapshots_of(spec)
    with monkeypatch.context() as other:
        other.setenv("MOTO_ACCOUNT_ID", OTHER_ACCOUNT)
        client("s3", snapshots.region).create_bucket(
            Bucket=snapshots.bucket, CreateBucketConfiguration={"LocationConstraint": snapshots.region})
    assert bootstrap(capsys)[::2] == (1, (
        f"error: {STACK}: S3 bucket {snapshots.bucket} already exists and belongs to another AWS account (bucket "
        f"names are global): choose another vault-platform:snapshots.bucket for stack {STACK}\n"))


def test_a_stack_without_snapshots_gets_no_snapshot_bucket(aws: str, capsys: pytest.CaptureFixture[str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # The test stack dev (tests/stacks/) takes no snapshots; a committed stack may start to.
    spec = spec_of("dev")
    assert spec.snapshots is None
    monkeypatch.setattr(bootstrap_command, "stacks", lambda: stacks(TEST_STACKS))
    monkeypatch.setattr(bootstrap_command, "spec_or_report", lambda stack: spec)
    code, out, _ = bootstrap(capsys, stack="dev")
    assert code == 0
    assert "snapshot" not in out
    assert [b["Name"] for b in client("s3", "eu-west-1").list_buckets()["Buckets"]] == ["acme-vault-state-dev"]


# ---- what the job uploads, listed and fetched


def test_an_upload_without_encryption_headers_is_encrypted_with_the_snapshot_key(
        aws: str, spec: EnvironmentSpec, capsys: pytest.CaptureFixture[str]) -> None:
    bootstrap_for_objects(spec)
    upload(spec, f"vault-{STACK}-20261128T100500Z.snap", b"raft snapshot")
    snapshots = snapshots_of(spec)
    head = client("s3", snapshots.region).head_object(Bucket=snapshots.bucket,
                                                      Key=f"{STACK}/vault-{STACK}-20261128T100500Z.snap")
    assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", snapshot_key_arn(spec))


def test_list_shows_the_stacks_snapshots_newest_first(aws: str, spec: EnvironmentSpec,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    bootstrap_for_objects(spec)
    names = [f"vault-{STACK}-20261128T0{hour}0500Z.snap" for hour in (6, 7, 8)]
    for name in names:
        upload(spec, name, name.encode())
    snapshots = snapshots_of(spec)
    # Not the stack's: another prefix in the same bucket.
    client("s3", snapshots.region).put_object(Bucket=snapshots.bucket, Key="other/x.snap", Body=b"x")
    listed = list_snapshots(spec, s3=client("s3", snapshots.region), account=ACCOUNT)
    assert listed[0].id == names[-1]
    assert sorted(snapshot.id for snapshot in listed) == names
    code, out, err = command(capsys, "list", STACK)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == (f"{STACK}: 3 snapshots in s3://{snapshots.bucket}/{STACK}/ (newest first; kept "
                        f"{snapshots.retention_days} days)")
    assert [line.split()[0] for line in lines[1:]] == [snapshot.id for snapshot in listed]
    assert all(line.endswith(f"{len(names[0])} bytes") for line in lines[1:])


def test_list_of_an_empty_bucket_fails(aws: str, spec: EnvironmentSpec, capsys: pytest.CaptureFixture[str]) -> None:
    assert bootstrap(capsys)[0] == 0
    assert command(capsys, "list", STACK) == (
        1, "", f"error: {STACK}: no snapshot in s3://{snapshots_of(spec).bucket}/{STACK}/\n")


def test_fetch_downloads_the_newest_with_its_checksum_checked(
        aws: str, spec: EnvironmentSpec, capsys: pytest.CaptureFixture[str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    bootstrap_for_objects(spec)
    older, newer = f"vault-{STACK}-20261128T060500Z.snap", f"vault-{STACK}-20261128T070500Z.snap"
    upload(spec, older, b"older")
    upload(spec, newer, b"newer" * 1000)
    monkeypatch.chdir(tmp_path)
    code, out, err = command(capsys, "fetch", STACK)
    assert (code, err) == (0, "")
    assert (tmp_path / newer).read_bytes() == b"newer" * 1000
    assert f"-> {newer}; sha256 {hashlib.sha256(b'newer' * 1000).hexdigest()}, checked by S3" in out
    # By id, to a chosen file; never over an existing one.
    assert command(capsys, "fetch", STACK, older, "--output", "restore.snap")[0] == 0
    assert (tmp_path / "restore.snap").read_bytes() == b"older"
    assert command(capsys, "fetch", STACK, older, "--output", "restore.snap") == (
        1, "", f"error: {STACK}: restore.snap already exists: remove it or pass --output\n")


@pytest.mark.parametrize("snapshot_id", ["vault-staging-19990101T000000Z.snap", "../prod/x.snap"])
def test_fetch_of_an_unknown_id_fails(aws: str, spec: EnvironmentSpec, capsys: pytest.CaptureFixture[str],
                                      tmp_path: Path, snapshot_id: str) -> None:
    bootstrap_for_objects(spec)
    code, out, err = command(capsys, "fetch", STACK, snapshot_id, "--output", str(tmp_path / "x"))
    assert (code, out) == (1, "")
    assert err.startswith(f"error: {STACK}: ")
    assert "snapshots list staging" in err
    assert not (tmp_path / "x").exists()


def test_a_missing_bucket(aws: str, spec: EnvironmentSpec, capsys: pytest.CaptureFixture[str]) -> None:
    bucket = snapshots_of(spec).bucket
    expected = (f"error: {STACK}: S3 bucket {bucket} does not exist: run `platformctl bootstrap-state {STACK} ...` "
                "to create it\n")
    assert command(capsys, "list", STACK) == (1, "", expected)
    assert command(capsys, "fetch", STACK) == (1, "", expected)


def test_a_bucket_of_another_account_is_not_read() -> None:
    """S3 answers 403 to a read naming our account as ``ExpectedBucketOwner`` when the bucket is
    another account's; moto does not model that check, so the answer is replayed through botocore's
    Stubber on a client that sends nothing."""
    spec = spec_of_config(read_stack(STACK))
    snapshots = snapshots_of(spec)
    s3 = client("s3", snapshots.region)
    with Stubber(s3) as stub:
        stub.add_client_error("list_objects_v2", "AccessDenied", http_status_code=403, expected_params={
            "Bucket": snapshots.bucket, "Prefix": f"{STACK}/", "ExpectedBucketOwner": ACCOUNT})
        with pytest.raises(AwsError) as raised:
            list_snapshots(spec, s3=s3, account=ACCOUNT)
    assert str(raised.value) == (
        f"S3 bucket {snapshots.bucket} belongs to another AWS account, or these credentials may not read it "
        f"(s3:ListBucket, s3:GetObject and kms:Decrypt on alias/vault-snapshots-{STACK})")


def test_a_stack_without_snapshots_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert command(capsys, "list", "dev") == (
        2, "", "error: stack dev declares no snapshots (vault-platform:snapshots)\n")
