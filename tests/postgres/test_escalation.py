"""What the admin Vault connects as can do beyond its job, attempted on PostgreSQL 15 in both admin
setups: with CREATEROLE it becomes superuser-equivalent (it grants itself
``pg_execute_server_program`` and runs a program on the server); with the functions setup every
attempt is refused, and so is every hostile call of the functions themselves, with nothing changed."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg import sql

from environment import AdminSetup
from render.admin_setup import OWNER, SCHEMA
from tests.postgres.conftest import TABLE_OWNER, UNGRANTED_SCHEMA, World, error_of, in_setup, make_world
from tests.postgres.server import PostgresServer
from tests.postgres.vault_plugin import format_expiration, generate_password, generate_username, scram_verifier
from tests.support import spec_of

DENIED = "42501"
STATIC_USER = "reporting_user"
STACK = {"vault-platform:database.staticRoles": [
    {"name": "reporting", "connection": "postgres", "username": STATIC_USER}]}
# As the admin, straight SQL: each would hand it more than its job.
ESCALATIONS = [
    "GRANT pg_execute_server_program TO CURRENT_USER",
    "GRANT pg_read_server_files TO CURRENT_USER",
    f"GRANT {TABLE_OWNER} TO CURRENT_USER",
    "CREATE ROLE intruder LOGIN PASSWORD 'intruder'",
    f"ALTER ROLE {TABLE_OWNER} WITH LOGIN PASSWORD 'taken-over'",
    f"ALTER ROLE {STATIC_USER} WITH PASSWORD 'taken-over'",
]


def world_in(postgres: PostgresServer, setup: AdminSetup) -> Iterator[World]:
    spec = spec_of("prod", STACK)
    assert spec.database is not None
    for world in make_world(postgres, spec, in_setup(spec.database.connection["postgres"], setup)):
        with world.superuser() as db:
            db.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'reporting'").format(sql.Identifier(STATIC_USER)))
        yield world


@pytest.fixture
def functions_world(postgres: PostgresServer) -> Iterator[World]:
    yield from world_in(postgres, "functions")


@pytest.fixture
def createrole_world(postgres: PostgresServer) -> Iterator[World]:
    yield from world_in(postgres, "createrole")


@pytest.fixture(scope="module")
def refusing_world(postgres: PostgresServer) -> Iterator[World]:
    """One functions world for the calls that must change nothing (each test checks that they did not)."""
    yield from world_in(postgres, "functions")


def roles_snapshot(world: World) -> list[tuple[object, ...]]:
    """Every role with its attributes, password and memberships: what an escalation would change."""
    return world.query(
        "SELECT a.rolname::text, a.rolsuper, a.rolcreaterole, a.rolcanlogin, a.rolpassword, a.rolvaliduntil, "
        "ARRAY(SELECT m.roleid::regrole::text FROM pg_auth_members m WHERE m.member = a.oid ORDER BY 1) "
        "FROM pg_authid a WHERE a.rolname !~ '^pg_' ORDER BY 1")


def test_createrole_admin_is_superuser_equivalent_on_postgresql_15(createrole_world: World) -> None:
    """The README's warning, proven: every escalation succeeds, and the admin runs a program."""
    admin = createrole_world.admin()
    assert {s: error_of(admin, s) for s in ESCALATIONS} == dict.fromkeys(ESCALATIONS)
    admin.execute("GRANT pg_execute_server_program TO CURRENT_USER")
    admin.execute("COPY (SELECT 'ran') TO PROGRAM 'cat > /dev/null'")  # a shell command as the server's user


def test_functions_admin_escalates_nowhere(functions_world: World) -> None:
    before = roles_snapshot(functions_world)
    admin = functions_world.admin()
    attempts = [*ESCALATIONS, "COPY (SELECT 'ran') TO PROGRAM 'cat > /dev/null'", f"SET ROLE {OWNER}",
                f"GRANT {OWNER} TO CURRENT_USER"]
    assert {s: error_of(admin, s) for s in attempts} == dict.fromkeys(attempts, DENIED)
    assert roles_snapshot(functions_world) == before


def expiry(hours: float = 1) -> str:
    return format_expiration(datetime.now(UTC) + timedelta(hours=hours))


def vault_name() -> str:
    return generate_username("kubernetes-api", "api-role", datetime.now(UTC))


VERIFIER = scram_verifier("Aa1-" + "x" * 16)
PUBLIC_SELECT = '[{"schema": "public", "privileges": ["SELECT"]}]'


