"""The whole platform for one environment: the cluster layer, then the Vault configuration layer."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.acl_policies import AclPolicies
from components.audit import AuditDevices
from components.autopilot import Autopilot
from components.cluster import VaultCluster, VaultClusterArgs
from components.database import DatabaseEngine, DatabaseEngineArgs
from components.dev_postgres import DevPostgres, DevPostgresArgs
from components.identity import GithubActionsAuth, PeopleAuth
from components.kubernetes_auth import KubernetesAuth, KubernetesAuthArgs
from components.kv import KvEngine, KvEngineArgs
from components.monitoring import MetricsAccess, MetricsAccessArgs, VaultAlerts, VaultAlertsArgs
from components.mounts import MountSettings
from components.options import children_of
from components.pki import PkiEngine, PkiEngineArgs
from components.snapshots import RaftSnapshots, RaftSnapshotsArgs
from components.transit import TransitEngine, TransitEngineArgs
from components.vault_provider import vault_provider
from environment import EnvironmentSpec, load_policy_files
from render.acl import app_policy, declared_policies
from render.alerts import prometheus_rule_groups
from render.annotations import injector_annotations
from render.helm_values import helm_values
from render.metrics import metrics_service, server_network_policy
from render.snapshots import cron_job, service_account

NEXT_STEPS = (
    "Vault is not configured yet: the stack states vault-platform:clusterOnly, so only the cluster layer "
    "was declared. Initialize Vault (README, 'Bringing up a new environment'), then run "
    "`pulumi config set vault:address <address>` and `pulumi config set --secret vault:token <token>`, "
    "remove vault-platform:clusterOnly from the stack file, and run `pulumi up` again to declare auth, "
    "policies and secrets engines."
)


PLATFORM_NAME = "vault"
"""The name ``__main__`` gives an environment's :class:`VaultPlatform`; its children's names start with it."""


class VaultPlatform(pulumi.ComponentResource):
    """Vault on Kubernetes for one environment, configured once Vault is initialized."""

    address: pulumi.Output[str]
    """Vault's API address: in the cluster for the Vault this stack deploys, else ``vault:address``."""
    annotations: dict[str, dict[str, str]]
    """Vault Agent injector annotations per application."""
    next_steps: str | None
    """What to do next while Vault is not configured yet, else ``None``."""
    pki_csr: pulumi.Output[str] | None
    """The intermediate CA's CSR, for an external root to sign, when the spec asks for one."""

    def __init__(self, name: str, spec: EnvironmentSpec, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vault-platform:platform:VaultPlatform", name, None, opts)
        child = children_of(self, opts)
        # An external Vault needs the application cluster only for the snapshot job.
        kubernetes = k8s.Provider(f"{name}-kubernetes", opts=child) if (
            spec.cluster is not None or spec.snapshots is not None) else None
        servers: list[pulumi.Resource] = []  # the Vault configuration waits for the Helm release, if any
        dev_passwords: dict[str, pulumi.Output[str]] = {}
        dev_databases: list[pulumi.Resource] = []
        if spec.cluster is not None:
            assert kubernetes is not None
            on_cluster = child.merge(pulumi.ResourceOptions(providers={"kubernetes": kubernetes}))
            cluster = VaultCluster(f"{name}-cluster", VaultClusterArgs(
                cluster=spec.cluster, protect=spec.protect, chart_values=helm_values(spec)), opts=on_cluster)
            servers.append(cluster.release)
            self.address = cluster.address
            if spec.monitoring is not None:
                VaultAlerts(f"{name}-alerts", VaultAlertsArgs(
                    namespace=cluster.namespace, release_name=spec.cluster.release_name, monitoring=spec.monitoring,
                    rule_groups=prometheus_rule_groups(spec)), opts=on_cluster)
                MetricsAccess(f"{name}-metrics", MetricsAccessArgs(
                    namespace=cluster.namespace, service=metrics_service(spec),
                    network_policy=server_network_policy(spec)), opts=on_cluster)
            if spec.database is not None:
                for connection in spec.database.connections:
                    if connection.in_cluster:
                        postgres = DevPostgres(f"{name}-postgres-{connection.name}", DevPostgresArgs(
                            connection=connection, roles=spec.database.roles, static_roles=spec.database.static_roles),
                            opts=on_cluster)
                        dev_passwords[connection.name] = postgres.admin_password
                        dev_databases.append(postgres)
        else:
            assert spec.vault is not None  # an external Vault is configured from the first `up` on
            self.address = pulumi.Output.from_input(spec.vault.address)
        self.annotations = {app.name: injector_annotations(app, spec) for app in spec.declared_apps}
        self.next_steps = None
        self.pki_csr = None
        if spec.vault is None:
            self.next_steps = NEXT_STEPS
        else:
            provider = vault_provider(f"{name}-vault", spec.vault, child)
            # Waits name resources, not components: a component in depends_on is expanded into all its
            # children again for every resource that waits, and these are the ones that matter.
            on_vault = child.merge(pulumi.ResourceOptions(providers={"vault": provider}, depends_on=servers))
            # Audit devices first: nothing is configured before it can be audited.
            audit = AuditDevices(f"{name}-audit", spec.audit, spec.keeps, opts=on_vault)
            on_vault = pulumi.ResourceOptions(parent=self, providers={"vault": provider}, depends_on=audit.devices)
            documents = [*load_policy_files(), *declared_policies(spec),
                         *(app_policy(app, spec) for app in spec.declared_apps)]
            policies = AclPolicies(f"{name}-policies", documents, opts=on_vault)
            # Then the IaC's own policy: Vault reads a token's policies at each request, so a grant that a
            # change adds together with the resource needing it is in place before that resource's call.
            # (The audit devices need none a change could add: vault-iac grants sys/audit/* whole.)
            on_vault = pulumi.ResourceOptions(parent=self, providers={"vault": provider},
                                              depends_on=[policies.iac_policy])
            auth = KubernetesAuth(f"{name}-kubernetes-auth", KubernetesAuthArgs(
                path=spec.kubernetes_auth_path, apps=spec.declared_apps, external=spec.external, keeps=spec.keeps),
                opts=on_vault)
            if spec.snapshots is not None:
                assert kubernetes is not None
                # Its Kubernetes objects go through the cluster's provider, its role and policy through Vault's.
                RaftSnapshots(f"{name}-snapshots", RaftSnapshotsArgs(
                    auth_path=auth.path, jobs_namespace=spec.jobs_namespace, audience=spec.kubernetes_auth_audience,
                    service_account=service_account(spec), cron_job=cron_job(spec)), opts=on_vault.merge(
                    pulumi.ResourceOptions(providers={"kubernetes": kubernetes, "vault": provider})))
            if spec.github_actions is not None:
                GithubActionsAuth(f"{name}-github-actions", spec.github_actions, spec.keeps, opts=on_vault)
            if spec.people is not None:
                PeopleAuth(f"{name}-people", spec.people, spec.keeps, opts=on_vault)
            mounts = MountSettings(clear_keys=spec.audit.clear_keys_of, keeps=spec.keeps)
            KvEngine(f"{name}-kv", KvEngineArgs(kv=spec.kv, mounts=mounts, declares=spec.declares), opts=on_vault)
            if spec.autopilot is not None:
                Autopilot(f"{name}-autopilot", spec.autopilot, opts=on_vault)
            if spec.database is not None:
                # verify_connection needs the dev database up before the connection is written.
                DatabaseEngine(f"{name}-database",
                               DatabaseEngineArgs(database=spec.database, mounts=mounts, declares=spec.declares,
                                                  generated_passwords=dev_passwords),
                               opts=on_vault.merge(pulumi.ResourceOptions(depends_on=dev_databases)))
            if spec.transit is not None:
                TransitEngine(f"{name}-transit", TransitEngineArgs(transit=spec.transit, mounts=mounts), opts=on_vault)
            if spec.pki is not None:
                pki = PkiEngine(f"{name}-pki", PkiEngineArgs(pki=spec.pki, mounts=mounts), opts=on_vault)
                if spec.pki.root is None:  # an external root signs the intermediate
                    self.pki_csr = pki.csr
        self.register_outputs({"address": self.address})


def moved_from_platform(kind: str | None, name: str) -> pulumi.Alias:
    """Where ``pulumi state move`` leaves, in a team's stack, what its environment's stack declared for an
    application before it stated teamStacks (``platformctl move-to-team-stacks``): ``<platform>-<kind>-<name>``,
    a child of VaultPlatform's component for ``kind``, or, with ``kind`` ``None``, ``<platform>-<name>``, a
    child of VaultPlatform itself (its Vault provider, which the move copies), each now a child of the stack.

    The move makes the stack the parent of a resource whose parent stays behind, and gives it the URN of
    that place (pulumi/pulumi pkg/cmd/pulumi/state/state_move.go, ``rewriteURNs``, since its pull request
    21953); the engine matches this alias, of no parent, to that URN (pkg/resource/deploy/step_generator.go,
    ``collapseAliasToUrn``). The provider's alias keeps the copy too: without it, the team's stack creates
    a provider and deletes the copy (Vault sees neither), and the engine replaces a resource whose
    explicit provider changes unless the new provider's ``DiffConfig`` asks for nothing
    (step_generator.go, ``providerChanged``)."""
    return pulumi.Alias(name="-".join([PLATFORM_NAME, *([kind] if kind else []), name]),
                        parent=pulumi.ROOT_STACK_RESOURCE)
