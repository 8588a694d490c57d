"""Every form of hand-written creationStatements the spec accepts (environment/statements.py)
runs on PostgreSQL 15 as Vault runs it, for the createrole admin: the user logs in with Vault's
password, expires at Vault's expiry, reads what it was granted, and revocation removes it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import psycopg
import pytest

from environment import DatabaseRole
from tests.postgres.conftest import World, in_setup, make_world
from tests.postgres.server import PostgresServer
from tests.postgres.vault_plugin import delete_user
from tests.support import spec_of

P = "vault-platform:database"
CREATE = "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'"
# (statements, what the user may then read)
ACCEPTED: dict[str, tuple[list[str], bool]] = {
    "create-only": ([CREATE + ";"], False),
    "create-user-and-grants-in-one-item": ([
        "CREATE USER \"{{name}}\" PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'; "
        'GRANT USAGE ON SCHEMA public TO "{{name}}"; GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{{name}}";'],
        True),
    "every-option-and-statement-kind": ([
        "CREATE ROLE \"{{name}}\" WITH LOGIN NOINHERIT NOCREATEDB CONNECTION LIMIT 5 ENCRYPTED PASSWORD "
        "'{{password}}' VALID UNTIL '{{expiration}}';",
        'GRANT USAGE ON SCHEMA "public" TO "{{name}}";',
        'GRANT SELECT, UPDATE ON TABLE public.accounts, public.orders TO "{{name}}";',
        'GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO "{{name}}";',
        "ALTER ROLE \"{{name}}\" SET statement_timeout TO '30s';",
    ], True),
    "lowercase": ([
        "create role \"{{name}}\" with login password '{{password}}' valid until '{{expiration}}'; "
        'grant usage on schema public to "{{name}}"; grant select on public.accounts to "{{name}}"'], True),
}


@pytest.fixture(params=list(ACCEPTED))
def form(request: pytest.FixtureRequest, postgres: PostgresServer) -> Iterator[tuple[World, DatabaseRole, bool]]:
    statements, reads = ACCEPTED[request.param]
    spec = spec_of("prod", {f"{P}.connections[0].adminSetup": "createrole", f"{P}.roles[0].grants": None,
                            f"{P}.roles[0].creationStatements": statements})
    assert spec.database is not None
    assert spec.database.roles[0].creation_statements == tuple(statements)
    # The admin holds the grant options the committed role needs (SELECT, INSERT, UPDATE on public).
    committed = spec_of("prod")
    assert committed.database is not None
    for world in make_world(postgres, committed, in_setup(spec.database.connections[0], "createrole")):
        yield world, spec.database.roles[0], reads


def test_accepted_form_creates_a_working_expiring_user(form: tuple[World, DatabaseRole, bool]) -> None:
    world, role, reads = form
    credentials = world.create_user(role, expires_in=timedelta(minutes=30))
    [(valid_until,)] = world.query("SELECT rolvaliduntil FROM pg_roles WHERE rolname = %s", credentials.username)
    assert valid_until == credentials.expires
    with world.login(credentials.username, credentials.password) as session:
        outcome = None
        try:
            session.execute("SELECT count(*) FROM public.accounts")
        except psycopg.errors.InsufficientPrivilege:
            outcome = "denied"
        assert outcome == (None if reads else "denied")
    delete_user(world.admin(), world.revocation, credentials.username)
    assert world.query("SELECT count(*) FROM pg_roles WHERE rolname = %s", credentials.username) == [(0,)]
