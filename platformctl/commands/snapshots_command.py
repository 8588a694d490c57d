"""``platformctl snapshots list <stack>`` and ``platformctl snapshots fetch <stack> [ID]``: the
stack's Raft snapshots in its S3 bucket (see :mod:`platformctl.adapters.aws_snapshots`), newest first, and
one of them downloaded for ``vault operator raft snapshot restore``. Exit 0 on success, 1 on an AWS
failure or when there is no snapshot, 2 when the stack or its spec cannot be read."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from environment import EnvironmentSpec
from platformctl.adapters.aws_clients import AwsError, BotoCoreError, ClientError, account_id, client
from platformctl.adapters.aws_snapshots import fetch_snapshot, list_snapshots
from platformctl.adapters.stackfile import spec_or_report, stacks

NAME = "snapshots"
HELP = "list the stack's Raft snapshots in S3, or fetch one for a restore"


def configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="the stack's snapshots, newest first")
    listing.add_argument("stack", help=f"stack name ({', '.join(stacks())})")
    fetch = actions.add_parser("fetch", help="download a snapshot (the newest by default), checksum verified")
    fetch.add_argument("stack", help=f"stack name ({', '.join(stacks())})")
    fetch.add_argument("id", nargs="?", help="a snapshot id from `snapshots list` (default: the newest)")
    fetch.add_argument("--output", type=Path, help="where to write it (default: the id, in this directory)")


def run(args: argparse.Namespace) -> int:
    if (spec := spec_or_report(args.stack)) is None:
        return 2
    if spec.snapshots is None:
        print(f"error: stack {spec.stack} declares no snapshots (vault-platform:snapshots)", file=sys.stderr)
        return 2
    try:
        return _list(spec) if args.action == "list" else _fetch(spec, args.id, args.output)
    except (AwsError, ClientError, BotoCoreError) as error:
        print(f"error: {spec.stack}: {error}", file=sys.stderr)
        return 1


def _list(spec: EnvironmentSpec) -> int:
    assert spec.snapshots is not None
    region = spec.snapshots.region
    found = list_snapshots(spec, s3=client("s3", region), account=account_id(region))
    where = f"s3://{spec.snapshots.bucket}/{spec.stack}/"
    if not found:
        print(f"error: {spec.stack}: no snapshot in {where}", file=sys.stderr)
        return 1
    print(f"{spec.stack}: {len(found)} snapshot{'s' if len(found) > 1 else ''} in {where} (newest first; kept "
          f"{spec.snapshots.retention_days} days)")
    for snapshot in found:
        print(f"  {snapshot.id}  {snapshot.modified.strftime('%Y-%m-%d %H:%M:%S UTC')}  {snapshot.size} bytes")
    return 0


def _fetch(spec: EnvironmentSpec, snapshot_id: str | None, output: Path | None) -> int:
    assert spec.snapshots is not None
    region = spec.snapshots.region
    snapshot, path, sha256 = fetch_snapshot(spec, snapshot_id, output, s3=client("s3", region),
                                            account=account_id(region))
    print(f"{spec.stack}: {snapshot.id} ({snapshot.size} bytes, uploaded "
          f"{snapshot.modified.strftime('%Y-%m-%d %H:%M:%S UTC')}) -> {path}; sha256 {sha256}, checked by S3")
    print(f"Restore it: README, 'Backups and restore' (vault operator raft snapshot restore {path})")
    return 0
