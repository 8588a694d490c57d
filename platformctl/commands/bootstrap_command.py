"""``platformctl bootstrap-state <stack> --bucket-prefix <prefix> --region <region>``: creates or
re-applies, idempotently, the stack's Pulumi state bucket ``<prefix>-<stack>`` and its secrets
provider key ``alias/pulumi-<stack>`` (see :mod:`platformctl.adapters.aws_bootstrap`), then prints the
``pulumi login`` and ``pulumi stack init`` lines to use. When the stack's spec declares snapshots, also
the snapshot bucket and its key (:mod:`platformctl.adapters.aws_snapshots`), and the IAM policy and trust
conditions the snapshot job's role needs. Exit 0 on success, 1 on an AWS failure,
2 on bad arguments."""

from __future__ import annotations

import argparse
import json
import sys

from environment import EnvironmentSpec
from platformctl.adapters.aws_bootstrap import bootstrap_state, bucket_name
from platformctl.adapters.aws_clients import AwsError, BotoCoreError, ClientError, account_id, client
from platformctl.adapters.aws_snapshots import SnapshotBucket, bootstrap_snapshot_bucket
from platformctl.adapters.stackfile import spec_or_report, stacks
from render.snapshots import iam_trust_condition, uploader_iam_policy

NAME = "bootstrap-state"
HELP = "create (idempotently) a stack's S3 state bucket and KMS secrets key, and print how to use them"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stack", help=f"stack name ({', '.join(stacks())})")
    parser.add_argument("--bucket-prefix", required=True,
                        help="the state bucket is <prefix>-<stack>; S3 bucket names are global, so include "
                             "something unique to your organization")
    parser.add_argument("--region", required=True, help="AWS region of the bucket and the key, e.g. eu-west-1")


def run(args: argparse.Namespace) -> int:
    if args.stack not in stacks():
        print(f"error: no stack {args.stack!r} (stacks: {', '.join(stacks())})", file=sys.stderr)
        return 2
    try:
        bucket = bucket_name(args.bucket_prefix, args.stack)
    except AwsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if (spec := spec_or_report(args.stack)) is None:
        return 2
    try:
        backend = bootstrap_state(args.stack, bucket, args.region, s3=client("s3", args.region),
                                  kms=client("kms", args.region), account=account_id(args.region))
        snapshots = None
        if spec.snapshots is not None:
            region = spec.snapshots.region
            snapshots = bootstrap_snapshot_bucket(spec, s3=client("s3", region), kms=client("kms", region),
                                                  account=account_id(region))
    except AwsError as error:
        print(f"error: {args.stack}: {error}", file=sys.stderr)
        return 1
    except (ClientError, BotoCoreError) as error:
        print(f"error: {args.stack}: {error}", file=sys.stderr)
        return 1
    print(f"{backend.stack}: S3 bucket {backend.bucket} in {backend.region}: "
          f"{'created' if backend.bucket_created else 'exists, ours'}; versioning on, SSE-KMS with "
          f"{backend.key_alias}, public access blocked, HTTPS only")
    print(f"{backend.stack}: KMS key {backend.key_alias} ({backend.key_arn}): "
          f"{'created' if backend.key_created else 'exists'}; rotation on")
    if snapshots is not None:
        _print_snapshots(spec, snapshots)
    print("\nUse it:")
    print(f"  {backend.login_command}")
    print(f"  {backend.stack_init_command}")
    return 0


def _print_snapshots(spec: EnvironmentSpec, bucket: SnapshotBucket) -> None:
    assert spec.snapshots is not None
    print(f"{spec.stack}: S3 bucket {bucket.bucket} in {bucket.region}: "
          f"{'created' if bucket.created else 'exists, ours'}; versioning on, SSE-KMS with {bucket.key_alias} "
          f"({'created' if bucket.key_created else 'exists'}), public access blocked, HTTPS only, snapshots "
          f"expire after {spec.snapshots.retention_days} days")
    trust = iam_trust_condition(spec)
    print(f"\nThe snapshot job's IAM role {spec.snapshots.role_arn} needs this policy (and nothing else):")
    print(json.dumps(uploader_iam_policy(spec.snapshots, spec.stack, bucket.key_arn), indent=2))
    print("and a trust policy for the cluster's OIDC provider (IRSA) requiring "
          f"<issuer>:sub = {trust['sub']} and <issuer>:aud = {trust['aud']}.")
