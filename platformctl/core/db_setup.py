"""The admin SQL a DBA applies for a stack: the whole idempotent script per connection, or only what
a change to the stack needs (new connections in full, new schemas and privileges, new and removed
static users). Pure: specs in, SQL text out (see :mod:`render.admin_setup`)."""

from __future__ import annotations

from dataclasses import dataclass

from environment import Connection, Database
from render.admin_setup import (
    ConnectionNeeds,
    grant_statements,
    revoke_statements,
    setup_statements,
    static_user_statements,
)

# What makes a connection's earlier setup useless: another server, database, admin or setup.
_IDENTITY = ("host", "port", "database", "admin_user", "admin_setup", "table_owner")


@dataclass(frozen=True)
class ConnectionScript:
    """The SQL one connection needs, to run as a superuser in its database."""

    connection: Connection
    """The connection (where to run it)."""
    statements: tuple[str, ...]
    """Statements to run, in order; empty when nothing changed."""
    later: tuple[str, ...] = ()
    """Grant options no role hands out any more: to take back once the leases issued before the
    change have ended (at most a role's maxTtl later); taking them earlier revokes live users'."""
    whole: bool = True
    """The complete setup, not only a change."""
    removed: bool = False
    """The connection is no longer declared (nothing to apply; its setup may be dropped by hand)."""


def needs_of(database: Database) -> dict[str, ConnectionNeeds]:
    """What each connection's roles need from its database, by connection name: the DBA's scripts and
    the stack's checklist (:func:`platformctl.core.outside.needs_of`) are both made of it."""
    return {c.name: ConnectionNeeds.of(c, database.roles, database.static_roles) for c in database.connections}


def full_scripts(database: Database) -> list[ConnectionScript]:
    """Every connection's complete, idempotent setup."""
    return [ConnectionScript(needs.connection, setup_statements(needs)) for needs in needs_of(database).values()]


def changed_scripts(base: Database | None, head: Database) -> list[ConnectionScript]:
    """Per connection of ``head``, what applying it over ``base``'s setup needs."""
    before = needs_of(base) if base is not None else {}
    after = needs_of(head)
    scripts = []
    for name, needs in after.items():
        old = before.get(name)
        connection = needs.connection
        if old is None or any(getattr(old.connection, key) != getattr(connection, key) for key in _IDENTITY):
            scripts.append(ConnectionScript(connection, setup_statements(needs)))
            continue
        statements: list[str] = []
        later: list[str] = []
        for schema in sorted(set(needs.privileges) | set(old.privileges)):
            held, wanted = old.privileges.get(schema, ()), needs.privileges.get(schema, ())
            added = tuple(p for p in wanted if p not in held)
            if added:
                statements += grant_statements(connection, schema, added)
            removed = tuple(p for p in held if p not in wanted)
            if removed:
                revoked = revoke_statements(connection, schema, removed,
                                            sequences="INSERT" in removed)
                # Dropping them from the grantable list only stops new grants: safe at once.
                statements += [s for s in revoked if s.startswith("DELETE FROM")]
                later += [s for s in revoked if not s.startswith("DELETE FROM")]
        for user in needs.static_users:
            if user not in old.static_users:
                statements += static_user_statements(connection, user)
        for user in old.static_users:
            if user not in needs.static_users:
                statements += static_user_statements(connection, user, removed=True)
        scripts.append(ConnectionScript(connection, tuple(statements), tuple(later), whole=False))
    scripts += [ConnectionScript(old.connection, (), whole=False, removed=True)
                for name, old in before.items() if name not in after]
    return scripts


def render(stack: str, scripts: list[ConnectionScript], since: str | None = None) -> str:
    """The scripts as one SQL text, each connection headed by where and how to run it."""
    lines: list[str] = []
    for script in scripts:
        c = script.connection
        what = "complete setup" if script.whole else f"changes since {since}"
        if script.removed:
            lines += [f"-- {stack}, connection {c.name!r} ({c.host}:{c.port}, database {c.database}) is no longer "
                      f"declared since {since}: once the stack is applied Vault stops using it; its admin "
                      f"{c.admin_user} and its setup can then be dropped by hand.", ""]
            continue
        lines += [f"-- {stack}, connection {c.name!r}: {c.host}:{c.port}, database {c.database}, admin {c.admin_user} "
                  f"({c.admin_setup} setup); {what}."]
        if not script.statements and not script.later:
            lines += ["-- Nothing to apply.", ""]
            continue
        if c.in_cluster:
            lines += ["-- The in-cluster PostgreSQL runs this itself when its pod starts; shown for reference."]
        if script.statements:
            lines += [f"-- As a superuser: psql -v ON_ERROR_STOP=1 --single-transaction -d {c.database} -f <this file>",
                      *script.statements]
        if script.later:
            lines += ["-- No role hands these out any more. Once the leases issued before this change have",
                      "-- ended (at most the roles' maxTtl), take the grant options back:",
                      *(f"-- {s}" for s in script.later)]
        if script.whole:
            lines += ["-- Then set the admin's password (README: \"Creating it\")."]
        lines.append("")
    return "\n".join(lines)
