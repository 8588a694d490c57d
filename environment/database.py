"""The ``database`` section of the stack config, and each application's own ``databaseRoles``: the
PostgreSQL connections Vault's database engine holds, its dynamic and static roles.

Called by :func:`environment.loader.load_spec`; every refusal is a :class:`SpecError` that names the key.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import replace
from functools import partial
from typing import cast

from vaultmodel import rules
from vaultmodel.durations import HOUR

from ._reader import (
    HOST,
    SQL_IDENTIFIER,
    VAULT_NAME,
    Node,
    attempt,
    ca_pem,
    check_min_ttl,
    check_ttl_cap,
    check_ttl_order,
    collecting,
    declared,
    name_of,
    refuse_duplicate,
    report,
)
from .app_keys import DEFAULT_TOKEN_MAX_TTL, MIN_TOKEN_TTL
from .apps import AppNode, Origins, own_name
from .model import AdminSetup, Connection, Database, DatabaseRole, Grant, StaticRole, Tier
from .stack_keys import PROJECT, SecretRefs
from .statements import creation_problem

TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
ADMIN_SETUPS = ("functions", "createrole")
# The NOLOGIN role that owns the functions setup's SECURITY DEFINER functions (render/admin_setup.py).
FUNCTIONS_OWNER = "vault_api_owner"
FUNCTIONS_SCHEMA = "vault_api"
# Roles Vault must never be handed: the usual bootstrap superuser.
SUPERUSER_NAMES = ("postgres",)
DEV_POSTGRES_NAMESPACE = "postgres"
DEV_POSTGRES_PORT = 5432


def refuse_database_roles(app_nodes: list[AppNode]) -> None:
    """A stack without a database engine: an application's file cannot declare a database role."""
    for app in app_nodes:
        if app.has("databaseRoles"):
            report(app.error("databaseRoles", f"stack {app.stack!r} declares no database connection",
                             "remove databaseRoles, or ask the platform team to declare a connection under "
                             f"{PROJECT}:database"))
        app.raw("databaseRoles")


def load_database(node: Node, tier: Tier, secrets: SecretRefs, app_nodes: list[AppNode],
                  origins: Origins) -> Database:
    connections: dict[str, Connection] = {}
    in_cluster_seen = False
    for item in node.children("connections"):
        with collecting(broken=f"database.connections:{name_of(item)}"):
            connection = _connection(item, tier, secrets)
            refuse_duplicate(item, "name", connection.name, connections, "connection")
            if connection.in_cluster and in_cluster_seen:
                raise item.error("inCluster", "a second in-cluster PostgreSQL would collide with the first "
                                 f"(one namespace, {DEV_POSTGRES_NAMESPACE!r})", "use one in-cluster connection")
            connections[connection.name] = connection
            in_cluster_seen |= connection.in_cluster
    roles: dict[str, DatabaseRole] = {}
    # The platform's dynamic roles, then each application's own ("databaseRoles" in its file).
    declaring: list[tuple[Node, str, AppNode | None]] = [(node, "roles", None),
                                                         *((app, "databaseRoles", app) for app in app_nodes)]
    for where, key, app in declaring:
        items: list[Node] = attempt(partial(list, where.children(key)), broken="database.roles:*") or []
        for item in items:
            with collecting(broken=f"database.roles:{name_of(item)}"):
                role = _database_role(item, connections)
                if app is not None:
                    own_name(app, item, "name", role.name)
                    role = replace(role, owner=app.app.file.name)
                if role.name in roles:
                    raise item.error("name", f"database role {role.name!r} is declared "
                                     f"{origins.described(f'database.roles:{role.name}')} already",
                                     "give each database role its own name")
                roles[role.name] = role
                origins.add(f"database.roles:{role.name}", item.key, app)
    static_roles: dict[str, StaticRole] = {}
    for item in node.children("staticRoles"):
        with collecting(broken=f"database.staticRoles:{name_of(item)}"):
            _static_role(item, connections, roles, static_roles)
    database = Database(
        mount=node.string("mount", "database", rule=VAULT_NAME),
        connections=tuple(sorted(connections.values(), key=lambda c: c.name)),
        roles=tuple(sorted(roles.values(), key=lambda r: r.name)),
        static_roles=tuple(sorted(static_roles.values(), key=lambda r: r.name)),
    )
    node.done()
    return database


