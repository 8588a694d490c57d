"""Create and least privilege, for every dynamic role every committed stack declares: the creation
statements run the way Vault runs them, the user logs in over TCP with SCRAM-SHA-256, can do exactly
what its grants say and is refused everything else."""

from __future__ import annotations

import base64

import psycopg
import pytest

from environment import DatabaseRole
from environment.database import TABLE_PRIVILEGES
from tests.postgres.conftest import (
    DISPLAY_NAME,
    SEEDED_EMAILS,
    UNGRANTED_SCHEMA,
    World,
    create_later_table,
    error_of,
)
from tests.postgres.vault_plugin import scram_verifier

DENIED = "42501"  # insufficient_privilege
# One statement per table privilege; each needs that privilege and no other.
ACTIONS = {
    "SELECT": "SELECT count(*) FROM {table}",
    "INSERT": "INSERT INTO {table} (account_id, note) VALUES (1, 'new')",
    "UPDATE": "UPDATE {table} SET note = 'changed'",
    "DELETE": "DELETE FROM {table}",
    "TRUNCATE": "TRUNCATE {table}",
    # Only a new table can use REFERENCES (temporary tables may not reference permanent ones, and the
    # user may create no other), so this one is read from the server's own privilege check.
    "REFERENCES": "DO $$ BEGIN IF NOT has_table_privilege('{table}', 'REFERENCES') THEN "
                  "RAISE insufficient_privilege; END IF; END $$",
    "TRIGGER": "CREATE TRIGGER t BEFORE UPDATE ON {table} FOR EACH ROW "
               "EXECUTE FUNCTION suppress_redundant_updates_trigger()",
}


def test_new_user_logs_in_with_its_password_over_scram(world: World, role: DatabaseRole) -> None:
    credentials = world.create_user(role)
    assert credentials.username.startswith(f"v-{DISPLAY_NAME[:8]}-{role.name[:8]}-")
    with world.login(credentials.username, credentials.password) as session:
        assert session.execute("SELECT current_user, session_user").fetchone() == (
            credentials.username, credentials.username)
    [(can_login, superuser, create_role, create_db, valid_until, stored)] = world.query(
        "SELECT rolcanlogin, rolsuper, rolcreaterole, rolcreatedb, rolvaliduntil, rolpassword "
        "FROM pg_authid WHERE rolname = %s", credentials.username)
    assert (can_login, superuser, create_role, create_db) == (True, False, False, False)
    assert valid_until == credentials.expires
    # The server holds the verifier Vault computed, never the clear password.
    assert isinstance(stored, str)
    assert stored.startswith("SCRAM-SHA-256$4096:")
    salt = stored.split(":")[1].split("$")[0]
    assert stored == scram_verifier(credentials.password, base64.b64decode(salt))


def test_wrong_password_is_refused(world: World, role: DatabaseRole) -> None:
    credentials = world.create_user(role)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        world.login(credentials.username, credentials.password + "x")


def test_user_has_exactly_its_granted_table_privileges(world: World, role: DatabaseRole) -> None:
    credentials = world.create_user(role)
    session = world.login(credentials.username, credentials.password)
    granted = {(grant.schema, privilege) for grant in role.grants for privilege in grant.privileges}
    schemas = sorted({grant.schema for grant in role.grants} | {UNGRANTED_SCHEMA})
    outcome = {(schema, privilege): error_of(session, ACTIONS[privilege].format(table=f'"{schema}".orders'))
               for schema in schemas for privilege in TABLE_PRIVILEGES}
    expected = {(schema, privilege): None if (schema, privilege) in granted else DENIED
                for schema in schemas for privilege in TABLE_PRIVILEGES}
    assert outcome == expected


def test_user_reads_writes_and_inserts_into_identity_and_serial_columns(world: World, role: DatabaseRole) -> None:
    assert role.grants, "the committed roles generate their statements from grants"
    credentials = world.create_user(role)
    session = world.login(credentials.username, credentials.password)
    for grant in role.grants:
        schema = f'"{grant.schema}"'
        if "SELECT" in grant.privileges:
            assert session.execute(f"SELECT email FROM {schema}.accounts ORDER BY id").fetchall() == [
                (email,) for email in SEEDED_EMAILS]
        if "INSERT" in grant.privileges:
            assert session.execute(f"INSERT INTO {schema}.accounts (email) VALUES ('new@example.com') "
                                   "RETURNING id").fetchall() == [(3,)]
            assert session.execute(f"INSERT INTO {schema}.orders (account_id) VALUES (3) "
                                   "RETURNING id").fetchall() == [(1,)]
        if "UPDATE" in grant.privileges:
            assert session.execute(f"UPDATE {schema}.orders SET note = 'paid'").rowcount == 1


def test_user_is_refused_ddl_other_schemas_and_roles(world: World, role: DatabaseRole) -> None:
    credentials = world.create_user(role)
    session = world.login(credentials.username, credentials.password)
    schema = f'"{role.grants[0].schema}"'
    statements = [
        f"CREATE TABLE {schema}.mine (id integer)",
        f"ALTER TABLE {schema}.accounts ADD COLUMN extra text",
        f"DROP TABLE {schema}.orders",
        f"CREATE INDEX ON {schema}.accounts (email)",
        f"GRANT SELECT ON {UNGRANTED_SCHEMA}.accounts TO PUBLIC",
        f"SELECT count(*) FROM {UNGRANTED_SCHEMA}.accounts",
        f"INSERT INTO {UNGRANTED_SCHEMA}.accounts (email) VALUES ('x')",
        "CREATE SCHEMA mine",
        "CREATE ROLE intruder",
        'ALTER ROLE CURRENT_USER VALID UNTIL \'infinity\'',
        "ALTER ROLE CURRENT_USER CREATEDB",
        f'SET ROLE "{world.admin_user}"',
    ]
    outcome = {statement: error_of(session, statement) for statement in statements}
    assert outcome == {statement: DENIED for statement in statements}


def test_tables_created_later_are_seen_by_the_next_credentials_only(world: World, role: DatabaseRole) -> None:
    earlier = world.create_user(role)
    for grant in role.grants:
        create_later_table(world, grant.schema, "invoices")
    later = world.create_user(role)
    earlier_session = world.login(earlier.username, earlier.password)
    later_session = world.login(later.username, later.password)
    for grant in role.grants:
        table = f'"{grant.schema}".invoices'
        assert error_of(earlier_session, f"SELECT count(*) FROM {table}") == DENIED
        assert error_of(earlier_session, f"INSERT INTO {table} (amount) VALUES (1)") == DENIED
        if "SELECT" in grant.privileges:
            assert later_session.execute(f"SELECT count(*) FROM {table}").fetchall() == [(0,)]
        if "INSERT" in grant.privileges:
            assert later_session.execute(f"INSERT INTO {table} (amount) VALUES (5) RETURNING id").fetchall() == [
                (1,)]
