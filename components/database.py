"""The PostgreSQL database secrets engine (``sys/mounts/database``): connections
(``database/config/:name``), dynamic roles (``database/roles/:name``) and static roles
(``database/static-roles/:name``).

The admin (root) password goes to Vault write-only, and only when the spec's password version
changes; Vault then rotates it (``database/rotate-root/:name``) so that only Vault knows it, and no
later run sends the old one again (see README, "Rotation")."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pulumi
import pulumi_vault as vault

from components.mounts import MountSettings, engine_mount
from components.options import children_of, parented_to
from environment import PROJECT, AdminSetup, Connection, Database, DatabaseRole
from render import sql

PASSWORD_AUTHENTICATION = "scram-sha-256"


def connection_url(connection: Connection) -> str:
    """The URL template Vault fills with the admin's username and password at each connect."""
    return (f"postgresql://{{{{username}}}}:{{{{password}}}}@{connection.host}:{connection.port}/"
            f"{connection.database}?sslmode={connection.ssl_mode}")


def rotate_root(name: str, mount: vault.Mount, connection: Connection,
                configured: vault.database.SecretBackendConnection, opts: pulumi.ResourceOptions) -> None:
    """``vault write -f <mount>/rotate-root/<connection>`` once per admin password version, right after
    the connection is configured with that password.

    The version is in the resource's name: the same spec declares the same resource, which Pulumi
    leaves alone (nothing is written); a new version declares a new one, which rotates once, and
    the old one goes away without a call (rotation cannot be undone). Reading the endpoint is
    impossible (there is nothing to read), so drift detection is off.
    """
    vault.generic.Endpoint(
        f"{name}-rotate-root-v{connection.admin_password_version}",
        path=pulumi.Output.concat(mount.path, "/rotate-root/", connection.name),
        data_json="{}",
        disable_read=True,
        disable_delete=True,
        opts=opts.merge(pulumi.ResourceOptions(depends_on=[configured])),
    )


def dynamic_role(name: str, mount: pulumi.Input[str], role: DatabaseRole, database: Database,
                 opts: pulumi.ResourceOptions, *,
                 connection_name: pulumi.Input[str] | None = None) -> vault.database.SecretBackendRole:
    """A dynamic role (``database/roles/:name``): the platform's, or one an application's file declares,
    in the environment's stack or in its team's. ``connection_name`` is the connection's own output
    when it is declared beside (so the role waits for it), else its name."""
    setup = _setup(database, role.connection)
    return vault.database.SecretBackendRole(
        name,
        backend=mount,
        name=role.name,
        db_name=role.connection if connection_name is None else connection_name,
        creation_statements=list(sql.creation_statements(role, setup)),
        revocation_statements=list(sql.revocation_statements(setup)),
        renew_statements=list(sql.renew_statements(setup)),
        default_ttl=role.default_ttl,
        max_ttl=role.max_ttl,
        opts=opts,
    )


def _setup(database: Database, connection: str) -> AdminSetup:
    (setup,) = [c.admin_setup for c in database.connections if c.name == connection]
    return setup


@dataclass(frozen=True)
class DatabaseEngineArgs:
    """What :class:`DatabaseEngine` declares."""

    database: Database
    """The stack's database section: the mount, the connections, the dynamic and static roles."""
    mounts: MountSettings
    """What the stack states about every mount (fields logged in clear, protection)."""
    declares: Callable[[str | None], bool]
    """Whether this stack declares the database roles of an application (``None``: the platform's own);
    ``EnvironmentSpec.declares``."""
    generated_passwords: Mapping[str, pulumi.Output[str]]
    """The admin password of each in-cluster (dev) connection, by connection name."""


class DatabaseEngine(pulumi.ComponentResource):
    """Short-lived, unique PostgreSQL credentials per request, and rotated static credentials."""

    mount: pulumi.Output[str]
    """Mount path."""

    def __init__(self, name: str, args: DatabaseEngineArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vault-platform:database:DatabaseEngine", name, None, opts)
        database = args.database
        child = children_of(self, opts)
        dependent = parented_to(self)
        mount = engine_mount(f"{name}-mount", args.mounts, path=database.mount, engine="database",
                             description="Dynamic and static PostgreSQL credentials.", opts=child)
        config = pulumi.Config(PROJECT)
        role_names: dict[str, list[str]] = {c.name: [] for c in database.connections}
        for role_connection, role_name in [*((r.connection, r.name) for r in database.roles),
                                           *((r.connection, r.name) for r in database.static_roles)]:
            role_names[role_connection].append(role_name)
        connections = {}
        for connection in database.connections:
            password: pulumi.Output[str]
            if connection.admin_password_key is not None:
                password = config.require_secret(connection.admin_password_key)
            else:
                password = args.generated_passwords[connection.name]
            password = pulumi.Output.secret(password)
            connections[connection.name] = vault.database.SecretBackendConnection(
                f"{name}-{connection.name}",
                backend=mount.path,
                name=connection.name,
                plugin_name="postgresql-database-plugin",
                allowed_roles=sorted(role_names[connection.name]),
                verify_connection=True,
                root_rotation_statements=list(sql.ROOT_ROTATION_STATEMENTS),
                postgresql={
                    "connection_url": connection_url(connection),
                    "username": connection.admin_user,
                    # Write-only: never read back into state, and sent only when its version changes,
                    # so an update (a new role in allowed_roles) never overwrites the rotated password.
                    "password_wo": password,
                    "password_wo_version": connection.admin_password_version,
                    "password_authentication": PASSWORD_AUTHENTICATION,
                    "max_open_connections": 4,
                    # The server's CA, inline: Vault 1.18+ reads it as libpq's sslrootcert (contents, not
                    # a path) and, with verify-full, checks the certificate's name against the host.
                    **({"tls_ca": connection.tls_ca} if connection.tls_ca is not None else {}),
                },
                # Everything the component waits for: a dev database must be up for verify_connection.
                opts=child,
            )
            if connection.rotate_root:
                rotate_root(f"{name}-{connection.name}", mount, connection, connections[connection.name], dependent)
        for role in database.roles:
            if args.declares(role.owner):
                dynamic_role(f"{name}-{role.name}", mount.path, role, database, dependent,
                             connection_name=connections[role.connection].name)
        for static_role in database.static_roles:
            vault.database.SecretBackendStaticRole(
                f"{name}-{static_role.name}",
                backend=mount.path,
                name=static_role.name,
                db_name=connections[static_role.connection].name,
                username=static_role.username,
                rotation_period=static_role.rotation_period,
                rotation_statements=list(sql.static_rotation_statements(_setup(database, static_role.connection))),
                opts=dependent,
            )
        self.mount = mount.path
        self.register_outputs({"mount": self.mount})
