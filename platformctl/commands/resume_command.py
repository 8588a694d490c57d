"""``platformctl resume <stack>``: readies a stack (an environment's or a team's) whose last ``pulumi up``
died midway for the next one, through the CLI alone, never an edit of the state (:mod:`platformctl.core.resume`).
The workflows run it before every ``up``; with nothing pending it changes nothing.

It releases the dead run's lock (``pulumi cancel``: the workflow's concurrency group runs one job per
stack at a time, so no live run holds it), reads the state (``pulumi stack export``), asks Vault which
pending KV secrets the lost run wrote (``<mount>/metadata/<name>``: their versions, never their
values), deletes those writes, and drops the pending creates (``pulumi refresh --clear-pending-creates``).
Vault is reached as ``pulumi up`` reaches it: the stack's ``vault:address`` and CA, and the job's
token (``VAULT_TOKEN``, else the file ``TERRAFORM_VAULT_TOKEN_FILENAME`` names). Exit 0 when the
stack is ready, 1 when the CLI or Vault fails, 2 when the stack is refused."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import hvac  # type: ignore[import-untyped]
from hvac.exceptions import InvalidPath, VaultError  # type: ignore[import-untyped]

from environment.vault_access import TOKEN_FILE_VARIABLE
from platformctl.adapters.pulumi_cli import pulumi
from platformctl.adapters.stackfile import spec_or_report, stacks
from platformctl.core.resume import PendingSecret, clear_arguments, lost_write, pending_creates

from .rollout_command import ca_bundle

NAME = "resume"
HELP = "ready a stack whose last `pulumi up` died midway for the next one (the workflows run it before each up)"
NO_LOCK = "no update is currently running"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stack", help=f"the stack: an environment's ({', '.join(stacks())}) or a team's")


def run(args: argparse.Namespace) -> int:
    spec = spec_or_report(args.stack)
    if spec is None:
        return 2
    cancel = pulumi("cancel", "--stack", args.stack, "--yes")
    if cancel.returncode != 0 and NO_LOCK not in cancel.stdout + cancel.stderr:
        return _failed(args.stack, "pulumi cancel", cancel)
    export = pulumi("stack", "export", "--stack", args.stack)
    if export.returncode != 0:
        return _failed(args.stack, "pulumi stack export", export)
    secrets, count = pending_creates(json.loads(export.stdout).get("deployment") or {})
    if count == 0:
        print(f"{args.stack}: nothing pending")
        return 0
    try:
        client = _client(spec.vault.address if spec.vault else "", ca_bundle(spec, None))
        lost = [secret for secret in secrets if lost_write(secret, _metadata(client, secret))]
        for secret in lost:
            client.secrets.kv.v2.delete_metadata_and_all_versions(path=secret.name, mount_point=secret.mount)
    except (VaultError, OSError) as error:
        print(f"error: {args.stack}: Vault: {error}", file=sys.stderr)
        return 1
    cleared = pulumi(*clear_arguments(args.stack))
    if cleared.returncode != 0:
        return _failed(args.stack, "pulumi refresh", cleared)
    print(f"{args.stack}: {count} pending create(s) cleared for the next up; "
          f"{len(lost)} secret(s) the lost run wrote deleted, to be written again as their first version")
    return 0


def _metadata(client: hvac.Client, secret: PendingSecret) -> dict[str, Any] | None:
    try:
        metadata: dict[str, Any] = client.secrets.kv.v2.read_secret_metadata(path=secret.name,
                                                                              mount_point=secret.mount)["data"]
    except InvalidPath:
        return None
    return metadata


def _client(address: str, ca_cert: str | None) -> hvac.Client:
    token = os.environ.get("VAULT_TOKEN")
    if not token and os.environ.get(TOKEN_FILE_VARIABLE):
        token = Path(os.environ[TOKEN_FILE_VARIABLE]).read_text().strip()
    return hvac.Client(url=address, token=token, verify=ca_cert if ca_cert else True)


def _failed(stack: str, what: str, result: subprocess.CompletedProcess[str]) -> int:
    print(f"error: {stack}: {what} exited {result.returncode}:\n{result.stdout[-3000:]}{result.stderr[-3000:]}",
          file=sys.stderr)
    return 1
