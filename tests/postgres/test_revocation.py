"""Revocation removes the user and leaves nothing behind: no role, no membership, no ACL entry, no
object still owned by it; its sessions are ended and its objects handed to the granting role (the
admin, or the functions' owner); running it again does nothing."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from environment import DatabaseRole
from tests.postgres.conftest import SEEDED_EMAILS, TABLE_OWNER, UNGRANTED_SCHEMA, Credentials, World
from tests.postgres.vault_plugin import delete_user

SCRATCH = "scratch"
# Everything in the database that can refer to a role: dependencies, memberships, ACL entries,
# ownership. Each query takes the role's oid and must return no row once the role is revoked.
TRACES = {
    "shared dependencies": "SELECT classid::regclass::text, objid::text FROM pg_shdepend WHERE refobjid = %(oid)s",
    "memberships": "SELECT roleid::text, member::text FROM pg_auth_members WHERE %(oid)s IN (roleid, member)",
    "relation ACL entries": "SELECT c.oid::regclass::text, a.privilege_type FROM pg_class c, "
                            "aclexplode(c.relacl) a WHERE %(oid)s IN (a.grantee, a.grantor)",
    "schema ACL entries": "SELECT n.nspname::text, a.privilege_type FROM pg_namespace n, "
                          "aclexplode(n.nspacl) a WHERE %(oid)s IN (a.grantee, a.grantor)",
    "database ACL entries": "SELECT d.datname::text, a.privilege_type FROM pg_database d, "
                            "aclexplode(d.datacl) a WHERE %(oid)s IN (a.grantee, a.grantor)",
    "default ACLs": "SELECT defaclobjtype::text, '' FROM pg_default_acl WHERE defaclrole = %(oid)s",
    "owned relations": "SELECT oid::regclass::text, '' FROM pg_class WHERE relowner = %(oid)s",
    "owned schemas": "SELECT nspname::text, '' FROM pg_namespace WHERE nspowner = %(oid)s",
    "owned functions": "SELECT oid::regproc::text, '' FROM pg_proc WHERE proowner = %(oid)s",
}


def oid_of(world: World, username: str) -> int:
    [(oid,)] = world.query("SELECT oid::int FROM pg_roles WHERE rolname = %s", username)
    assert isinstance(oid, int)
    return oid


def traces(world: World, oid: int) -> dict[str, list[tuple[object, ...]]]:
    with world.superuser() as db:
        return {name: found for name, query in TRACES.items()
                if (found := db.execute(query, {"oid": oid}).fetchall())}


def revoke(world: World, credentials: Credentials) -> None:
    delete_user(world.admin(), world.revocation, credentials.username)


def test_revocation_removes_the_user_and_every_trace(world: World, role: DatabaseRole) -> None:
    credentials = world.create_user(role)
    oid = oid_of(world, credentials.username)
    assert set(traces(world, oid)) == {"shared dependencies", "relation ACL entries", "schema ACL entries"}
    revoke(world, credentials)
    assert world.query("SELECT rolname FROM pg_roles WHERE rolname = %s", credentials.username) == []
    assert traces(world, oid) == {}
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        world.login(credentials.username, credentials.password)


def test_revocation_ends_open_sessions(world: World, role: DatabaseRole) -> None:
    credentials = world.create_user(role)
    oid = oid_of(world, credentials.username)
    session = world.login(credentials.username, credentials.password)
    # Idle in transaction, holding a row it inserted where it may, or a lock from what it read.
    grant = next((g for g in role.grants if "INSERT" in g.privileges), role.grants[0])
    schema = sql.Identifier(grant.schema)
    session.execute("BEGIN")
    if "INSERT" in grant.privileges:
        session.execute(sql.SQL("INSERT INTO {}.accounts (email) VALUES ('pending@example.com')").format(schema))
    else:
        session.execute(sql.SQL("SELECT count(*) FROM {}.accounts").format(schema))
    revoke(world, credentials)
    with pytest.raises(psycopg.errors.AdminShutdown, match="terminating connection due to administrator command"):
        session.execute("SELECT 1")
    assert world.query(sql.SQL("SELECT email FROM {}.accounts ORDER BY id").format(schema).as_string()) == [
        (email,) for email in SEEDED_EMAILS]
    assert traces(world, oid) == {}


def test_revocation_hands_the_users_objects_to_the_admin(world: World, role: DatabaseRole) -> None:
    credentials = world.create_user(role)
    oid = oid_of(world, credentials.username)
    with world.superuser() as db:  # somewhere the admin may let it create objects
        db.execute(sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(
            sql.Identifier(SCRATCH), sql.Identifier(TABLE_OWNER)))
        db.execute(sql.SQL("GRANT USAGE, CREATE ON SCHEMA {} TO {} WITH GRANT OPTION").format(
            sql.Identifier(SCRATCH), sql.Identifier(world.grantor)))
    world.as_grantor(sql.SQL("GRANT USAGE, CREATE ON SCHEMA {} TO {}").format(
        sql.Identifier(SCRATCH), sql.Identifier(credentials.username)))
    session = world.login(credentials.username, credentials.password)
    session.execute("CREATE TABLE scratch.notes (id serial PRIMARY KEY, body text)")
    session.execute("INSERT INTO scratch.notes (body) VALUES ('keep me')")
    session.execute("CREATE TEMP TABLE workspace (n integer)")
    assert world.query("SELECT relname::text FROM pg_class WHERE relowner = %s "
                       "AND relnamespace <> 'pg_toast'::regnamespace ORDER BY relname", oid) == [
        ("notes",), ("notes_id_seq",), ("notes_pkey",), ("workspace",)]

    revoke(world, credentials)

    assert world.query("SELECT relname::text, pg_get_userbyid(relowner)::text FROM pg_class "
                       "WHERE relnamespace = 'scratch'::regnamespace ORDER BY relname") == [
        ("notes", world.grantor), ("notes_id_seq", world.grantor), ("notes_pkey", world.grantor)]
    assert world.query("SELECT id, body FROM scratch.notes") == [(1, "keep me")]
    assert world.query("SELECT relname::text FROM pg_class WHERE relname = 'workspace'") == []
    assert traces(world, oid) == {}


def test_revocation_twice_and_of_an_unknown_user_does_nothing(world: World, role: DatabaseRole) -> None:
    credentials = world.create_user(role)
    other = world.create_user(role)
    revoke(world, credentials)
    revoke(world, credentials)
    delete_user(world.admin(), world.revocation, "v-kubernet-api-role-NeverExisted00000000-1732790000")
    assert world.query("SELECT rolname::text FROM pg_roles WHERE rolname LIKE 'v-%%'") == [(other.username,)]


def test_privileges_granted_by_someone_else_block_the_revocation(world: World, role: DatabaseRole) -> None:
    """The admin cannot revoke what it did not grant: the revocation fails whole (Vault retries and
    reports it) instead of leaving a half-removed user."""
    credentials = world.create_user(role)
    with world.superuser() as db:
        db.execute(sql.SQL("GRANT SELECT ON {}.accounts TO {}").format(
            sql.Identifier(UNGRANTED_SCHEMA), sql.Identifier(credentials.username)))
    with pytest.raises(psycopg.errors.DependentObjectsStillExist,
                       match=f'role "{credentials.username}" cannot be dropped because some objects depend on it'):
        revoke(world, credentials)
    assert world.query("SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", credentials.username) == [(True,)]
    world.login(credentials.username, credentials.password).close()
