"""What ``platformctl db-setup`` prints is what a DBA runs: through psql, in one transaction, on
PostgreSQL 15, twice (it is idempotent), in both admin setups; then a change's ``--since`` script
lets the next credentials reach a new schema."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from psycopg import sql

from environment import AdminSetup
from platformctl.core.db_setup import changed_scripts, full_scripts, render
from tests.postgres.conftest import SETUPS, TABLE_OWNER, World, create_tables, in_setup, make_world
from tests.postgres.server import PostgresServer
from tests.support import spec_of

P = "vault-platform:database"
NEW_SCHEMA = "billing"
WITH_BILLING: dict[str, object] = {f"{P}.roles[0].grants[1]": {"privileges": ["SELECT"], "schema": NEW_SCHEMA}}


def stack_with(setup: AdminSetup, changes: dict[str, object] | None = None) -> dict[str, object]:
    return {f"{P}.connections[0].adminSetup": setup, f"{P}.connections[0].tableOwner": TABLE_OWNER,
            **(changes or {})}


def psql(server: PostgresServer, database: str, script: str, tmp_path: Path) -> None:
    path = tmp_path / "setup.sql"
    path.write_text(script)
    subprocess.run([str(server.bindir / "psql"), "-X", "-q", "-h", str(server.directory), "-p", str(server.port),
                    "-U", "bootstrap", "-d", database, "-v", "ON_ERROR_STOP=1", "--single-transaction",
                    "-f", str(path)], check=True, capture_output=True, text=True)


@pytest.fixture(params=SETUPS)
def bare_world(request: pytest.FixtureRequest, postgres: PostgresServer) -> Iterator[World]:
    """The database laid out, the admin existing, nothing else set up yet."""
    spec = spec_of("prod", stack_with(request.param))
    assert spec.database is not None
    yield from make_world(postgres, spec, in_setup(spec.database.connections[0], request.param), admin_setup=False)


def test_printed_script_applies_twice_and_serves_credentials(bare_world: World, postgres: PostgresServer,
                                                             tmp_path: Path) -> None:
    assert bare_world.spec.database is not None
    script = render("prod", full_scripts(bare_world.spec.database))
    psql(postgres, bare_world.database, script, tmp_path)
    psql(postgres, bare_world.database, script, tmp_path)  # idempotent
    [role] = bare_world.roles()
    credentials = bare_world.create_user(role)
    with bare_world.login(credentials.username, credentials.password) as session:
        assert session.execute("SELECT count(*) FROM public.accounts").fetchall() == [(2,)]


def test_since_script_reaches_a_new_schema(bare_world: World, postgres: PostgresServer, tmp_path: Path) -> None:
    base = bare_world.spec.database
    head = spec_of("prod", stack_with(bare_world.setup, WITH_BILLING)).database
    assert base is not None
    assert head is not None
    psql(postgres, bare_world.database, render("prod", full_scripts(base)), tmp_path)
    with bare_world.superuser() as db:  # the migration that brings the schema
        db.execute(sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(sql.Identifier(NEW_SCHEMA),
                                                                       sql.Identifier(TABLE_OWNER)))
        create_tables(db, NEW_SCHEMA)
    [changes] = changed_scripts(base, head)
    assert changes.statements
    assert all(NEW_SCHEMA in statement for statement in changes.statements)
    psql(postgres, bare_world.database, render("prod", [changes], "origin/main"), tmp_path)
    credentials = bare_world.create_user(head.roles[0])
    with bare_world.login(credentials.username, credentials.password) as session:
        assert session.execute(f"SELECT count(*) FROM {NEW_SCHEMA}.accounts").fetchall() == [(2,)]
