"""Raft snapshots on a schedule: the job's Vault policy and Kubernetes auth role, its service
account (mapped to its IAM role through IRSA) and the CronJob (:mod:`components.render.snapshots`)."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s
import pulumi_vault as vault

from components.environment import EnvironmentSpec
from components.environment.operations import SNAPSHOT_IDENTITY
from components.options import children_of
from components.render.snapshots import SNAPSHOT_TOKEN_TTL, cron_job, service_account, snapshot_policy


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

    def __init__(self, name: str, spec: EnvironmentSpec, auth_path: pulumi.Input[str],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vault-platform:snapshots:RaftSnapshots", name, None, opts)
        child = children_of(self, opts)
        policy = vault.Policy(f"{name}-policy", name=SNAPSHOT_IDENTITY, policy=snapshot_policy(), opts=child)
        vault.kubernetes.AuthBackendRole(
            f"{name}-role",
            backend=auth_path,
            role_name=SNAPSHOT_IDENTITY,
            bound_service_account_names=[SNAPSHOT_IDENTITY],
            bound_service_account_namespaces=[spec.jobs_namespace],
            audience=spec.kubernetes_auth_audience,
            token_policies=[policy.name],
            token_no_default_policy=True,
            token_ttl=SNAPSHOT_TOKEN_TTL,
            token_max_ttl=SNAPSHOT_TOKEN_TTL,
            token_type="service",  # a batch token cannot be revoked
            opts=child,
        )
        account = service_account(spec)
        k8s.core.v1.ServiceAccount(f"{name}-service-account", metadata=account["metadata"], opts=child)
        job = cron_job(spec)
        k8s.batch.v1.CronJob(f"{name}-cronjob", metadata=job["metadata"], spec=job["spec"], opts=child)
        self.schedule = pulumi.Output.from_input(job["spec"]["schedule"])
        self.register_outputs({"schedule": self.schedule})
