"""A small in-cluster PostgreSQL for the dev tier, so dynamic credentials work on a local cluster."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.options import children_of
from environment import Connection, DatabaseRole, StaticRole
from render.admin_setup import (
    IN_CLUSTER_SUPERUSER,
    ConnectionNeeds,
    quote_identifier,
    quote_literal,
    setup_statements,
)

NAMESPACE = "postgres"
IMAGE = "postgres:15.10-bookworm"
BOOTSTRAP_SUPERUSER = IN_CLUSTER_SUPERUSER


@dataclass(frozen=True)
class DevPostgresArgs:
    """What :class:`DevPostgres` declares."""

    connection: Connection
    """The in-cluster connection it serves: its name, database, port and admin user."""
    roles: tuple[DatabaseRole, ...]
    """The dynamic roles of the stack's database section (the set-up grants what they need)."""
    static_roles: tuple[StaticRole, ...] = ()
    """The static roles of the stack's database section (the set-up creates their users)."""


class DevPostgres(pulumi.ComponentResource):
    """PostgreSQL 15 with the Vault admin role set up exactly as ``platformctl db-setup`` prints it.

    Its data lives in an ``emptyDir``: dev data is disposable, and a new pod (not a container restart)
    starts empty and runs the set-up again.
    """

    admin_password: pulumi.Output[str]
    """The generated password of ``connection.admin_user`` (a secret)."""

    def __init__(self, name: str, args: DevPostgresArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vault-platform:database:DevPostgres", name, None, opts)
        connection = args.connection
        child = children_of(self, opts)
        labels: dict[str, pulumi.Input[str]] = {
            "app.kubernetes.io/name": "postgres", "app.kubernetes.io/instance": connection.name}
        superuser_password = random.RandomPassword(f"{name}-superuser-password", length=32, special=False,
                                                   opts=child)
        admin_password = random.RandomPassword(f"{name}-admin-password", length=32, special=False, opts=child)
        namespace = k8s.core.v1.Namespace(f"{name}-namespace", metadata={"name": NAMESPACE}, opts=child)
        setup = setup_statements(ConnectionNeeds.of(connection, args.roles, args.static_roles))
        init_sql = admin_password.result.apply(
            lambda password: "\n".join([
                *setup,
                f"ALTER ROLE {quote_identifier(connection.admin_user)} WITH PASSWORD {quote_literal(password)};",
            ]) + "\n"
        )
        secret = k8s.core.v1.Secret(
            f"{name}-credentials",
            metadata={"name": f"{connection.name}-credentials", "namespace": namespace.metadata["name"]},
            string_data={
                "POSTGRES_PASSWORD": superuser_password.result,
                # Runs once, on an empty data directory, as the bootstrap superuser.
                "10-vault-admin.sql": init_sql,
            },
            opts=child,
        )
        metadata: k8s.meta.v1.ObjectMetaArgsDict = {
            "name": connection.name, "namespace": namespace.metadata["name"], "labels": labels}
        deployment_spec: k8s.apps.v1.DeploymentSpecArgsDict = {
                "replicas": 1,
                "selector": {"match_labels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "containers": [{
                            "name": "postgres",
                            "image": IMAGE,
                            "env": [
                                {"name": "POSTGRES_DB", "value": connection.database},
                                {"name": "POSTGRES_USER", "value": BOOTSTRAP_SUPERUSER},
                                {"name": "POSTGRES_PASSWORD", "value_from": {"secret_key_ref": {
                                    "name": secret.metadata["name"], "key": "POSTGRES_PASSWORD"}}},
                                {"name": "POSTGRES_INITDB_ARGS", "value": "--auth=scram-sha-256"},
                            ],
                            "ports": [{"container_port": connection.port, "name": "postgres"}],
                            "readiness_probe": {"exec_": {"command": ["pg_isready", "-U", BOOTSTRAP_SUPERUSER]}},
                            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                                          "limits": {"cpu": "500m", "memory": "512Mi"}},
                            "volume_mounts": [
                                {"name": "data", "mount_path": "/var/lib/postgresql/data"},
                                {"name": "init", "mount_path": "/docker-entrypoint-initdb.d", "read_only": True},
                            ],
                        }],
                        "volumes": [
                            {"name": "data", "empty_dir": {}},
                            {"name": "init", "secret": {"secret_name": secret.metadata["name"],
                                                        "items": [{"key": "10-vault-admin.sql",
                                                                   "path": "10-vault-admin.sql"}]}},
                        ],
                    },
                },
        }
        k8s.apps.v1.Deployment(f"{name}-deployment", metadata=metadata, spec=deployment_spec, opts=child)
        service_spec: k8s.core.v1.ServiceSpecArgsDict = {
            "selector": labels, "ports": [{"port": connection.port, "target_port": "postgres"}]}
        k8s.core.v1.Service(f"{name}-service", metadata=metadata, spec=service_spec, opts=child)
        self.admin_password = pulumi.Output.secret(admin_password.result)
        self.register_outputs({})