def _static_role(item: Node, connections: Mapping[str, Connection], roles: Mapping[str, DatabaseRole],
                 static_roles: dict[str, StaticRole]) -> None:
    """A static role, into ``static_roles``: a database user whose password Vault rotates."""
    static_role = StaticRole(
        name=item.string("name", rule=VAULT_NAME),
        connection=_known(item, "connection", connections, "connection"),
        username=item.string("username", rule=SQL_IDENTIFIER),
        rotation_period=item.duration("rotationPeriod", 24 * HOUR),
    )
    _check_static_user(item, static_role.username, connections[static_role.connection])
    if static_role.rotation_period < 60:
        raise item.error("rotationPeriod", "Vault rotates at most once a minute", "use 1m or more", edit="1m")
    item.done()
    refuse_duplicate(item, "name", static_role.name, {**roles, **static_roles}, "database role")
    static_roles[static_role.name] = static_role


def _connection(node: Node, tier: Tier, secrets: SecretRefs) -> Connection:
    in_cluster = node.boolean("inCluster", False)
    if in_cluster and tier != "dev":
        raise node.error("inCluster", f"the in-cluster PostgreSQL is for dev only, not {tier}",
                         "point host, port and adminPassword at the environment's database server")
    name = node.string("name", rule=VAULT_NAME)
    connection = Connection(
        name=name,
        host=_in_cluster_host(node, name) if in_cluster else node.string("host", rule=HOST),
        port=node.integer("port", DEV_POSTGRES_PORT, minimum=1, maximum=65535),
        database=node.string("database", rule=SQL_IDENTIFIER),
        admin_user=node.string("adminUser", rule=SQL_IDENTIFIER),
        admin_password_key=None if in_cluster else secrets.reference(node, "adminPassword"),
        in_cluster=in_cluster,
        ssl_mode=node.string("sslMode", "disable" if in_cluster else "verify-full", choices=SSL_MODES),
        admin_password_version=node.integer("adminPasswordVersion", 1, minimum=1),
        rotate_root=node.boolean("rotateRoot", not in_cluster),
        admin_setup=cast(AdminSetup, node.string("adminSetup", "functions", choices=ADMIN_SETUPS)),
        table_owner=node.string("tableOwner", "app_owner", rule=SQL_IDENTIFIER),
        tls_ca=ca_pem(node, "tlsCa", "the database server's certificate"),
    )
    if connection.rotate_root and in_cluster:
        raise node.error("rotateRoot", "the in-cluster PostgreSQL resets the admin password to the generated "
                         "one on every restart, which would cut Vault off after a rotation", "remove rotateRoot")
    if not connection.rotate_root and tier != "dev":
        raise node.error("rotateRoot", f"in {tier} only Vault may know the admin password once the connection "
                         "is set up", "remove rotateRoot or set it to true")
    if in_cluster and connection.port != DEV_POSTGRES_PORT:
        raise node.error("port", f"the in-cluster PostgreSQL listens on {DEV_POSTGRES_PORT}", "remove port")
    if in_cluster and node.has("adminPassword"):
        raise node.error("adminPassword", "the in-cluster PostgreSQL's password is generated",
                         "remove adminPassword")
    _check_connection_roles(node, connection)
    _check_tls(node, connection, tier)
    node.done()
    return connection


def _check_connection_roles(node: Node, connection: Connection) -> None:
    """The admin is never a superuser, the table owner or the functions' owner."""
    reserved = {FUNCTIONS_OWNER: "the SECURITY DEFINER functions' owner",
                **dict.fromkeys(SUPERUSER_NAMES, "a superuser")}
    for key, user in (("adminUser", connection.admin_user), ("tableOwner", connection.table_owner)):
        if user in reserved:
            raise node.error(key, f"{user!r} is {reserved[user]}", "use a role of its own")
    if connection.admin_user == connection.table_owner:
        raise node.error("adminUser", f"{connection.admin_user!r} is also the tableOwner, which owns the tables",
                         "give Vault an admin of its own (see README, \"The PostgreSQL admin user\")")


def _check_tls(node: Node, connection: Connection, tier: Tier) -> None:
    """Outside dev Vault verifies the server it hands the admin password to: verify-full (or
    verify-ca against the stack's own CA), at a fully qualified host name."""
    if connection.tls_ca is not None and connection.ssl_mode not in rules.VERIFYING_SSL_MODES:
        raise node.error("tlsCa", f"sslMode {connection.ssl_mode} never verifies the server's certificate",
                         "set sslMode to verify-full, or remove tlsCa")
    problem = rules.database_tls(connection.ssl_mode, connection.tls_ca is not None, tier)
    if problem is not None:
        fix = ("use verify-full, or set tlsCa to the database's own CA" if connection.ssl_mode == "verify-ca" else
               "remove sslMode (verify-full is the default), and set tlsCa when the server's CA is not a public one")
        raise node.error("sslMode", problem, fix)
    problem = rules.database_host(connection.host, tier)
    if problem is not None:
        raise node.error("host", problem, "use the server's fully qualified DNS name, the one its certificate carries")


