"""Raft snapshots on a schedule: the job's Vault policy and Kubernetes auth role, its service
account (mapped to its IAM role through IRSA) and the CronJob (:mod:`render.snapshots`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_vault as vault

from components.options import children_of
from environment.operations import SNAPSHOT_IDENTITY
from render.snapshots import SNAPSHOT_TOKEN_TTL, snapshot_policy


@dataclass(frozen=True)
class RaftSnapshotsArgs:
    """What :class:`RaftSnapshots` declares."""

    auth_path: pulumi.Input[str]
    """Mount path of the Kubernetes auth method the job logs in with (its role goes there)."""
    jobs_namespace: str
    """Where the job runs (``EnvironmentSpec.jobs_namespace``): its role admits its service account there."""
    audience: str
    """Audience the cluster's service account tokens carry (``kubernetesAuth.audience``)."""
    service_account: Mapping[str, Any]
    """The job's service account manifest (``render.snapshots.service_account``)."""
    cron_job: Mapping[str, Any]
    """The CronJob's manifest (``render.snapshots.cron_job``)."""


class RaftSnapshots(pulumi.ComponentResource):
    """Saves a Raft snapshot every interval and uploads it to the stack's S3 bucket.

    Vault side: the ``vault-snapshot`` policy (read ``sys/storage/raft/snapshot``, and revoke its own
    token) and the Kubernetes auth role of the same name, bound to exactly the job's service account,
    issuing service tokens of that policy alone (no ``default`` policy), which the run revokes.
    Kubernetes side: the service account and the CronJob, on the explicit Kubernetes provider the
    options carry.
    """

    schedule: pulumi.Output[str]
    """The CronJob's schedule (UTC)."""

    def __init__(self, name: str, args: RaftSnapshotsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vault-platform:snapshots:RaftSnapshots", name, None, opts)
        child = children_of(self, opts)
        policy = vault.Policy(f"{name}-policy", name=SNAPSHOT_IDENTITY, policy=snapshot_policy(), opts=child)
        vault.kubernetes.AuthBackendRole(
            f"{name}-role",
            backend=args.auth_path,
            role_name=SNAPSHOT_IDENTITY,
            bound_service_account_names=[SNAPSHOT_IDENTITY],
            bound_service_account_namespaces=[args.jobs_namespace],
            audience=args.audience,
            token_policies=[policy.name],
            token_no_default_policy=True,
            token_ttl=SNAPSHOT_TOKEN_TTL,
            token_max_ttl=SNAPSHOT_TOKEN_TTL,
            token_type="service",  # a batch token cannot be revoked
            opts=child,
        )
        k8s.core.v1.ServiceAccount(f"{name}-service-account", metadata=args.service_account["metadata"], opts=child)
        job = args.cron_job
        k8s.batch.v1.CronJob(f"{name}-cronjob", metadata=job["metadata"], spec=job["spec"], opts=child)
        self.schedule = pulumi.Output.from_input(job["spec"]["schedule"])
        self.register_outputs({"schedule": self.schedule})