def hostile_calls() -> list[tuple[str, tuple[object, ...], str]]:
    """(function, arguments, refusal) for calls that must change nothing."""
    return [
        ("create_user", (TABLE_OWNER, VERIFIER, expiry(), PUBLIC_SELECT),
         f"{TABLE_OWNER} is not a name Vault generates"),
        ("create_user", ("pg_execute_server_program", VERIFIER, expiry(), PUBLIC_SELECT), "is not a name Vault"),
        ("create_user", ('v-x"; DROP TABLE public.accounts; --', VERIFIER, expiry(), PUBLIC_SELECT),
         "is not a name Vault generates"),
        ("create_user", (vault_name(), "clear-text-password", expiry(), PUBLIC_SELECT),
         "the password must be a SCRAM-SHA-256 verifier"),
        ("create_user", (vault_name(), VERIFIER, "infinity", PUBLIC_SELECT), "expiry infinity is not within"),
        ("create_user", (vault_name(), VERIFIER, expiry(48), PUBLIC_SELECT), "is not within 86700 seconds"),
        ("create_user", (vault_name(), VERIFIER, expiry(), f'[{{"schema": "{SCHEMA}", "privileges": ["SELECT"]}}]'),
         f"SELECT on schema {SCHEMA} is not grantable"),
        ("create_user", (vault_name(), VERIFIER, expiry(),
                         f'[{{"schema": "{UNGRANTED_SCHEMA}", "privileges": ["SELECT"]}}]'),
         f"SELECT on schema {UNGRANTED_SCHEMA} is not grantable"),
        ("create_user", (vault_name(), VERIFIER, expiry(), '[{"schema": "public", "privileges": ["DELETE"]}]'),
         "DELETE on schema public is not grantable"),
        ("create_user", (vault_name(), VERIFIER, expiry(),
                         '[{"schema": "public", "privileges": ["SELECT, pg_execute_server_program"]}]'),
         "SELECT, PG_EXECUTE_SERVER_PROGRAM on schema public is not grantable"),
        ("create_user", (vault_name(), VERIFIER, expiry(),
                         '[{"schema": "public", "privileges": ["SELECT"]}, {"schema": "pg_catalog", '
                         '"privileges": ["SELECT"]}]'), "SELECT on schema pg_catalog is not grantable"),
        ("create_user", (vault_name(), VERIFIER, expiry(), '{"schema": "public"}'), "grants must be a JSON array"),
        ("renew_user", (TABLE_OWNER, expiry()), f"{TABLE_OWNER} is not a name Vault generates"),
        ("renew_user", (vault_name(), expiry()), "was not created by vault_api.create_user"),
        ("drop_user", (TABLE_OWNER,), f"{TABLE_OWNER} is not a name Vault generates"),
        ("drop_user", ("vault_admin",), "vault_admin is not a name Vault generates"),
        ("set_password", (TABLE_OWNER, VERIFIER), f"{TABLE_OWNER} is not a declared static user"),
        ("set_password", ("vault_admin", VERIFIER), "vault_admin is not a declared static user"),
        ("set_password", ("bootstrap", VERIFIER), "bootstrap is not a declared static user"),
        ("set_password", (STATIC_USER, "clear-text-password"), "the password must be a SCRAM-SHA-256 verifier"),
    ]


@pytest.mark.parametrize(("function", "arguments", "refusal"), hostile_calls(),
                         ids=[f"{c[0]}-{c[2][:40]}" for c in hostile_calls()])
def test_hostile_calls_are_refused_and_change_nothing(refusing_world: World, function: str,
                                                     arguments: tuple[object, ...], refusal: str) -> None:
    before = roles_snapshot(refusing_world)
    call = sql.SQL("SELECT {}.{}({})").format(sql.Identifier(SCHEMA), sql.Identifier(function),
                                             sql.SQL(", ").join(map(sql.Literal, arguments)))
    with refusing_world.admin() as admin, pytest.raises(psycopg.errors.InsufficientPrivilege,
                                                        match=re.escape(refusal)):
        admin.execute(call)
    assert roles_snapshot(refusing_world) == before
    assert refusing_world.query(f"SELECT count(*) FROM {SCHEMA}.issued_user") == [(0,)]


def test_a_vault_named_role_someone_else_created_is_not_dropped(functions_world: World) -> None:
    foreign = vault_name()
    with functions_world.superuser() as db:
        db.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(foreign)))
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match=r"was not created by vault_api\.create_user"):
        functions_world.admin().execute(f"SELECT {SCHEMA}.drop_user(%s)", [foreign])
    assert functions_world.query("SELECT count(*) FROM pg_roles WHERE rolname = %s", foreign) == [(1,)]


@pytest.mark.parametrize("membership", ["pg_execute_server_program", OWNER])
def test_a_declared_static_user_with_privileged_membership_is_refused(functions_world: World,
                                                                     membership: str) -> None:
    with functions_world.superuser() as db:
        db.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(membership), sql.Identifier(STATIC_USER)))
    before = roles_snapshot(functions_world)
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match=f"{STATIC_USER} is a privileged role"):
        functions_world.admin().execute(f"SELECT {SCHEMA}.set_password(%s, %s)", [STATIC_USER, VERIFIER])
    assert roles_snapshot(functions_world) == before


def test_a_temporary_pg_roles_does_not_fool_the_functions(functions_world: World) -> None:
    """search_path is pinned with pg_temp last: the caller's temporary objects are never looked up."""
    role = functions_world.roles()[0]
    credentials = functions_world.create_user(role)
    admin = functions_world.admin()
    admin.execute("CREATE TEMP TABLE pg_roles (oid oid, rolname name)")  # 'no such role': would skip the drop
    admin.execute(f"SELECT {SCHEMA}.drop_user(%s)", [credentials.username])
    assert functions_world.query("SELECT count(*) FROM pg_catalog.pg_roles WHERE rolname = %s",
                                 credentials.username) == [(0,)]


def test_a_password_rotation_of_the_declared_static_user_works(functions_world: World) -> None:
    password = generate_password()
    functions_world.admin().execute(f"SELECT {SCHEMA}.set_password(%s, %s)", [STATIC_USER, scram_verifier(password)])
    functions_world.login(STATIC_USER, password).close()


@pytest.mark.parametrize("until", ["infinity", "2999-01-01 00:00:00+0000"])
def test_renewal_beyond_the_longest_lease_is_refused(functions_world: World, until: str) -> None:
    """Whatever the statements say, a user made through the functions expires within a day."""
    credentials = functions_world.create_user(functions_world.roles()[0])
    before = roles_snapshot(functions_world)
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match=re.escape(f"expiry {until} is not within 86700")):
        functions_world.admin().execute(f"SELECT {SCHEMA}.renew_user(%s, %s)", [credentials.username, until])
    assert roles_snapshot(functions_world) == before