def _check_creation_statements(node: Node, statements: tuple[str, ...], connection: Connection) -> None:
    if connection.admin_setup == "functions":
        raise node.error("creationStatements", f"connection {connection.name!r} uses the functions admin setup, "
                         f"whose admin can only call {FUNCTIONS_SCHEMA}.create_user", "declare grants instead, or "
                         f"set adminSetup: createrole on connection {connection.name!r} (see README)")
    found = creation_problem(statements)
    if found is not None:
        key = "creationStatements" if found.index is None else f"creationStatements[{found.index}]"
        raise node.error(key, found.problem, found.fix)


def _check_static_user(node: Node, username: str, connection: Connection) -> None:
    """Vault must not take over the admin, the table owner, the functions' owner or a superuser."""
    if username == connection.admin_user:
        raise node.error("username", f"{username!r} is the connection's admin user, whose password Vault "
                         "already rotates as the connection's root credential",
                         "give the static role a user of its own")
    privileged = {connection.table_owner: "the connection's tableOwner, which owns the tables",
                  FUNCTIONS_OWNER: "the owner of the SECURITY DEFINER functions",
                  **dict.fromkeys(SUPERUSER_NAMES, "a superuser")}
    if username in privileged:
        raise node.error("username", f"{username!r} is {privileged[username]}",
                         "give the static role an ordinary login user of its own")


def _in_cluster_host(node: Node, name: str) -> str:
    if node.has("host"):
        raise node.error("host", "the in-cluster PostgreSQL is reached at its own Service",
                         "remove host")
    node.raw("host")
    return f"{name}.{DEV_POSTGRES_NAMESPACE}.svc"


def _database_role(node: Node, connections: Mapping[str, Connection]) -> DatabaseRole:
    grants = []
    for item in node.children("grants"):
        privileges = tuple(p.upper() if isinstance(p, str) else p for p in item.strings_or_items("privileges"))
        for index, privilege in enumerate(privileges):
            if privilege not in TABLE_PRIVILEGES:
                raise item.error(f"privileges[{index}]", f"{privilege!r} is not a table privilege",
                                 f"use some of {', '.join(TABLE_PRIVILEGES)}")
        if not privileges:
            raise item.error("privileges", "is empty", "list at least one table privilege")
        grants.append(Grant(privileges=tuple(dict.fromkeys(privileges)),
                            schema=item.string("schema", "public", rule=SQL_IDENTIFIER)))
        item.done()
    statements = node.strings("creationStatements")
    if bool(grants) == node.has("creationStatements"):
        raise node.error(None, "needs exactly one of grants and creationStatements",
                         "declare grants (the statements are generated) or verbatim creationStatements")
    connection = connections[_known(node, "connection", connections, "connection")]
    if node.has("creationStatements"):
        _check_creation_statements(node, statements, connection)
    for index, grant in enumerate(grants):
        if grant.schema == FUNCTIONS_SCHEMA or grant.schema.startswith("pg_") or grant.schema == "information_schema":
            raise node.error(f"grants[{index}].schema", f"{grant.schema!r} is a system schema",
                             "grant on the application's own schemas")
    role = DatabaseRole(
        name=node.string("name", rule=VAULT_NAME),
        connection=connection.name,
        default_ttl=node.duration("defaultTtl", HOUR),
        # No longer than the tokens that take credentials from it live by default (see app_keys).
        max_ttl=node.duration("maxTtl", DEFAULT_TOKEN_MAX_TTL),
        grants=tuple(grants),
        creation_statements=statements,
    )
    check_ttl_order(node, "defaultTtl", role.default_ttl, "maxTtl", role.max_ttl)
    check_ttl_cap(node, "defaultTtl", role.default_ttl, rules.DATABASE_MAX_TTL_CAP)
    check_min_ttl(node, "defaultTtl", role.default_ttl, MIN_TOKEN_TTL)
    check_ttl_cap(node, "maxTtl", role.max_ttl, rules.DATABASE_MAX_TTL_CAP)
    node.done()
    return role


def _known(node: Node, key: str, names: Mapping[str, object], what: str, kind: str = "database.connections") -> str:
    value = node.string(key, rule=VAULT_NAME)
    if value not in names:
        close = difflib.get_close_matches(value, list(names), n=1)
        raise node.error(key, f"{what} {value!r} is not declared",
                         f"use {close[0]!r}" if close else f"declare it, or use a declared one ({declared(names)})",
                         edit=close[0] if close else None, refers_to=f"{kind}:{value}")
    return value
